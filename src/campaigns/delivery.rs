//! What became of a campaign's (or an automation's) deliveries, recorded per recipient by
//! the outbox's channels when they settle: an APNs push accepted for a device holding a
//! recipient's pass, a message taken by a recipient's Google Wallet object. Only recipients whose delivery is
//! still awaited are looked at (a partial index), so a settle costs an index probe when no
//! campaign is under way.

use diesel::prelude::*;
use diesel::sql_types::{Array, Uuid as SqlUuid};
use uuid::Uuid;

/// The tables of recipients whose deliveries are followed, each with the same columns and
/// partial indexes of those awaited.
const TABLES: [&str; 2] = ["campaign_recipients", "automation_firings"];

/// APNs accepted a push, sent after a change with a message, to a device of each of
/// `passes` (of `merchants`).
pub fn apple_accepted(
    conn: &mut PgConnection,
    merchants: &[Uuid],
    passes: &[Uuid],
) -> QueryResult<usize> {
    if passes.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for table in TABLES {
        n += diesel::sql_query(format!(
            "UPDATE {table} SET apple_pushed_at = now()
              WHERE merchant_id = ANY($1) AND pass_id = ANY($2)
                AND sent_at IS NOT NULL AND apple_devices > 0 AND apple_pushed_at IS NULL"
        ))
        .bind::<Array<SqlUuid>, _>(merchants)
        .bind::<Array<SqlUuid>, _>(passes)
        .execute(conn)?;
    }
    Ok(n)
}

/// Google Wallet took the pass's message on each of `passes` (of `merchants`).
pub fn google_messaged(
    conn: &mut PgConnection,
    merchants: &[Uuid],
    passes: &[Uuid],
) -> QueryResult<usize> {
    if passes.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for table in TABLES {
        n += diesel::sql_query(format!(
            "UPDATE {table} SET google_messaged_at = now()
              WHERE merchant_id = ANY($1) AND pass_id = ANY($2)
                AND sent_at IS NOT NULL AND google_saved AND google_messaged_at IS NULL"
        ))
        .bind::<Array<SqlUuid>, _>(merchants)
        .bind::<Array<SqlUuid>, _>(passes)
        .execute(conn)?;
    }
    Ok(n)
}
