//! Referral rewards. A referred join records a referral; the program's rule pays both sides
//! on the join or on the referee's first qualifying purchase, as ledger activities of type
//! `referral` (pushed to both wallets like any change). Exactly once: the referral row moves
//! from `pending` only by a conditional update, and each reward activity is unique per
//! referral and member. A referrer past the monthly cap gets the referral recorded as
//! `capped`, and neither side earns.

use super::ledger::{apply, Entry, PointsChange};
use super::{ProgramRules, ReferralRule, ReferralTrigger};
use crate::db::Tenant;
use crate::domain::{PointActivityType, ReferralStatus};
use crate::models::{Member, Program};
use crate::pass_events::Channels;
use crate::problem::ApiError;
use crate::schema::{link_opens, members, point_activities, referrals};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

pub use super::rules::ReferralResult;

/// Records a referred join (inside the enrollment's transaction) and pays it when the rule
/// pays on joining.
pub fn joined(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    rules: &ProgramRules,
    referrer_id: Uuid,
    referee: &Member,
) -> Result<ReferralResult, ApiError> {
    let id = Uuid::new_v4();
    let status = if rules.referral.is_some() {
        ReferralStatus::Pending
    } else {
        ReferralStatus::NoRule
    };
    diesel::insert_into(referrals::table)
        .values((
            referrals::id.eq(id),
            referrals::merchant_id.eq(tenant.merchant_id()),
            referrals::program_id.eq(referee.program_id),
            referrals::referrer_id.eq(referrer_id),
            referrals::referee_id.eq(referee.id),
            referrals::status.eq(status),
        ))
        .execute(conn)?;
    let pending = ReferralResult {
        referral_id: id,
        referrer_id,
        status,
        referrer_points: 0,
        referee_points: 0,
        message: String::new(),
        changed_passes: Vec::new(),
    };
    match &rules.referral {
        None => Ok(ReferralResult {
            message: "joined through a referral; this program gives no referral rewards".into(),
            ..pending
        }),
        Some(rule) if rule.trigger == ReferralTrigger::Join => reward(
            conn,
            (channels, at),
            tenant,
            (rules, rule),
            id,
            referrer_id,
            referee.id,
        ),
        Some(rule) => Ok(ReferralResult {
            message: match rule.min_purchase {
                Some(min) if min > 0 => format!(
                    "the referral rewards are paid after the first purchase of at least {}",
                    crate::domain::Money::new(min, rules.currency).format("en")
                ),
                _ => "the referral rewards are paid after the first purchase".into(),
            },
            ..pending
        }),
    }
}

/// After a referred member's purchase (inside its transaction): marks the conversion and
/// pays a `first_purchase` rule when the purchase qualifies. The purchase's answer then
/// carries the reward and the referee's points after it.
pub fn purchased(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    rules: &ProgramRules,
    referee: &Member,
    amount: i64,
    change: &mut PointsChange,
) -> Result<(), ApiError> {
    diesel::update(referrals::table)
        .filter(referrals::referee_id.eq(referee.id))
        .filter(referrals::first_purchase_at.is_null())
        .set(referrals::first_purchase_at.eq(diesel::dsl::now))
        .execute(conn)?;
    let Some(rule) = &rules.referral else {
        return Ok(());
    };
    if rule.trigger != ReferralTrigger::FirstPurchase || amount < rule.min_purchase.unwrap_or(0) {
        return Ok(());
    }
    let pending: Option<(Uuid, Uuid)> = referrals::table
        .filter(referrals::referee_id.eq(referee.id))
        .filter(referrals::status.eq(ReferralStatus::Pending))
        .select((referrals::id, referrals::referrer_id))
        .for_update()
        .first(conn)
        .optional()?;
    let Some((id, referrer_id)) = pending else {
        return Ok(());
    };
    let result = reward(
        conn,
        (channels, at),
        tenant,
        (rules, rule),
        id,
        referrer_id,
        referee.id,
    )?;
    if result.referee_points > 0 {
        let (points, lifetime, tier): (i64, i64, Option<String>) = members::table
            .find(referee.id)
            .select((members::points, members::lifetime_points, members::tier))
            .first(conn)?;
        (change.points, change.lifetime_points, change.tier) = (points, lifetime, tier);
    }
    change
        .also_changed
        .extend(result.changed_passes.iter().copied());
    change.referral = Some(result);
    Ok(())
}

/// Pays a pending referral, or records it as capped, by the program's rules and its
/// referral rule.
fn reward(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    (rules, rule): (&ProgramRules, &ReferralRule),
    id: Uuid,
    referrer_id: Uuid,
    referee_id: Uuid,
) -> Result<ReferralResult, ApiError> {
    // The referrer's row lock serialises this referrer's rewards, so the cap holds under
    // concurrent joins.
    let referrer: Member = members::table
        .find(referrer_id)
        .select(Member::as_select())
        .for_update()
        .first(conn)?;
    let base = ReferralResult {
        referral_id: id,
        referrer_id,
        status: ReferralStatus::Capped,
        referrer_points: 0,
        referee_points: 0,
        message: String::new(),
        changed_passes: Vec::new(),
    };
    if let Some(cap) = rule.monthly_cap {
        // Calendar months of the database session's time zone (UTC: diesel sets it).
        let month_start = diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("date_trunc('month', now())");
        let this_month: i64 = referrals::table
            .filter(referrals::referrer_id.eq(referrer_id))
            .filter(referrals::status.eq(ReferralStatus::Rewarded))
            .filter(referrals::rewarded_at.ge(month_start))
            .count()
            .get_result(conn)?;
        if this_month >= cap {
            diesel::update(referrals::table.find(id))
                .filter(referrals::status.eq(ReferralStatus::Pending))
                .set(referrals::status.eq(ReferralStatus::Capped))
                .execute(conn)?;
            return Ok(ReferralResult {
                message: format!(
                    "the referrer has already been rewarded for {cap} referrals this month; this one earns no points"
                ),
                ..base
            });
        }
    }
    // An erased referrer's card earns nothing more (privacy::erasure): the friend's share
    // is paid alone.
    let referrer_points = if referrer.erased_at.is_some() {
        0
    } else {
        rule.referrer_points
    };
    let paid = diesel::update(referrals::table.find(id))
        .filter(referrals::status.eq(ReferralStatus::Pending))
        .set((
            referrals::status.eq(ReferralStatus::Rewarded),
            referrals::rewarded_at.eq(diesel::dsl::now),
            referrals::referrer_points.eq(referrer_points),
            referrals::referee_points.eq(rule.referee_points),
        ))
        .execute(conn)?;
    if paid == 0 {
        // Settled already (a concurrent purchase got here first): nothing more to pay.
        let (status, referrer_points, referee_points): (ReferralStatus, i64, i64) =
            referrals::table
                .find(id)
                .select((
                    referrals::status,
                    referrals::referrer_points,
                    referrals::referee_points,
                ))
                .first(conn)?;
        return Ok(ReferralResult {
            status,
            referrer_points,
            referee_points,
            message: "this referral was already settled".into(),
            ..base
        });
    }
    let mut changed = Vec::new();
    let mut grant = |conn: &mut PgConnection, member: &Member, points: i64, reason: &str| {
        if points <= 0 {
            return Ok::<_, ApiError>(());
        }
        let change = apply(
            conn,
            channels,
            tenant,
            member,
            rules,
            Entry {
                reason: Some(reason),
                referral: Some(id),
                ..Entry::new(points, PointActivityType::Referral, at)
            },
        )?;
        changed.push(change.pass_id);
        Ok(())
    };
    grant(
        conn,
        &referrer,
        referrer_points,
        "referral: a friend joined",
    )?;
    let referee = Member::find(conn, tenant, referee_id)?;
    grant(
        conn,
        &referee,
        rule.referee_points,
        "referral: joined through a friend",
    )?;
    Ok(ReferralResult {
        status: ReferralStatus::Rewarded,
        referrer_points,
        referee_points: rule.referee_points,
        message: format!(
            "referral rewarded: {} points for the referrer, {} for the new member",
            referrer_points, rule.referee_points
        ),
        changed_passes: changed,
        ..base
    })
}

/// One referral a member made. Fields in the order of [`of_referrer`]'s selection.
#[derive(Debug, Serialize, utoipa::ToSchema, Queryable)]
pub struct ReferralEntry {
    pub referral_id: Uuid,
    pub referee_id: Uuid,
    pub referee_name: String,
    pub joined_at: DateTime<Utc>,
    pub status: ReferralStatus,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub rewarded_at: Option<DateTime<Utc>>,
    /// Points the referrer earned for this referral.
    pub reward: i64,
    /// Points the referee earned for it.
    pub referee_reward: i64,
}

/// Whom the member brought, newest first.
pub fn of_referrer(
    conn: &mut PgConnection,
    tenant: &Tenant,
    referrer: &Member,
) -> QueryResult<Vec<ReferralEntry>> {
    referrals::table
        .inner_join(members::table.on(members::id.eq(referrals::referee_id)))
        .filter(referrals::merchant_id.eq(tenant.merchant_id()))
        .filter(referrals::referrer_id.eq(referrer.id))
        .order(referrals::created_at.desc())
        .select((
            referrals::id,
            referrals::referee_id,
            members::name,
            referrals::created_at,
            referrals::status,
            referrals::first_purchase_at,
            referrals::rewarded_at,
            referrals::referrer_points,
            referrals::referee_points,
        ))
        .load(conn)
}

/// A page of whom the member brought, newest first, older than `before` (created, id).
pub fn of_referrer_page(
    conn: &mut PgConnection,
    tenant: &Tenant,
    referrer: &Member,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<ReferralEntry>> {
    let mut query = referrals::table
        .inner_join(members::table.on(members::id.eq(referrals::referee_id)))
        .filter(referrals::merchant_id.eq(tenant.merchant_id()))
        .filter(referrals::referrer_id.eq(referrer.id))
        .order((referrals::created_at.desc(), referrals::id.desc()))
        .limit(limit)
        .select((
            referrals::id,
            referrals::referee_id,
            members::name,
            referrals::created_at,
            referrals::status,
            referrals::first_purchase_at,
            referrals::rewarded_at,
            referrals::referrer_points,
            referrals::referee_points,
        ))
        .into_boxed();
    if let Some((at, id)) = before {
        query = query.filter(
            referrals::created_at
                .lt(at)
                .or(referrals::created_at.eq(at).and(referrals::id.lt(id))),
        );
    }
    query.load(conn)
}

/// How the member came in, if through a referral: its status and the member's reward.
pub fn of_referee(
    conn: &mut PgConnection,
    tenant: &Tenant,
    referee: &Member,
) -> QueryResult<Option<(ReferralStatus, i64)>> {
    referrals::table
        .filter(referrals::merchant_id.eq(tenant.merchant_id()))
        .filter(referrals::referee_id.eq(referee.id))
        .select((referrals::status, referrals::referee_points))
        .first(conn)
        .optional()
}

#[derive(Debug, Serialize, utoipa::ToSchema, QueryableByName)]
pub struct TopReferrer {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub member_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub joins: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub conversions: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub points: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralStats {
    /// Visitors who opened a member's referral link (each counted once per link).
    pub link_opens: i64,
    /// Visitors who opened the program's own join link.
    pub join_link_opens: i64,
    /// Members who joined through a referral.
    pub joins: i64,
    /// Referred members who have made a purchase.
    pub conversions: i64,
    pub rewarded: i64,
    pub pending: i64,
    /// Referrals past a referrer's monthly cap: nobody earned.
    pub capped: i64,
    /// Points granted by referral rewards, both sides.
    pub points_granted: i64,
    /// The ten members who brought the most.
    pub top_referrers: Vec<TopReferrer>,
}

/// How a program's referral links perform.
pub fn stats(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program: &Program,
) -> QueryResult<ReferralStats> {
    let merchant_id = tenant.merchant_id();
    let opens = |conn: &mut PgConnection, referred: bool| -> QueryResult<i64> {
        let q = link_opens::table
            .filter(link_opens::merchant_id.eq(merchant_id))
            .filter(link_opens::program_id.eq(program.id))
            .into_boxed();
        let q = if referred {
            q.filter(link_opens::referrer_id.is_not_null())
        } else {
            q.filter(link_opens::referrer_id.is_null())
        };
        q.count().get_result(conn)
    };
    let link_opens = opens(conn, true)?;
    let join_link_opens = opens(conn, false)?;
    let statuses: Vec<(ReferralStatus, i64)> = referrals::table
        .filter(referrals::merchant_id.eq(merchant_id))
        .filter(referrals::program_id.eq(program.id))
        .group_by(referrals::status)
        .select((referrals::status, diesel::dsl::count_star()))
        .load(conn)?;
    let count = |s: ReferralStatus| {
        statuses
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(0, |(_, n)| *n)
    };
    let conversions: i64 = referrals::table
        .filter(referrals::merchant_id.eq(merchant_id))
        .filter(referrals::program_id.eq(program.id))
        .filter(referrals::first_purchase_at.is_not_null())
        .count()
        .get_result(conn)?;
    let granted: Option<i64> = point_activities::table
        .inner_join(members::table)
        .filter(point_activities::merchant_id.eq(merchant_id))
        .filter(members::program_id.eq(program.id))
        .filter(point_activities::type_.eq(PointActivityType::Referral))
        .select(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
        >("sum(point_activities.delta)::bigint"))
        .first(conn)?;
    let top_referrers: Vec<TopReferrer> = diesel::sql_query(
        "SELECT m.id AS member_id, m.name, count(*) AS joins,
                count(r.first_purchase_at) AS conversions,
                COALESCE(sum(r.referrer_points), 0)::bigint AS points
           FROM referrals r JOIN members m ON m.id = r.referrer_id
          WHERE r.merchant_id = $1 AND r.program_id = $2
          GROUP BY m.id, m.name
          ORDER BY joins DESC, conversions DESC, m.name
          LIMIT 10",
    )
    .bind::<diesel::sql_types::Uuid, _>(merchant_id)
    .bind::<diesel::sql_types::Uuid, _>(program.id)
    .load(conn)?;
    Ok(ReferralStats {
        link_opens,
        join_link_opens,
        joins: statuses.iter().map(|(_, n)| n).sum(),
        conversions,
        rewarded: count(ReferralStatus::Rewarded),
        pending: count(ReferralStatus::Pending),
        capped: count(ReferralStatus::Capped),
        points_granted: granted.unwrap_or(0),
        top_referrers,
    })
}
