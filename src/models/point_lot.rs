//! Queries of points lots that pages and passes read (the lots' writers are in
//! `loyalty::lots` and `jobs::expiry`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Upcoming {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    member_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    remaining: i64,
}

/// An open lot's expiry and the points it holds.
pub type Expiring = (DateTime<Utc>, i64);

/// Per member, the open lots expiring within a day of their first expiry (whatever the
/// time zone, the first local day is among them), soonest first.
pub fn upcoming(
    conn: &mut PgConnection,
    merchants: &[Uuid],
    members: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<Expiring>>> {
    if members.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Upcoming> = diesel::sql_query(
        "WITH first AS (
             SELECT member_id, min(expires_at) AS at FROM point_lots
              WHERE merchant_id = ANY($1) AND member_id = ANY($2) AND remaining > 0
                AND expires_at IS NOT NULL
              GROUP BY member_id)
         SELECT l.member_id, l.expires_at, l.remaining
           FROM point_lots l JOIN first f ON f.member_id = l.member_id
          WHERE l.merchant_id = ANY($1) AND l.remaining > 0
            AND l.expires_at < f.at + interval '1 day'
          ORDER BY l.member_id, l.expires_at",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(merchants)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(members)
    .load(conn)?;
    let mut out: HashMap<Uuid, Vec<Expiring>> = HashMap::new();
    for r in rows {
        out.entry(r.member_id)
            .or_default()
            .push((r.expires_at, r.remaining));
    }
    Ok(out)
}

/// The points of the lots (soonest first) expiring on the first local day, and that day.
pub fn first_day(lots: &[Expiring], tz: chrono_tz::Tz) -> Option<(i64, NaiveDate)> {
    let day = |at: DateTime<Utc>| at.with_timezone(&tz).date_naive();
    let first = day(lots.first()?.0);
    let total = lots
        .iter()
        .take_while(|(at, _)| day(*at) == first)
        .fold(0i64, |sum, (_, points)| sum.saturating_add(*points));
    Some((total, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_expiry_sums_the_first_local_day() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let lots = [
            (at("2026-12-12T08:00:00Z"), 100),
            (at("2026-12-12T21:30:00Z"), 20),
            (at("2026-12-13T08:00:00Z"), 5),
        ];
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        // In UTC both of the 12th's lots expire that day.
        assert_eq!(first_day(&lots, chrono_tz::UTC), Some((120, day(12))));
        // In Moscow (UTC+3) 21:30Z is already the 13th, with the third lot.
        assert_eq!(
            first_day(&lots, chrono_tz::Europe::Moscow),
            Some((100, day(12)))
        );
        assert_eq!(first_day(&[], chrono_tz::UTC), None);
    }
}
