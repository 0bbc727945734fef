//! Scheduled campaigns: each one due as of now gets its audience fixed and its holdout
//! drawn, then its message and bonus points, in batches (`campaigns::sending`). Within
//! 09:00-21:00 in the program's time zone only; exactly once across workers and restarts.

use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::time::Duration;

pub struct Campaigns {
    pub channels: Channels,
}

impl super::Job for Campaigns {
    fn name(&self) -> &'static str {
        "campaigns"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        crate::campaigns::sending::run(conn, self.channels, now)
    }
}
