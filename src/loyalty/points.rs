//! Points movements: purchases earn, staff adjust. One transaction each, with the member's
//! row updated conditionally (points never below zero), a ledger row, the pass's new
//! version and its outbox row.

pub use super::ledger::PointsChange;
use super::ledger::{apply, Entry};
use super::rules::PosLimits;
use crate::db::Tenant;
use crate::domain::{ranges, PointActivityType};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use crate::schema::purchases;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Purchase {
    /// Minor units spent.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub amount: i64,
    pub currency: String,
    /// The points payment (`POST .../points/redeem`'s `redemption_id`) made on this
    /// receipt: a return of the purchase gives those points back, in proportion.
    #[serde(default)]
    pub redemption_id: Option<Uuid>,
    /// When the purchase was made (RFC 3339), for history recorded later; now when absent.
    /// Not in the future (5 minutes of clock skew allowed); more than 48 hours back only
    /// with an admin key. It is the purchase's time for points (their lot starts then, and
    /// may already have expired), tiers and segments.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-30T18:45:00+03:00")]
    pub purchased_at: Option<String>,
}

/// How far ahead of the clock a till's `purchased_at` may be.
const CLOCK_SKEW_MINUTES: i64 = 5;
/// How far back a pos key may date a purchase.
pub const POS_BACKDATE_HOURS: i64 = 48;

impl Purchase {
    /// The purchase's time: `purchased_at` checked against `now`, or `now`.
    fn time(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        let Some(raw) = self.purchased_at.as_deref() else {
            return Ok(now);
        };
        let at = DateTime::parse_from_rfc3339(raw.trim())
            .map_err(|_| {
                ApiError::invalid_fields(vec![FieldProblem::new(
                    "/purchased_at",
                    "an RFC 3339 time with its offset, e.g. 2026-11-30T18:45:00+03:00",
                )])
            })?
            .with_timezone(&Utc);
        if at > now + chrono::Duration::minutes(CLOCK_SKEW_MINUTES) {
            return Err(ApiError::invalid_fields(vec![FieldProblem::new(
                "/purchased_at",
                "in the future: a purchase is recorded when it has been made",
            )]));
        }
        Ok(at)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsAdjustment {
    /// Signed, not 0: positive grants, negative takes (never below zero).
    #[schema(minimum = -1000000000_i64, maximum = 1000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub delta: i64,
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// A till's request that moves a member's points: purchases and adjustments alike.
pub trait Movement: DeserializeOwned + Send + 'static {
    /// Whether a pos key may make it under the program's limits.
    fn allowed(&self, limits: &PosLimits) -> Result<(), ApiError>;

    /// Whether its time (if it gives one) is acceptable as of `now` for this key.
    fn timed(&self, _now: DateTime<Utc>, _admin: bool) -> Result<(), ApiError> {
        Ok(())
    }

    /// Makes it, in the caller's transaction.
    fn record(
        self,
        conn: &mut PgConnection,
        at: (Channels, DateTime<Utc>),
        tenant: &Tenant,
        member_id: Uuid,
    ) -> Result<PointsChange, ApiError>;
}

impl Movement for Purchase {
    fn allowed(&self, limits: &PosLimits) -> Result<(), ApiError> {
        limits.check_purchase(self.amount)
    }

    fn timed(&self, now: DateTime<Utc>, admin: bool) -> Result<(), ApiError> {
        let at = self.time(now)?;
        if !admin && at < now - chrono::Duration::hours(POS_BACKDATE_HOURS) {
            return Err(ApiError::forbidden(format!(
                "a purchase more than {POS_BACKDATE_HOURS} hours old (purchased_at) is \
                 recorded with an admin key: history is imported by the merchant, not the till"
            )));
        }
        Ok(())
    }

    fn record(
        self,
        conn: &mut PgConnection,
        at: (Channels, DateTime<Utc>),
        tenant: &Tenant,
        member_id: Uuid,
    ) -> Result<PointsChange, ApiError> {
        purchase(conn, at, tenant, member_id, &self)
    }
}

impl Movement for PointsAdjustment {
    fn allowed(&self, limits: &PosLimits) -> Result<(), ApiError> {
        limits.check_adjustment(self.delta)
    }

    fn record(
        self,
        conn: &mut PgConnection,
        at: (Channels, DateTime<Utc>),
        tenant: &Tenant,
        member_id: Uuid,
    ) -> Result<PointsChange, ApiError> {
        adjust(conn, at, tenant, member_id, &self)
    }
}

/// Records a purchase: its points earned (a lot), the purchase kept for returns (its id is
/// the earn row's), and a referral's first-purchase reward.
pub fn purchase(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    member_id: Uuid,
    req: &Purchase,
) -> Result<PointsChange, ApiError> {
    let (member, rules) = super::program::member_and_rules(conn, tenant, member_id)?;
    if let Some(p) = ranges::check("/amount", req.amount, 1..=ranges::MAX_AMOUNT, false) {
        return Err(ApiError::invalid_fields(vec![p]));
    }
    // The purchase's own time; `at` stays the moment it is recorded.
    let bought_at = req.time(at)?;
    let currency = rules.same_currency(&req.currency)?;
    let earned = rules.points_for(req.amount, member.tier.as_deref());
    let purchase_id = Uuid::new_v4();
    let points_paid = match req.redemption_id {
        Some(r) => super::payment::paid_with(conn, tenant, member.id, r)?,
        None => 0,
    };
    let mut change = apply(
        conn,
        channels,
        tenant,
        &member,
        &rules,
        Entry {
            id: purchase_id,
            purchase: Some((req.amount, currency)),
            purchase_id: Some(purchase_id),
            ..Entry::new(earned, PointActivityType::Earn, bought_at)
        },
    )?;
    diesel::insert_into(purchases::table)
        .values((
            purchases::id.eq(purchase_id),
            purchases::merchant_id.eq(tenant.merchant_id()),
            purchases::member_id.eq(member.id),
            purchases::amount.eq(req.amount),
            purchases::currency.eq(currency),
            purchases::points_earned.eq(earned),
            purchases::purchased_at.eq(bought_at),
            purchases::redemption_id.eq(req.redemption_id),
            purchases::points_paid.eq(points_paid),
        ))
        .execute(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => ApiError::invalid_fields(vec![FieldProblem::new(
                "/redemption_id",
                "this points payment already belongs to another purchase",
            )]),
            e => e.into(),
        })?;
    change.earned = Some(earned);
    if member.referred_by.is_some() {
        super::referral::purchased(
            conn,
            (channels, at),
            tenant,
            &rules,
            &member,
            req.amount,
            &mut change,
        )?;
    }
    crate::segments::member_changed(conn, tenant, member.id, at)?;
    Ok(change)
}

pub fn adjust(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    member_id: Uuid,
    req: &PointsAdjustment,
) -> Result<PointsChange, ApiError> {
    let (member, rules) = super::program::member_and_rules(conn, tenant, member_id)?;
    let reason = req.reason.trim();
    let mut problems = Vec::new();
    // A range, not `abs()`: `i64::MIN.abs()` overflows.
    problems.extend(ranges::check(
        "/delta",
        req.delta,
        -ranges::MAX_POINTS_CHANGE..=ranges::MAX_POINTS_CHANGE,
        true,
    ));
    if reason.is_empty() || reason.chars().count() > 200 {
        problems.push(FieldProblem::new("/reason", "1 to 200 characters"));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    apply(
        conn,
        channels,
        tenant,
        &member,
        &rules,
        Entry {
            reason: Some(reason),
            ..Entry::new(req.delta, PointActivityType::Adjust, at)
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::loyalty::ProgramRules;
    use crate::loyalty::Tier;

    #[test]
    fn earning_rounds_down_and_applies_the_tier_multiplier() {
        let tiers = vec![
            Tier {
                name: "Bronze".into(),
                min_points: 0,
                multiplier: None,
            },
            Tier {
                name: "Gold".into(),
                min_points: 1000,
                multiplier: Some(1.5),
            },
        ];
        let rules = ProgramRules::parse("EUR", 10, tiers, 0, None, Default::default())
            .expect("valid rules");
        assert_eq!(rules.points_for(1050, Some("Bronze")), 105); // 10.50 EUR
        assert_eq!(rules.points_for(1099, Some("Bronze")), 109); // floor of 109.9
        assert_eq!(rules.points_for(1000, Some("Gold")), 150);
        assert_eq!(rules.points_for(9, None), 0);
        let yen = ProgramRules::parse("JPY", 1, vec![], 0, None, Default::default())
            .expect("valid rules");
        assert_eq!(yen.points_for(1500, None), 1500);
    }
}
