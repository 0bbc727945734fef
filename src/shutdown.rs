//! How background loops hear that the process is stopping.

use tokio::sync::watch;

/// Sleeps for `period`, or less if shutdown is signalled; true when it is time to stop.
pub async fn pause(shutdown: &mut watch::Receiver<bool>, period: std::time::Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(period) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
