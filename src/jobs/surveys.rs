//! NPS survey invitations as of now: purchases past their program's survey delay get their
//! invitation link onto the member's pass (`analytics::surveys`).

use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::time::Duration;

pub struct Surveys {
    pub channels: Channels,
    pub public_url: String,
}

impl super::Job for Surveys {
    fn name(&self) -> &'static str {
        "surveys"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        crate::analytics::surveys::invite_due(conn, self.channels, &self.public_url, now)
    }
}
