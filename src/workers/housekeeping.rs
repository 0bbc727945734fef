//! Pruning: idempotency keys after their retention; wrong-PIN and join-attempt records
//! (rate limits) after a day.

use crate::db::DbPool;
use crate::schema::pin_failures;
use diesel::prelude::*;
use std::time::Duration;
use tokio::sync::watch;

const PERIOD: Duration = Duration::from_secs(600);

pub async fn run(pool: DbPool, idempotency_hours: i64, mut shutdown: watch::Receiver<bool>) {
    loop {
        let pool = pool.clone();
        let pruned = tokio::task::spawn_blocking(move || -> QueryResult<(usize, usize)> {
            let mut conn = pool
                .get()
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
            let keys = crate::idempotency::prune(&mut conn, idempotency_hours)?;
            let pins = diesel::delete(pin_failures::table.filter(
                pin_failures::created_at.lt(chrono::Utc::now() - chrono::Duration::days(1)),
            ))
            .execute(&mut conn)?;
            diesel::delete(
                crate::schema::google_notifications::table.filter(
                    crate::schema::google_notifications::sent_at
                        .lt(chrono::Utc::now() - chrono::Duration::days(1)),
                ),
            )
            .execute(&mut conn)?;
            diesel::delete(
                crate::schema::join_attempts::table.filter(
                    crate::schema::join_attempts::created_at
                        .lt(chrono::Utc::now() - chrono::Duration::days(1)),
                ),
            )
            .execute(&mut conn)?;
            Ok((keys, pins))
        })
        .await;
        match pruned {
            Ok(Ok((keys, pins))) if keys + pins > 0 => {
                tracing::info!(keys, pins, "pruned old idempotency keys and PIN failures")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "housekeeping task failed; will retry"),
        }
        if super::pause(&mut shutdown, PERIOD).await {
            return;
        }
    }
}
