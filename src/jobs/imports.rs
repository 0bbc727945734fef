//! CSV imports waiting for a worker (`imports::run_next`): the oldest queued one, or one
//! whose worker stopped mid-way (its lease lapsed), claimed with `FOR UPDATE SKIP LOCKED`
//! so that each is worked on by one process at a time, and resumed from its checkpoint.

use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::time::Duration;

pub struct Imports {
    pub channels: Channels,
    pub max_balance: i64,
}

impl super::Job for Imports {
    fn name(&self) -> &'static str {
        "imports"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        crate::imports::run_next(conn, self.channels, now, self.max_balance)
    }
}
