//! Background work fed from PostgreSQL, run by `passfold serve` and alone by
//! `passfold worker`: the outbox loop of every channel (see `outbox`) and the time-based
//! jobs (see `jobs`).
//! Each loop stops when the shutdown signal flips.

use crate::db::DbPool;
use crate::domain::states::Channel;
use crate::outbox::{
    apple::ApplePushes, google::GoogleSync, spawn_lanes, webhook::WebhookDeliveries, Discard,
};
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
    clock: crate::clock::Clock,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let lease = settings.outbox_lease;
    let lanes = settings.outbox_lanes;
    let apple = Arc::new(ApplePushes {
        apns,
        metrics: metrics.clone(),
    });
    let mut loops = spawn_lanes(lanes, &pool, apple, lease, &metrics, &shutdown);
    loops.extend(if settings.google.configured() {
        let sync = Arc::new(GoogleSync {
            google,
            templates: Default::default(),
            public_url: settings.public_url.clone(),
        });
        spawn_lanes(lanes, &pool, sync, lease, &metrics, &shutdown)
    } else {
        tracing::info!("Google Wallet is not configured: its updates are not sent");
        let discard = Arc::new(Discard(Channel::Google));
        spawn_lanes(1, &pool, discard, lease, &metrics, &shutdown)
    });
    let webhooks = Arc::new(WebhookDeliveries {
        clock: clock.clone(),
        metrics: metrics.clone(),
        allow_private: settings.webhooks_allow_private,
        clients: Default::default(),
    });
    loops.extend(spawn_lanes(
        lanes, &pool, webhooks, lease, &metrics, &shutdown,
    ));
    loops.push(tokio::spawn(crate::jobs::run(
        pool,
        clock,
        crate::jobs::all(
            settings,
            crate::pass_events::Channels::new(settings.google.configured()),
        ),
        shutdown,
    )));
    loops
}

/// What `passfold worker --once` did.
#[derive(Debug, serde::Serialize)]
pub struct OnceReport {
    pub at: chrono::DateTime<chrono::Utc>,
    /// Things each job did, by job name.
    pub jobs: std::collections::BTreeMap<&'static str, usize>,
    /// Outbox rows handled, by channel, until nothing was due.
    pub delivered: std::collections::BTreeMap<&'static str, usize>,
}

/// Runs every time-based job once as of `at`, then drains the outbox of every channel.
pub async fn run_once(
    pool: DbPool,
    settings: &crate::configuration::Settings,
    apns: Arc<crate::apple::apns::ApnsClient>,
    google: Arc<crate::google::rest::GoogleClient>,
    metrics: crate::metrics::Metrics,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<OnceReport> {
    let channels = crate::pass_events::Channels::new(settings.google.configured());
    let jobs = crate::jobs::run_once(&pool, &crate::jobs::all(settings, channels), at)
        .await?
        .into_iter()
        .collect();
    let lease = settings.outbox_lease;
    let mut delivered = std::collections::BTreeMap::new();
    let apple = Arc::new(ApplePushes {
        apns,
        metrics: metrics.clone(),
    });
    delivered.insert(
        Channel::Apple.as_str(),
        crate::outbox::drain(&pool, &apple, lease).await?,
    );
    let google_rows = if settings.google.configured() {
        let sync = Arc::new(GoogleSync {
            google,
            templates: Default::default(),
            public_url: settings.public_url.clone(),
        });
        crate::outbox::drain(&pool, &sync, lease).await?
    } else {
        crate::outbox::drain(&pool, &Arc::new(Discard(Channel::Google)), lease).await?
    };
    delivered.insert(Channel::Google.as_str(), google_rows);
    // Webhooks are signed with the time of the run, as every other decision of it.
    let webhooks = Arc::new(WebhookDeliveries {
        clock: crate::clock::Clock::manual(at),
        metrics: metrics.clone(),
        allow_private: settings.webhooks_allow_private,
        clients: Default::default(),
    });
    delivered.insert(
        Channel::Webhook.as_str(),
        crate::outbox::drain(&pool, &webhooks, lease).await?,
    );
    Ok(OnceReport {
        at,
        jobs,
        delivered,
    })
}
