//! Earned points kept as lots, each with its own expiry. A gain adds a lot; spending takes
//! from the lot expiring first (lots that never expire last, then the oldest). The sum of
//! a member's lots is always the member's balance: only [`super::ledger::apply`] and the
//! expiry job (`jobs::expiry`) move them, each under the member's row lock.

use crate::db::Tenant;
use crate::schema::point_lots;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
use uuid::Uuid;

/// A new lot of `points` (> 0) earned at `at` by `activity`.
pub fn add(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    activity: Uuid,
    points: i64,
    at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    diesel::insert_into(point_lots::table)
        .values((
            point_lots::merchant_id.eq(tenant.merchant_id()),
            point_lots::member_id.eq(member),
            point_lots::activity_id.eq(activity),
            point_lots::earned_at.eq(at),
            point_lots::expires_at.eq(expires_at),
            point_lots::points.eq(points),
            point_lots::remaining.eq(points),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Takes `points` from the member's lots: first from the lot `first` earned (a return takes
/// back the purchase's own points first), then in spending order. The caller holds the
/// member's row lock and has checked the balance covers it.
pub fn consume(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    points: i64,
    first: Option<Uuid>,
) -> QueryResult<()> {
    if points <= 0 {
        return Ok(());
    }
    // Each lot gives what is still needed after the lots before it, at most what it holds.
    let taken = diesel::sql_query(
        "WITH open AS (
             SELECT id, remaining,
                    sum(remaining) OVER (ORDER BY (activity_id = $4) IS TRUE DESC,
                                                  expires_at NULLS LAST, id) - remaining AS before
               FROM point_lots
              WHERE merchant_id = $1 AND member_id = $2 AND remaining > 0)
         UPDATE point_lots l
            SET remaining = l.remaining - least(o.remaining, $3 - o.before)
           FROM open o
          WHERE l.merchant_id = $1 AND l.id = o.id AND o.before < $3",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(member)
    .bind::<BigInt, _>(points)
    .bind::<Nullable<SqlUuid>, _>(first)
    .execute(conn)?;
    debug_assert!(taken > 0);
    Ok(())
}

/// The member's next expiry: the points of open lots expiring on the first day (in `tz`)
/// that any expire, and that day.
pub fn next_expiry(
    conn: &mut PgConnection,
    merchant: Uuid,
    member: Uuid,
    tz: chrono_tz::Tz,
) -> QueryResult<Option<(i64, chrono::NaiveDate)>> {
    let lots = crate::models::point_lot::upcoming(conn, &[merchant], &[member])?;
    Ok(crate::models::point_lot::first_day(
        lots.get(&member).map(Vec::as_slice).unwrap_or(&[]),
        tz,
    ))
}
