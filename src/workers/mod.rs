//! Background work fed from PostgreSQL, run by `passfold serve` and alone by
//! `passfold worker`. Each loop stops when the shutdown signal flips.

pub mod delivery;
pub mod google_sync;
pub mod housekeeping;

use crate::db::DbPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts every background loop; they end when `shutdown` becomes true.
pub fn spawn_all(
    pool: DbPool,
    settings: &crate::configuration::Settings,
    apns: std::sync::Arc<crate::apple::apns::ApnsClient>,
    google: std::sync::Arc<crate::google::rest::GoogleClient>,
    metrics: crate::metrics::Metrics,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    vec![
        if settings.google.configured() {
            tokio::spawn(google_sync::run(
                pool.clone(),
                google,
                settings.public_url.clone(),
                shutdown.clone(),
            ))
        } else {
            tracing::info!("Google Wallet is not configured: its updates are not sent");
            tokio::spawn(google_sync::drain(pool.clone(), shutdown.clone()))
        },
        tokio::spawn(housekeeping::run(
            pool.clone(),
            settings.idempotency_hours,
            shutdown.clone(),
        )),
        tokio::spawn(delivery::run(pool, apns, metrics, shutdown)),
    ]
}

/// Sleeps for `period`, or less if shutdown is signalled; true when it is time to stop.
pub(crate) async fn pause(
    shutdown: &mut watch::Receiver<bool>,
    period: std::time::Duration,
) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(period) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
