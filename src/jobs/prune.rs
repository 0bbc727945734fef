//! The pruning job: idempotency keys after their retention; console sessions once expired;
//! wrong-PIN, wrong-password and
//! join-attempt records (rate limits) after a day; what anyone may write without a key after a while: link
//! opens after [`LINK_OPEN_DAYS`] (so referral statistics count opens of that many days)
//! and device logs after [`DEVICE_LOG_DAYS`]; the Apple registrations of erased members'
//! passes after `privacy::erasure::DEVICE_GRACE_DAYS`.

use crate::schema::{device_logs, google_notifications, join_attempts, link_opens, pin_failures};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::time::Duration;

/// A quarter of link opens: enough to judge a campaign, and the table stays bounded.
pub const LINK_OPEN_DAYS: i64 = 90;
/// Device logs only help debug the web service: a week.
pub const DEVICE_LOG_DAYS: i64 = 7;

#[derive(Default)]
pub struct Pruned {
    pub keys: usize,
    pub sessions: usize,
    pub pins: usize,
    pub opens: usize,
    pub logs: usize,
    pub devices: usize,
}

/// How long what is pruned is kept.
#[derive(Clone, Copy)]
pub struct Retention {
    pub idempotency_hours: i64,
    pub sessions: crate::staff::Lifetimes,
}

/// One round of pruning as of `now`.
pub fn prune(conn: &mut PgConnection, now: DateTime<Utc>, keep: Retention) -> QueryResult<Pruned> {
    let day_ago = now - chrono::Duration::days(1);
    let keys = crate::idempotency::prune(conn, now, keep.idempotency_hours)?;
    let sessions = crate::staff::sessions::prune(conn, now, keep.sessions)?;
    let pins = diesel::delete(pin_failures::table.filter(pin_failures::created_at.lt(day_ago)))
        .execute(conn)?
        + crate::staff::throttle::prune(conn, now)?;
    diesel::delete(google_notifications::table.filter(google_notifications::sent_at.lt(day_ago)))
        .execute(conn)?;
    diesel::delete(join_attempts::table.filter(join_attempts::created_at.lt(day_ago)))
        .execute(conn)?;
    let opens = diesel::delete(
        link_opens::table
            .filter(link_opens::created_at.lt(now - chrono::Duration::days(LINK_OPEN_DAYS))),
    )
    .execute(conn)?;
    let logs = diesel::delete(
        device_logs::table
            .filter(device_logs::created_at.lt(now - chrono::Duration::days(DEVICE_LOG_DAYS))),
    )
    .execute(conn)?;
    let devices = crate::privacy::erasure::prune_devices(conn, now)?;
    Ok(Pruned {
        keys,
        sessions,
        pins,
        opens,
        logs,
        devices,
    })
}

pub struct Prune {
    pub keep: Retention,
}

impl super::Job for Prune {
    fn name(&self) -> &'static str {
        "prune"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let p = prune(conn, now, self.keep)?;
        let done = p.keys + p.sessions + p.pins + p.opens + p.logs + p.devices;
        if done > 0 {
            tracing::info!(
                keys = p.keys,
                sessions = p.sessions,
                pins = p.pins,
                link_opens = p.opens,
                device_logs = p.logs,
                erased_registrations = p.devices,
                "pruned old idempotency keys, expired sessions, PIN failures, link opens, device logs and erased members' registrations"
            );
        }
        Ok(done)
    }
}
