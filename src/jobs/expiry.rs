//! Points expiry: every lot whose time has come loses what it still holds, with one
//! `expire` activity per lot (a unique index makes "once" a fact of the table, not only of
//! this code), the member's balance lowered and the pass changed, in batches of one
//! transaction each.
//!
//! The activity's time is the lot's own expiry, not the moment the job ran, so a worker
//! catching up after an outage (`worker --once --at`) writes the same ledger as one that
//! ran all along. Members are locked in id order before their lots are read (the order a
//! till takes them in), so a concurrent payment either lands before (and the lot expires
//! what is left) or after (and finds the lot gone). Several workers take turns through an
//! advisory lock instead of queueing behind each other's member locks.

use crate::pass_events::Channels;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use std::time::Duration;
use uuid::Uuid;

/// Lots expired per transaction.
pub const BATCH: i64 = 5_000;
/// The advisory lock the expiry job's batches take (any fixed number of ours).
const LOCK: i64 = 0x7061_7373_6578_7031; // "passexp1"

pub struct Expiry {
    pub channels: Channels,
}

#[derive(QueryableByName)]
struct MemberId {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One batch as of `now`: the lots expired.
pub fn batch(
    conn: &mut PgConnection,
    channels: Channels,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<i64> {
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(LOCK)
            .execute(conn)?;
        // The batch's members, locked in id order before their lots are read.
        let members: Vec<MemberId> = diesel::sql_query(
            // `= ANY(ARRAY(…))`, not `IN (…)`: the members are fetched by key, where a
            // join could read the whole table.
            "SELECT id AS member_id FROM members
              WHERE id = ANY (ARRAY(SELECT member_id FROM point_lots
                                     WHERE expires_at <= $1 AND remaining > 0 AND NOT expired
                                     ORDER BY expires_at LIMIT $2))
              ORDER BY id FOR UPDATE",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit)
        .load(conn)?;
        if members.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = members.into_iter().map(|m| m.member_id).collect();
        // A fresh statement under the locks: what the lots hold now. The lots are rewritten
        // by the row addresses just read (nothing moves them while their members are
        // locked), as cheaply as a plain UPDATE; the activities get time-ordered ids.
        let expired: Count = diesel::sql_query(
            "WITH due AS (
                 SELECT l.ctid AS tid, l.merchant_id, l.id, l.member_id, l.remaining, l.expires_at,
                        sum(l.remaining) OVER (PARTITION BY l.member_id
                                               ORDER BY l.expires_at, l.id) AS upto
                   FROM point_lots l
                  WHERE l.member_id = ANY($1) AND l.expires_at <= $2
                    AND l.remaining > 0 AND NOT l.expired),
             lots AS (
                 UPDATE point_lots l SET remaining = 0, expired = true
                  WHERE l.ctid = ANY (ARRAY(SELECT tid FROM due))
                 RETURNING 1),
             lost AS (SELECT member_id, sum(remaining) AS total FROM due GROUP BY member_id),
             moved AS (
                 UPDATE members m SET points = m.points - lost.total, updated_at = now()
                   FROM lost WHERE m.id = lost.member_id
                 RETURNING m.id, m.points + lost.total AS before, m.tier),
             rows AS (
                 INSERT INTO point_activities (id, merchant_id, member_id, type, delta,
                                               points_after, reason, tier_after, created_at,
                                               lot_id, qualifying)
                 SELECT passfold_uuid_v7(), d.merchant_id, d.member_id, 'expire', -d.remaining,
                        moved.before - d.upto, 'points expired', moved.tier, d.expires_at, d.id, 0
                   FROM due d JOIN moved ON moved.id = d.member_id
                  ORDER BY d.member_id, d.upto
                 RETURNING 1),
             changed AS (
                 SELECT passfold_pass_changed(
                            ARRAY(SELECT p.id FROM passes p WHERE p.member_id IN (SELECT id FROM moved)),
                            'expire', $3) AS ids)
             -- As many lots rewritten as expire rows written, or NULL, which fails the batch.
             SELECT CASE WHEN (SELECT count(*) FROM lots) = (SELECT count(*) FROM rows)
                         THEN (SELECT count(*) FROM rows) END AS n
               FROM changed",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<Text>, _>(channels.all())
        .get_result(conn)?;
        Ok(expired.n)
    })
}

impl super::Job for Expiry {
    fn name(&self) -> &'static str {
        "expiry"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut done = 0usize;
        loop {
            let n = batch(conn, self.channels, now, BATCH)?;
            done += n as usize;
            if n == 0 {
                return Ok(done);
            }
        }
    }
}
