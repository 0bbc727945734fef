//! Time-based jobs: work that must happen "as of now" rather than in answer to a request
//! (points expiry, reminders, birthdays, requalification, segment recomputes, the dashboard's
//! figures of big merchants, scheduled campaigns, automations, NPS survey invitations, pruning). One file per job; one loop ([`run`]) runs each when due, and
//! `passfold worker --once --at <instant>` runs every job once as of that instant
//! ([`run_once`]).
//!
//! A job takes "now" as a parameter, from the process's [`Clock`], and must be idempotent
//! at an instant: running it twice as of the same instant changes nothing the second time,
//! so several workers, restarts and a catch-up `--once --at` all give the same ledger.

pub mod automations;
pub mod birthdays;
pub mod campaigns;
pub mod dashboard;
pub mod expiry;
pub mod imports;
pub mod prune;
pub mod reminders;
pub mod requalify;
pub mod segments;
pub mod surveys;

use crate::clock::Clock;
use crate::db::DbPool;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub trait Job: Send + Sync + 'static {
    /// A name for logs.
    fn name(&self) -> &'static str;

    /// How often the loop runs it.
    fn every(&self) -> Duration;

    /// Does what is due as of `now`; returns how many things it did (for logs).
    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize>;
}

/// Every job this process runs.
pub fn all(
    settings: &crate::configuration::Settings,
    channels: crate::pass_events::Channels,
) -> Vec<Arc<dyn Job>> {
    vec![
        // Expiry before reminders: a lot that has just expired is not reminded of.
        Arc::new(expiry::Expiry { channels }),
        Arc::new(reminders::Reminders { channels }),
        // Birthday points before reviews: what a birthday earns counts in the window.
        Arc::new(birthdays::Birthdays { channels }),
        Arc::new(requalify::Requalify { channels }),
        Arc::new(segments::Segments {
            every: settings.segments_every,
        }),
        // After the segments: a campaign's audience is fixed on fresh stages.
        Arc::new(campaigns::Campaigns { channels }),
        // Also after the segments: stage entries are recorded by the recompute.
        Arc::new(automations::Automations { channels }),
        Arc::new(surveys::Surveys {
            channels,
            public_url: settings.public_url.clone(),
        }),
        Arc::new(prune::Prune {
            keep: prune::Retention {
                idempotency_hours: settings.idempotency_hours,
                sessions: crate::staff::Lifetimes {
                    idle: settings.session_idle,
                    max: settings.session_max,
                },
            },
        }),
        Arc::new(dashboard::DashboardFigures),
        Arc::new(imports::Imports {
            channels,
            max_balance: settings.gift_card_max_balance,
        }),
    ]
}

/// Runs one job as of `now` on a pooled connection, off the async threads.
async fn run_job(pool: &DbPool, job: Arc<dyn Job>, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        job.run(&mut conn, now)
    })
    .await?
}

/// Runs each job when due until `shutdown` becomes true.
pub async fn run(
    pool: DbPool,
    clock: Clock,
    jobs: Vec<Arc<dyn Job>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = jobs
        .iter()
        .map(|j| j.every())
        .min()
        .unwrap_or(Duration::from_secs(60))
        .min(Duration::from_secs(60));
    let mut next: Vec<std::time::Instant> = vec![std::time::Instant::now(); jobs.len()];
    loop {
        for (job, due) in jobs.iter().zip(next.iter_mut()) {
            // A stop asked for mid-round starts no further job: it waits for one at most.
            if *shutdown.borrow() {
                return;
            }
            if std::time::Instant::now() < *due {
                continue;
            }
            *due = std::time::Instant::now() + job.every();
            match run_job(&pool, job.clone(), clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(job = job.name(), done = n, "job ran"),
                Err(e) => {
                    tracing::warn!(
                        job = job.name(),
                        error = format!("{e:#}"),
                        "job failed; will retry"
                    )
                }
            }
        }
        if crate::shutdown::pause(&mut shutdown, tick).await {
            return;
        }
    }
}

/// Runs every job once as of `now`, in order; stops at the first failure.
pub async fn run_once(
    pool: &DbPool,
    jobs: &[Arc<dyn Job>],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(&'static str, usize)>> {
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        let n = run_job(pool, job.clone(), now)
            .await
            .map_err(|e| e.context(format!("job {}", job.name())))?;
        done.push((job.name(), n));
    }
    Ok(done)
}
