//! Paying with points at the till: a share of the receipt (`max_points_payment_percent`)
//! payable at `point_value` minor units a point, never beyond the balance. A quote says
//! what a receipt allows without spending.

use super::ledger::{apply, Entry, PointsChange};
use super::ProgramRules;
use crate::db::Tenant;
use crate::domain::{ranges, Currency, PointActivityType};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use crate::schema::point_activities;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsPayment {
    /// Points to spend.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub points: i64,
    /// The receipt's total before the discount, minor units.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub receipt_amount: i64,
    pub currency: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// The receipt's total, minor units.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub receipt_amount: i64,
    pub currency: String,
}

/// What a receipt allows paying with points.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Quote {
    /// The member's points.
    pub balance: i64,
    /// Most points this receipt takes: the cap and the balance, whichever is lower.
    pub max_points: i64,
    /// Their money value, minor units.
    pub max_discount: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub point_value: i64,
    pub max_points_payment_percent: i64,
}

/// A points payment made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointsPaid {
    /// The member's points after paying.
    pub points: i64,
    /// Points spent.
    pub spent: i64,
    /// Their money value off the receipt, minor units.
    pub discount: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Give it with the purchase (`redemption_id`) so that a return gives the points back.
    pub redemption_id: Uuid,
    pub tier: Option<String>,
    #[serde(skip)]
    pub pass_id: Uuid,
}

/// `(point_value, percent)`, or why the program takes no points.
fn terms(rules: &ProgramRules) -> Result<(i64, i64), ApiError> {
    match rules.lifecycle.point_value {
        Some(v) => Ok((v, rules.lifecycle.max_points_payment_percent.unwrap_or(100))),
        None => Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/points",
            "this program does not take points as payment (it has no point_value)",
        )])),
    }
}

/// Most points a receipt of `amount` takes under the cap (the balance aside).
fn cap_points(amount: i64, (value, percent): (i64, i64)) -> i64 {
    let money = i128::from(amount) * i128::from(percent) / 100;
    (money / i128::from(value)).clamp(0, i128::from(ranges::MAX_POINTS)) as i64
}

fn receipt(rules: &ProgramRules, amount: i64, currency: &str) -> Result<Currency, ApiError> {
    if let Some(p) = ranges::check("/receipt_amount", amount, 1..=ranges::MAX_AMOUNT, false) {
        return Err(ApiError::invalid_fields(vec![p]));
    }
    rules.same_currency(currency)
}

pub fn quote(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
    req: &QuoteRequest,
) -> Result<Quote, ApiError> {
    let (member, rules) = super::program::member_and_rules(conn, tenant, member_id)?;
    let currency = receipt(&rules, req.receipt_amount, &req.currency)?;
    let (value, percent) = terms(&rules)?;
    let max_points = cap_points(req.receipt_amount, (value, percent)).min(member.points);
    Ok(Quote {
        balance: member.points,
        max_points,
        max_discount: max_points * value,
        currency,
        point_value: value,
        max_points_payment_percent: percent,
    })
}

/// Spends points on a receipt: refused beyond the cap (`validation`, with `max_points`) or
/// the balance (`insufficient-funds`).
pub fn redeem(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    member_id: Uuid,
    req: &PointsPayment,
) -> Result<PointsPaid, ApiError> {
    let (member, rules) = super::program::member_and_rules(conn, tenant, member_id)?;
    let currency = receipt(&rules, req.receipt_amount, &req.currency)?;
    let (value, percent) = terms(&rules)?;
    if let Some(p) = ranges::check("/points", req.points, 1..=ranges::MAX_POINTS, false) {
        return Err(ApiError::invalid_fields(vec![p]));
    }
    let cap = cap_points(req.receipt_amount, (value, percent));
    if req.points > cap {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/points",
            format!(
                "at most {cap} points may pay this receipt ({percent}% of it at {value} minor units a point)"
            ),
        )])
        .with_extra("max_points", cap.into()));
    }
    let change: PointsChange = apply(
        conn,
        channels,
        tenant,
        &member,
        &rules,
        Entry {
            purchase: Some((req.receipt_amount, currency)),
            ..Entry::new(-req.points, PointActivityType::Spend, at)
        },
    )?;
    Ok(PointsPaid {
        points: change.points,
        spent: req.points,
        discount: req.points * value,
        currency,
        redemption_id: change.activity_id,
        tier: change.tier,
        pass_id: change.pass_id,
    })
}

/// The points a payment `redemption` of the member spent, for a purchase it belongs to.
pub fn paid_with(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: Uuid,
    redemption: Uuid,
) -> Result<i64, ApiError> {
    let delta: Option<i64> = point_activities::table
        .filter(point_activities::merchant_id.eq(tenant.merchant_id()))
        .filter(point_activities::member_id.eq(member))
        .filter(point_activities::id.eq(redemption))
        .filter(point_activities::type_.eq(PointActivityType::Spend))
        .select(point_activities::delta)
        .first(conn)
        .optional()?;
    delta.map(|d| -d).ok_or_else(|| {
        ApiError::invalid_fields(vec![FieldProblem::new(
            "/redemption_id",
            "not a points payment of this member",
        )])
    })
}

#[cfg(test)]
mod tests {
    use super::cap_points;

    #[test]
    fn the_cap_rounds_down_to_whole_points() {
        // 30% of 10.00 is 3.00; at 0.10 a point, 30 points.
        assert_eq!(cap_points(1000, (10, 30)), 30);
        // 30% of 10.05 is 3.015: 301 minor units, 30 whole points.
        assert_eq!(cap_points(1005, (10, 30)), 30);
        assert_eq!(cap_points(1, (10, 100)), 0);
        assert_eq!(
            cap_points(i64::MAX, (1, 100)),
            crate::domain::ranges::MAX_POINTS
        );
    }
}
