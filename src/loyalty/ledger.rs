//! The one way a member's points move: an activity row, the member's balance and tier, and
//! the pass change, in the caller's transaction. Earning, adjustments and referral rewards
//! all go through [`apply`].

use super::ProgramRules;
use crate::db::Tenant;
use crate::domain::{Currency, PointActivityType};
use crate::models::Member;
use crate::pass_events::{self as outbox, Card, Channels};
use crate::problem::{ApiError, ProblemKind};
use crate::schema::{members, point_activities};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointsChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earned: Option<i64>,
    pub points: i64,
    pub lifetime_points: i64,
    pub tier: Option<String>,
    pub activity_id: Uuid,
    /// The referral reward this purchase triggered, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<super::rules::ReferralResult>,
    #[serde(skip)]
    pub pass_id: Uuid,
    /// Other passes the change moved (a referrer's, rewarded by this purchase).
    #[serde(skip)]
    pub also_changed: Vec<Uuid>,
}

/// One ledger entry to apply.
pub struct Entry<'a> {
    pub delta: i64,
    pub kind: PointActivityType,
    pub reason: Option<&'a str>,
    /// Amount and currency of the purchase that earned the points.
    pub purchase: Option<(i64, Currency)>,
    /// The referral a reward pays.
    pub referral: Option<Uuid>,
}

diesel::define_sql_function! {
    /// Takes a member's row lock (migration 000029), a wait past `lock_timeout` raised with
    /// the constraint name `db::is_lock_timeout` recognises; false when there is no such member.
    fn passfold_lock_member(merchant: diesel::sql_types::Uuid, member: diesel::sql_types::Uuid) -> diesel::sql_types::Bool;
}

/// Takes the member's row lock before points move: a till kept waiting past the lock
/// timeout is told to retry (409 `idempotency-key-in-use`), never a 500.
fn lock_member(conn: &mut PgConnection, tenant: &Tenant, member: Uuid) -> Result<(), ApiError> {
    match diesel::select(passfold_lock_member(tenant.merchant_id(), member)).get_result(conn) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found("no such member")),
        Err(e) if crate::db::is_lock_timeout(&e) => Err(crate::idempotency::in_use()),
        Err(e) => Err(e.into()),
    }
}

pub fn apply(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    member: &Member,
    rules: &ProgramRules,
    entry: Entry<'_>,
) -> Result<PointsChange, ApiError> {
    let Entry {
        delta,
        kind,
        reason,
        purchase,
        referral,
    } = entry;
    lock_member(conn, tenant, member.id)?;
    // Lifetime points grow with every gain and never shrink: tiers follow them.
    let gain = delta.max(0);
    let updated: Option<(i64, i64)> = diesel::update(members::table.find(member.id))
        .filter(members::points.ge(-delta.min(0)))
        .set((
            members::points.eq(members::points + delta),
            members::lifetime_points.eq(members::lifetime_points + gain),
            members::updated_at.eq(diesel::dsl::now),
        ))
        .returning((members::points, members::lifetime_points))
        .get_result(conn)
        .optional()?;
    let Some((points, lifetime)) = updated else {
        let current: i64 = members::table
            .find(member.id)
            .select(members::points)
            .for_update()
            .first(conn)?;
        return Err(ApiError::new(
            ProblemKind::InsufficientFunds,
            format!("the member has {current} points"),
        )
        .with_extra("points", current.into()));
    };
    let tier = rules.tier_for(lifetime).map(|t| t.name.clone());
    if tier != member.tier {
        diesel::update(members::table.find(member.id))
            .set(members::tier.eq(&tier))
            .execute(conn)?;
    }
    let activity_id = Uuid::new_v4();
    diesel::insert_into(point_activities::table)
        .values((
            point_activities::id.eq(activity_id),
            point_activities::merchant_id.eq(tenant.merchant_id()),
            point_activities::member_id.eq(member.id),
            point_activities::type_.eq(kind),
            point_activities::delta.eq(delta),
            point_activities::points_after.eq(points),
            point_activities::reason.eq(reason),
            point_activities::purchase_amount.eq(purchase.map(|p| p.0)),
            point_activities::purchase_currency.eq(purchase.map(|p| p.1)),
            point_activities::tier_after.eq(&tier),
            point_activities::referral_id.eq(referral),
        ))
        .execute(conn)?;
    let pass_id = outbox::pass_changed(conn, channels, Card::Member(member.id), kind.as_str())?;
    Ok(PointsChange {
        earned: None,
        points,
        lifetime_points: lifetime,
        tier,
        activity_id,
        referral: None,
        pass_id,
        also_changed: Vec::new(),
    })
}
