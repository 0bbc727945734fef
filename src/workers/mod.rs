//! Background work fed from PostgreSQL, run by `passfold serve` and alone by
//! `passfold worker`: the outbox loop of every channel (see `outbox`) and housekeeping.
//! Each loop stops when the shutdown signal flips.

pub mod housekeeping;

use crate::db::DbPool;
use crate::domain::states::Channel;
use crate::outbox::{apple::ApplePushes, google::GoogleSync, run, Discard};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts every background loop; they end when `shutdown` becomes true.
pub fn spawn_all(
    pool: DbPool,
    settings: &crate::configuration::Settings,
    apns: Arc<crate::apple::apns::ApnsClient>,
    google: Arc<crate::google::rest::GoogleClient>,
    metrics: crate::metrics::Metrics,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let lease = settings.outbox_lease;
    let apple = Arc::new(ApplePushes {
        apns,
        metrics: metrics.clone(),
    });
    vec![
        tokio::spawn(run(
            pool.clone(),
            apple,
            lease,
            metrics.clone(),
            shutdown.clone(),
        )),
        if settings.google.configured() {
            let sync = Arc::new(GoogleSync {
                google,
                templates: Default::default(),
                public_url: settings.public_url.clone(),
            });
            tokio::spawn(run(
                pool.clone(),
                sync,
                lease,
                metrics.clone(),
                shutdown.clone(),
            ))
        } else {
            tracing::info!("Google Wallet is not configured: its updates are not sent");
            let discard = Arc::new(Discard(Channel::Google));
            tokio::spawn(run(pool.clone(), discard, lease, metrics, shutdown.clone()))
        },
        tokio::spawn(housekeeping::run(
            pool,
            settings.idempotency_hours,
            shutdown,
        )),
    ]
}
