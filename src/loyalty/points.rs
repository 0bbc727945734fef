//! Points movements: purchases earn, staff adjust. One transaction each, with the member's
//! row updated conditionally (points never below zero), a ledger row, the pass's new
//! version and its outbox row.

pub use super::ledger::PointsChange;
use super::ledger::{apply, Entry};
use super::rules::PosLimits;
use crate::db::Tenant;
use crate::domain::{ranges, Currency, PointActivityType};
use crate::loyalty::ProgramRules;
use crate::models::{Member, Program};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
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
    let member = Member::find(conn, tenant, member_id)?;
    let program = Program::find(conn, tenant, member.program_id)?;
    let rules = super::program::rules(&program)?;
    if let Some(p) = ranges::check("/amount", req.amount, 1..=ranges::MAX_AMOUNT, false) {
        return Err(ApiError::invalid_fields(vec![p]));
    }
    let currency = same_currency(&rules, &req.currency)?;
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
            ..Entry::new(earned, PointActivityType::Earn, at)
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
            purchases::purchased_at.eq(at),
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
    Ok(change)
}

/// The request's currency, which must be the program's.
pub(super) fn same_currency(rules: &ProgramRules, code: &str) -> Result<Currency, ApiError> {
    let currency = Currency::parse(code)
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/currency", e)]))?;
    if currency != rules.currency {
        return Err(ApiError::new(
            ProblemKind::CurrencyMismatch,
            format!(
                "the program counts purchases in {}, not {}",
                rules.currency, currency
            ),
        ));
    }
    Ok(currency)
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
