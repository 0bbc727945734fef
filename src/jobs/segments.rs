//! The full segments recompute (`segments::recompute`) as of the clock's now: every
//! program's RFM cut points, and every member's scores and stage, which change with time
//! alone (a purchase leaves the window, a silence turns into cooling, then lapsed).

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::time::Duration;

pub struct Segments {
    pub every: Duration,
}

impl super::Job for Segments {
    fn name(&self) -> &'static str {
        "segments"
    }

    fn every(&self) -> Duration {
        self.every
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let done = crate::segments::recompute(conn, crate::segments::Scope::All, now)?;
        Ok((done.written + done.changes) as usize)
    }
}
