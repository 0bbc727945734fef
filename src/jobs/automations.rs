//! Automations: each enabled rule fires for the members whose event (a stage entered, a
//! first or n-th purchase, a birthday) happened since it became active, and sends them
//! its message (`campaigns::firing`). Within 09:00-21:00 in the program's time zone only;
//! exactly once per member and event across workers and restarts.

use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::time::Duration;

pub struct Automations {
    pub channels: Channels,
}

impl super::Job for Automations {
    fn name(&self) -> &'static str {
        "automations"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        crate::campaigns::firing::run(conn, self.channels, now)
    }
}
