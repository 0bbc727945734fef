//! The console's first screen, and `GET /api/v1/dashboard`: members and installs per
//! program, points issued, spent and outstanding, and what the gift cards still owe.

use crate::db::Tenant;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct ProgramFigures {
    #[diesel(sql_type = SqlUuid)]
    pub program_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub members: i64,
    /// Members whose pass is registered on at least one Apple device.
    #[diesel(sql_type = BigInt)]
    pub apple_installs: i64,
    /// Members whose pass is saved in Google Wallet.
    #[diesel(sql_type = BigInt)]
    pub google_installs: i64,
    /// Every point ever credited (purchases, welcome, referrals, positive adjustments).
    #[diesel(sql_type = BigInt)]
    pub points_issued: i64,
    /// Every point ever debited (spent, expired, negative adjustments), as a positive number.
    #[diesel(sql_type = BigInt)]
    pub points_debited: i64,
    /// Points the members hold now.
    #[diesel(sql_type = BigInt)]
    pub points_outstanding: i64,
}

/// What a currency's gift cards still owe: the merchant's liability.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct Liability {
    #[diesel(sql_type = Text)]
    pub currency: String,
    /// Cards that can still be spent (pending or active).
    #[diesel(sql_type = BigInt)]
    pub cards: i64,
    /// Their balances, in minor units.
    #[diesel(sql_type = BigInt)]
    pub balance: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub programs: Vec<ProgramFigures>,
    pub gift_card_liability: Vec<Liability>,
}

pub fn load(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Dashboard> {
    // Each figure is one aggregate over the merchant's rows; the member counts and the
    // ledger sums are grouped per program separately so neither multiplies the other.
    let programs = diesel::sql_query(
        "SELECT p.id AS program_id, p.name,
                coalesce(m.members, 0) AS members,
                coalesce(m.apple, 0) AS apple_installs,
                coalesce(m.google, 0) AS google_installs,
                coalesce(l.issued, 0)::bigint AS points_issued,
                coalesce(l.debited, 0)::bigint AS points_debited,
                coalesce(m.outstanding, 0)::bigint AS points_outstanding
           FROM programs p
           LEFT JOIN (
                SELECT m.program_id, count(*) AS members, sum(m.points) AS outstanding,
                       count(*) FILTER (WHERE EXISTS (
                           SELECT 1 FROM registrations r
                            WHERE r.pass_id = s.id AND r.merchant_id = $1)) AS apple,
                       count(*) FILTER (WHERE EXISTS (
                           SELECT 1 FROM google_installs g
                            WHERE g.pass_id = s.id AND g.merchant_id = $1 AND g.saved)) AS google
                  FROM members m
                  LEFT JOIN passes s ON s.member_id = m.id AND s.merchant_id = $1
                 WHERE m.merchant_id = $1
                 GROUP BY m.program_id) m ON m.program_id = p.id
           LEFT JOIN (
                SELECT m.program_id,
                       sum(a.delta) FILTER (WHERE a.delta > 0) AS issued,
                       -sum(a.delta) FILTER (WHERE a.delta < 0) AS debited
                  FROM point_activities a JOIN members m ON m.id = a.member_id AND m.merchant_id = $1
                 WHERE a.merchant_id = $1
                 GROUP BY m.program_id) l ON l.program_id = p.id
          WHERE p.merchant_id = $1
          ORDER BY p.created_at, p.id",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .load(conn)?;
    let gift_card_liability = diesel::sql_query(
        "SELECT currency::text AS currency, count(*) AS cards,
                coalesce(sum(balance), 0)::bigint AS balance
           FROM gift_cards
          WHERE merchant_id = $1 AND state IN ('pending', 'active')
          GROUP BY currency ORDER BY currency",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .load(conn)?;
    Ok(Dashboard {
        programs,
        gift_card_liability,
    })
}
