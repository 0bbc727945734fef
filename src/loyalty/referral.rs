//! Referral rewards. A referred join records a referral; the program's rule pays both sides
//! on the join or on the referee's first qualifying purchase, as ledger activities of type
//! `referral` (pushed to both wallets like any change). Exactly once: the referral row moves
//! from `pending` only by a conditional update, and each reward activity is unique per
//! referral and member. A referrer past the monthly cap gets the referral recorded as
//! `capped`, and neither side earns.

use super::ledger::{apply, Entry, PointsChange};
use super::{ProgramRules, ReferralRule, ReferralTrigger};
use crate::db::Tenant;
use crate::models::Member;
use crate::problem::ApiError;
use crate::schema::{members, referrals};
use diesel::prelude::*;
use uuid::Uuid;

pub use super::rules::ReferralResult;

/// Records a referred join (inside the enrollment's transaction) and pays it when the rule
/// pays on joining.
pub fn joined(
    conn: &mut PgConnection,
    tenant: &Tenant,
    rules: &ProgramRules,
    referrer_id: Uuid,
    referee: &Member,
) -> Result<ReferralResult, ApiError> {
    let id = Uuid::new_v4();
    let status = if rules.referral.is_some() {
        "pending"
    } else {
        "no_rule"
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
        status: status.into(),
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
        Some(rule) if rule.trigger == ReferralTrigger::Join => {
            reward(conn, tenant, rules, rule, id, referrer_id, referee.id)
        }
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
        .filter(referrals::status.eq("pending"))
        .select((referrals::id, referrals::referrer_id))
        .for_update()
        .first(conn)
        .optional()?;
    let Some((id, referrer_id)) = pending else {
        return Ok(());
    };
    let result = reward(conn, tenant, rules, rule, id, referrer_id, referee.id)?;
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

/// Pays a pending referral, or records it as capped.
fn reward(
    conn: &mut PgConnection,
    tenant: &Tenant,
    rules: &ProgramRules,
    rule: &ReferralRule,
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
        status: "capped".into(),
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
            .filter(referrals::status.eq("rewarded"))
            .filter(referrals::rewarded_at.ge(month_start))
            .count()
            .get_result(conn)?;
        if this_month >= cap {
            diesel::update(referrals::table.find(id))
                .filter(referrals::status.eq("pending"))
                .set(referrals::status.eq("capped"))
                .execute(conn)?;
            return Ok(ReferralResult {
                message: format!(
                    "the referrer has already been rewarded for {cap} referrals this month; this one earns no points"
                ),
                ..base
            });
        }
    }
    let paid = diesel::update(referrals::table.find(id))
        .filter(referrals::status.eq("pending"))
        .set((
            referrals::status.eq("rewarded"),
            referrals::rewarded_at.eq(diesel::dsl::now),
            referrals::referrer_points.eq(rule.referrer_points),
            referrals::referee_points.eq(rule.referee_points),
        ))
        .execute(conn)?;
    if paid == 0 {
        // Settled already (a concurrent purchase got here first): nothing more to pay.
        let (status, referrer_points, referee_points): (String, i64, i64) = referrals::table
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
            tenant,
            member,
            rules,
            Entry {
                delta: points,
                kind: "referral",
                reason: Some(reason),
                purchase: None,
                referral: Some(id),
            },
        )?;
        changed.push(change.pass_id);
        Ok(())
    };
    grant(
        conn,
        &referrer,
        rule.referrer_points,
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
        status: "rewarded".into(),
        referrer_points: rule.referrer_points,
        referee_points: rule.referee_points,
        message: format!(
            "referral rewarded: {} points for the referrer, {} for the new member",
            rule.referrer_points, rule.referee_points
        ),
        changed_passes: changed,
        ..base
    })
}
