//! The console's first screen, and `GET /api/v1/dashboard`: members and installs per
//! program, points issued, spent and outstanding, and what the gift cards still owe.
//!
//! The figures are sums over the merchant's members, passes and ledgers, so they cost in
//! proportion to the merchant: 3-4 ms at a thousand members, seconds at a million. Each sum
//! is recorded (`dashboard_snapshots`) with how long it took. A merchant whose sum took less
//! than [`LIVE_BELOW_MS`] gets a fresh sum on every view; a bigger one is shown the last
//! snapshot, with its time, which the dashboard job ([`crate::jobs::dashboard`]) renews
//! every [`REFRESH_EVERY`]. Nothing is counted as purchases happen: a counter row updated
//! by every purchase would be a lock every till of the merchant queues on.

use crate::db::Tenant;
use crate::schema::dashboard_snapshots;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use uuid::Uuid;

/// A sum that took this long or longer is not repeated on every view.
pub const LIVE_BELOW_MS: i32 = 50;
/// How often the dashboard job renews the snapshots of merchants summed too slowly to sum
/// on every view.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// A snapshot older than this (no worker has run) is summed again on a view, however long
/// that takes: old figures are worse than a slow page.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::hours(1);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, QueryableByName)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, QueryableByName)]
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

/// The figures as summed (what a snapshot keeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Figures {
    programs: Vec<ProgramFigures>,
    gift_card_liability: Vec<Liability>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub programs: Vec<ProgramFigures>,
    pub gift_card_liability: Vec<Liability>,
    /// When the figures were summed: now, or for a merchant too big to sum on every view,
    /// when the dashboard job last did (every 5 minutes).
    pub as_of: DateTime<Utc>,
    /// Whether they were summed for this answer (false: the last snapshot).
    pub live: bool,
}

impl Dashboard {
    fn of(figures: Figures, as_of: DateTime<Utc>, live: bool) -> Dashboard {
        Dashboard {
            programs: figures.programs,
            gift_card_liability: figures.gift_card_liability,
            as_of,
            live,
        }
    }
}

/// The figures as of `now`: summed now, or the merchant's snapshot when summing takes long.
pub fn load(
    conn: &mut PgConnection,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> QueryResult<Dashboard> {
    let snapshot: Option<(DateTime<Utc>, serde_json::Value, i32)> = dashboard_snapshots::table
        .find(tenant.merchant_id())
        .select((
            dashboard_snapshots::as_of,
            dashboard_snapshots::figures,
            dashboard_snapshots::took_ms,
        ))
        .first(conn)
        .optional()?;
    if let Some((as_of, figures, took_ms)) = snapshot {
        if took_ms >= LIVE_BELOW_MS && as_of > now - STALE_AFTER {
            // A snapshot this service wrote; one it cannot read is summed again below.
            if let Ok(figures) = serde_json::from_value(figures) {
                return Ok(Dashboard::of(figures, as_of, false));
            }
        }
    }
    refresh(conn, tenant, now)
}

/// Sums the figures as of `now` and records them, with how long the sum took.
pub fn refresh(
    conn: &mut PgConnection,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> QueryResult<Dashboard> {
    let started = Instant::now();
    let figures = sum(conn, tenant)?;
    let took_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let json = serde_json::to_value(&figures).unwrap_or_default();
    diesel::insert_into(dashboard_snapshots::table)
        .values((
            dashboard_snapshots::merchant_id.eq(tenant.merchant_id()),
            dashboard_snapshots::as_of.eq(now),
            dashboard_snapshots::figures.eq(&json),
            dashboard_snapshots::took_ms.eq(took_ms),
        ))
        .on_conflict(dashboard_snapshots::merchant_id)
        .do_update()
        .set((
            dashboard_snapshots::as_of.eq(now),
            dashboard_snapshots::figures.eq(&json),
            dashboard_snapshots::took_ms.eq(took_ms),
        ))
        .execute(conn)?;
    Ok(Dashboard::of(figures, now, true))
}

/// Merchants whose snapshot is shown rather than summed on every view, and older than
/// `now`: what the dashboard job renews.
pub fn due(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<Vec<Uuid>> {
    dashboard_snapshots::table
        .filter(dashboard_snapshots::took_ms.ge(LIVE_BELOW_MS))
        .filter(dashboard_snapshots::as_of.lt(now))
        .order(dashboard_snapshots::as_of)
        .select(dashboard_snapshots::merchant_id)
        .load(conn)
}

/// Every figure, summed over the merchant's rows.
fn sum(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Figures> {
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
    Ok(Figures {
        programs,
        gift_card_liability,
    })
}
