//! Points movements: purchases earn, staff adjust. One transaction each, with the member's
//! row updated conditionally (points never below zero), a ledger row, the pass's new
//! version and its outbox row.

pub use super::ledger::PointsChange;
use super::ledger::{apply, Entry};
use super::rules::PosLimits;
use crate::db::Tenant;
use crate::domain::{ranges, Currency, PointActivityType};
use crate::models::{Member, Program};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
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
        channels: Channels,
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
        channels: Channels,
        tenant: &Tenant,
        member_id: Uuid,
    ) -> Result<PointsChange, ApiError> {
        purchase(conn, channels, tenant, member_id, &self)
    }
}

impl Movement for PointsAdjustment {
    fn allowed(&self, limits: &PosLimits) -> Result<(), ApiError> {
        limits.check_adjustment(self.delta)
    }

    fn record(
        self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        member_id: Uuid,
    ) -> Result<PointsChange, ApiError> {
        adjust(conn, channels, tenant, member_id, &self)
    }
}

pub fn purchase(
    conn: &mut PgConnection,
    channels: Channels,
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
    let currency = Currency::parse(&req.currency)
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
    let earned = rules.points_for(req.amount, member.tier.as_deref());
    let mut change = apply(
        conn,
        channels,
        tenant,
        &member,
        &rules,
        Entry {
            delta: earned,
            kind: PointActivityType::Purchase,
            reason: None,
            purchase: Some((req.amount, currency)),
            referral: None,
        },
    )?;
    change.earned = Some(earned);
    if member.referred_by.is_some() {
        super::referral::purchased(
            conn,
            channels,
            tenant,
            &rules,
            &member,
            req.amount,
            &mut change,
        )?;
    }
    Ok(change)
}

pub fn adjust(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    member_id: Uuid,
    req: &PointsAdjustment,
) -> Result<PointsChange, ApiError> {
    let member = Member::find(conn, tenant, member_id)?;
    let rules = super::program::rules(&Program::find(conn, tenant, member.program_id)?)?;
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
            delta: req.delta,
            kind: PointActivityType::Adjust,
            reason: Some(reason),
            purchase: None,
            referral: None,
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
        let rules = ProgramRules::parse("EUR", 10, tiers, 0, None).expect("valid rules");
        assert_eq!(rules.points_for(1050, Some("Bronze")), 105); // 10.50 EUR
        assert_eq!(rules.points_for(1099, Some("Bronze")), 109); // floor of 109.9
        assert_eq!(rules.points_for(1000, Some("Gold")), 150);
        assert_eq!(rules.points_for(9, None), 0);
        let yen = ProgramRules::parse("JPY", 1, vec![], 0, None).expect("valid rules");
        assert_eq!(yen.points_for(1500, None), 1500);
    }
}
