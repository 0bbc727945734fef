//! Checks the whole ledger: every balance equals the sum of its activities, and every
//! activity's `balance_after` is the running total in ledger order; a member's points are
//! what their open lots hold, and lifetime points the sum of what qualified; every points
//! activity belongs to an existing member of its merchant (the append-only table has no
//! foreign keys: its writers hold the member's row lock).

use crate::db::Tenant;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerReport {
    pub gift_cards_checked: i64,
    pub members_checked: i64,
    pub problems: Vec<String>,
}

#[derive(QueryableByName)]
struct Problem {
    #[diesel(sql_type = Text)]
    problem: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const CHECKS: &str = r#"
SELECT 'gift card ' || g.gan || ': balance ' || g.balance || ' but activities sum to ' || COALESCE(s.total, 0) AS problem
  FROM gift_cards g LEFT JOIN (SELECT gift_card_id, SUM(amount) AS total FROM gift_card_activities GROUP BY gift_card_id) s
    ON s.gift_card_id = g.id
 WHERE ($1::uuid IS NULL OR g.merchant_id = $1) AND g.balance <> COALESCE(s.total, 0)
UNION ALL
SELECT 'gift card activity ' || id || ': balance_after ' || balance_after || ' but running total ' || running
  FROM (SELECT a.id, a.balance_after, a.merchant_id,
               SUM(a.amount) OVER (PARTITION BY a.gift_card_id ORDER BY a.seq) AS running
          FROM gift_card_activities a) r
 WHERE ($1::uuid IS NULL OR r.merchant_id = $1) AND r.balance_after <> r.running
UNION ALL
SELECT 'member ' || m.card_number || ': points ' || m.points || ' but activities sum to ' || COALESCE(s.total, 0)
  FROM members m LEFT JOIN (SELECT member_id, SUM(delta) AS total FROM point_activities GROUP BY member_id) s
    ON s.member_id = m.id
 WHERE ($1::uuid IS NULL OR m.merchant_id = $1) AND m.points <> COALESCE(s.total, 0)
UNION ALL
SELECT 'member ' || m.card_number || ': points ' || m.points || ' but open lots hold ' || COALESCE(l.total, 0)
  FROM members m LEFT JOIN (SELECT member_id, SUM(remaining) AS total FROM point_lots GROUP BY member_id) l
    ON l.member_id = m.id
 WHERE ($1::uuid IS NULL OR m.merchant_id = $1) AND m.points <> COALESCE(l.total, 0)
UNION ALL
SELECT 'member ' || m.card_number || ': lifetime points ' || m.lifetime_points || ' but qualifying activities sum to ' || COALESCE(s.total, 0)
  FROM members m LEFT JOIN (SELECT member_id, SUM(qualifying) AS total FROM point_activities GROUP BY member_id) s
    ON s.member_id = m.id
 WHERE ($1::uuid IS NULL OR m.merchant_id = $1) AND m.lifetime_points <> COALESCE(s.total, 0)
UNION ALL
SELECT 'point activity ' || id || ': points_after ' || points_after || ' but running total ' || running
  FROM (SELECT a.id, a.points_after, a.merchant_id,
               SUM(a.delta) OVER (PARTITION BY a.member_id ORDER BY a.seq) AS running
          FROM point_activities a) r
 WHERE ($1::uuid IS NULL OR r.merchant_id = $1) AND r.points_after <> r.running
UNION ALL
SELECT 'point activity ' || a.id || ': no member ' || a.member_id || ' of its merchant'
  FROM point_activities a LEFT JOIN members m ON m.id = a.member_id AND m.merchant_id = a.merchant_id
 WHERE ($1::uuid IS NULL OR a.merchant_id = $1) AND m.id IS NULL
"#;

/// The tenant's ledger, or every merchant's with `None` (the CLI).
pub fn verify(conn: &mut PgConnection, tenant: Option<&Tenant>) -> QueryResult<LedgerReport> {
    let merchant = tenant.map(|t| t.merchant_id());
    let problems: Vec<Problem> = diesel::sql_query(CHECKS)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(merchant)
        .load(conn)?;
    let mut count = |table: &str| -> QueryResult<i64> {
        let q =
            format!("SELECT count(*) AS n FROM {table} WHERE $1::uuid IS NULL OR merchant_id = $1");
        Ok(diesel::sql_query(q)
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(merchant)
            .get_result::<Count>(conn)?
            .n)
    };
    Ok(LedgerReport {
        gift_cards_checked: count("gift_cards")?,
        members_checked: count("members")?,
        problems: problems.into_iter().map(|p| p.problem).collect(),
    })
}
