//! The dashboard job: renews the dashboard's figures of merchants too big to sum them on
//! every view (`analytics::dashboard`), as of now, one merchant at a time. A merchant
//! another worker is summing is left to it; a snapshot already as of `now` is not summed
//! again, so a second run at the same instant does nothing.

use crate::analytics::dashboard;
use crate::db::Tenant;
use crate::schema::dashboard_snapshots;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::time::Duration;

pub struct DashboardFigures;

/// Renews every due snapshot as of `now`; returns how many it renewed.
pub fn refresh_due(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    let mut renewed = 0;
    for merchant_id in dashboard::due(conn, now)? {
        let done = conn.transaction(|conn| {
            // The row's lock keeps two workers from summing the same merchant at once.
            let mine: Option<uuid::Uuid> = dashboard_snapshots::table
                .find(merchant_id)
                .filter(dashboard_snapshots::as_of.lt(now))
                .select(dashboard_snapshots::merchant_id)
                .for_update()
                .skip_locked()
                .first(conn)
                .optional()?;
            if mine.is_none() {
                return Ok(false);
            }
            dashboard::refresh(conn, &Tenant::of_authenticated(merchant_id), now)?;
            Ok::<_, diesel::result::Error>(true)
        })?;
        renewed += usize::from(done);
    }
    Ok(renewed)
}

impl super::Job for DashboardFigures {
    fn name(&self) -> &'static str {
        "dashboard"
    }

    fn every(&self) -> Duration {
        dashboard::REFRESH_EVERY
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        Ok(refresh_due(conn, now)?)
    }
}
