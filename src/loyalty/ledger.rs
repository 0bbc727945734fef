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
use chrono::{DateTime, Duration, Utc};
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
    /// The purchase recorded (its id returns it: `POST .../purchases/{purchase_id}/refund`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_id: Option<Uuid>,
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
    /// The activity's id (a purchase's earn row has the purchase's id).
    pub id: Uuid,
    pub delta: i64,
    pub kind: PointActivityType,
    pub reason: Option<&'a str>,
    /// Amount and currency of the purchase that earned the points.
    pub purchase: Option<(i64, Currency)>,
    /// The referral a reward pays.
    pub referral: Option<Uuid>,
    /// When it happens (the clock's "now"): the activity's time and a new lot's start.
    pub at: DateTime<Utc>,
    /// The purchase an `earn` or `refund` entry belongs to.
    pub purchase_id: Option<Uuid>,
    /// What it adds to the member's qualifying points; a gain's own points when `None`.
    pub qualifying: Option<i64>,
    /// Points taken are taken first from the lot this activity earned.
    pub take_first: Option<Uuid>,
    /// Days a gain's lot lasts, in place of the program's rule (an automation's "+50
    /// points for 7 days").
    pub expires_in_days: Option<i64>,
}

impl<'a> Entry<'a> {
    /// An entry of `delta` points of `kind` at `at`, nothing else attached.
    pub fn new(delta: i64, kind: PointActivityType, at: DateTime<Utc>) -> Self {
        Entry {
            id: Uuid::new_v4(),
            delta,
            kind,
            reason: None,
            purchase: None,
            referral: None,
            at,
            purchase_id: None,
            qualifying: None,
            take_first: None,
            expires_in_days: None,
        }
    }
}

diesel::define_sql_function! {
    /// Takes a member's row lock (migrations 000029, 000050), a wait past `lock_timeout`
    /// raised with the constraint name `db::is_lock_timeout` recognises; `live`, `erased` or
    /// `missing`.
    fn passfold_lock_member_state(merchant: diesel::sql_types::Uuid, member: diesel::sql_types::Uuid) -> diesel::sql_types::Text;
}

/// Takes the member's row lock before points move: a till kept waiting past the lock
/// timeout is told to retry (409 `idempotency-key-in-use`), never a 500. An erased
/// member's points never move again (410 `gone`), checked under the lock so that an
/// erasure running at the same time is seen.
pub(crate) fn lock_member(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
) -> Result<(), ApiError> {
    match diesel::select(passfold_lock_member_state(tenant.merchant_id(), member))
        .get_result::<String>(conn)
    {
        Ok(state) if state == "live" => Ok(()),
        Ok(state) if state == "erased" => Err(crate::privacy::erased_problem()),
        Ok(_) => Err(ApiError::not_found("no such member")),
        Err(e) if crate::db::is_lock_timeout(&e) => Err(crate::idempotency::in_use()),
        Err(e) => Err(e.into()),
    }
}

/// The one way points move. A gain first pays what the member owes from an earlier return
/// (recorded as a second `refund` row) and the rest becomes a lot with the program's
/// expiry; a loss takes from the lots in spending order. The tier follows qualifying
/// points: all time, or with a tier window the points of the window, reached at once
/// and lost only when the period is judged (`jobs::requalify`).
pub fn apply(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    member: &Member,
    rules: &ProgramRules,
    entry: Entry<'_>,
) -> Result<PointsChange, ApiError> {
    let Entry {
        id: activity_id,
        delta,
        kind,
        reason,
        purchase,
        referral,
        at,
        purchase_id,
        qualifying,
        take_first,
        expires_in_days,
    } = entry;
    lock_member(conn, tenant, member.id)?;
    let owed: i64 = if delta > 0 {
        members::table
            .find(member.id)
            .select(members::points_owed)
            .first(conn)?
    } else {
        0
    };
    let paid = owed.min(delta.max(0));
    let qualifying = qualifying.unwrap_or(delta.max(0));
    let updated: Option<Moved> = diesel::update(members::table.find(member.id))
        .filter(members::points.ge(-delta.min(0)))
        .set((
            members::points.eq(members::points + (delta - paid)),
            members::lifetime_points.eq(members::lifetime_points + qualifying),
            members::points_owed.eq(members::points_owed - paid),
            members::updated_at.eq(diesel::dsl::now),
        ))
        .returning((
            members::points,
            members::lifetime_points,
            members::tier,
            members::tier_review_at,
        ))
        .get_result(conn)
        .optional()?;
    let Some((points, lifetime, held, review)) = updated else {
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
    let tier = match rules.lifecycle.tier_window_days {
        None => rules.tier_for(lifetime).map(|t| t.name.clone()),
        Some(days) => {
            let window = window_points(conn, member.id, at - Duration::days(days))?
                .saturating_add(qualifying);
            rules.better_tier(held.as_deref(), window)
        }
    };
    if tier != held || (review.is_none() && rules.lifecycle.tier_window_days.is_some()) {
        // With a window, a tier reached starts a new period.
        let review = rules
            .lifecycle
            .tier_window_days
            .map(|days| at + Duration::days(days));
        diesel::update(members::table.find(member.id))
            .set((members::tier.eq(&tier), members::tier_review_at.eq(review)))
            .execute(conn)?;
    }
    insert_activity(
        conn,
        tenant,
        member.id,
        Row {
            id: activity_id,
            kind,
            delta,
            points_after: points + paid,
            reason,
            purchase,
            tier: &tier,
            referral,
            at,
            purchase_id,
            qualifying,
        },
    )?;
    if paid > 0 {
        insert_activity(
            conn,
            tenant,
            member.id,
            Row {
                id: Uuid::new_v4(),
                kind: PointActivityType::Refund,
                delta: -paid,
                points_after: points,
                reason: Some("points owed from an earlier return"),
                purchase: None,
                tier: &tier,
                referral: None,
                at,
                purchase_id: None,
                qualifying: 0,
            },
        )?;
    }
    if delta - paid > 0 {
        let expires = match expires_in_days {
            Some(days) => Some(at + chrono::Duration::days(days)),
            None => rules.lifecycle.expiry_of(kind, at),
        };
        super::lots::add(
            conn,
            tenant,
            member.id,
            activity_id,
            delta - paid,
            at,
            expires,
        )?;
    } else if delta < 0 {
        super::lots::consume(conn, tenant, member.id, -delta, take_first)?;
    }
    let pass_id = outbox::pass_changed(conn, channels, Card::Member(member.id), kind.as_str())?;
    // A tier reached (or lost to a return) is told on the card, as a tier lost at a review
    // is (`jobs::requalify`).
    if let Some(name) = tier.as_ref().filter(|_| tier != held) {
        let notice = super::notices::Notice::Tier { name: name.clone() };
        super::notices::post(
            conn,
            channels,
            &[(tenant.merchant_id(), member.id, notice)],
            at,
        )?;
    }
    Ok(PointsChange {
        earned: None,
        points,
        lifetime_points: lifetime,
        tier,
        activity_id,
        purchase_id,
        referral: None,
        pass_id,
        also_changed: Vec::new(),
    })
}

/// A member's row after points moved: points, lifetime points, tier, tier review.
type Moved = (i64, i64, Option<String>, Option<DateTime<Utc>>);

/// Qualifying points a member earned since `since`.
pub fn window_points(
    conn: &mut PgConnection,
    member: Uuid,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query(
        "SELECT coalesce(sum(qualifying), 0)::bigint AS n FROM point_activities \
          WHERE member_id = $1 AND created_at > $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(member)
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .get_result::<Sum>(conn)?
    .n)
}

/// One ledger row.
pub struct Row<'a> {
    pub id: Uuid,
    pub kind: PointActivityType,
    pub delta: i64,
    pub points_after: i64,
    pub reason: Option<&'a str>,
    pub purchase: Option<(i64, Currency)>,
    pub tier: &'a Option<String>,
    pub referral: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub purchase_id: Option<Uuid>,
    pub qualifying: i64,
}

/// Appends one row to a member's ledger: the only insert into `point_activities` outside
/// the set-based jobs.
pub fn insert_activity(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    row: Row<'_>,
) -> QueryResult<()> {
    diesel::insert_into(point_activities::table)
        .values((
            point_activities::id.eq(row.id),
            point_activities::merchant_id.eq(tenant.merchant_id()),
            point_activities::member_id.eq(member),
            point_activities::type_.eq(row.kind),
            point_activities::delta.eq(row.delta),
            point_activities::points_after.eq(row.points_after),
            point_activities::reason.eq(row.reason),
            point_activities::purchase_amount.eq(row.purchase.map(|p| p.0)),
            point_activities::purchase_currency.eq(row.purchase.map(|p| p.1)),
            point_activities::tier_after.eq(row.tier),
            point_activities::referral_id.eq(row.referral),
            point_activities::created_at.eq(row.at),
            point_activities::purchase_id.eq(row.purchase_id),
            point_activities::qualifying.eq(row.qualifying),
        ))
        .execute(conn)
        .map(|_| ())
}
