//! Returns. A purchase returned, in full or in part, takes back the points it earned and
//! gives back the points paid on it, both in proportion to the amount returned (counted on
//! the total returned so far, so several partial returns add up to exactly a full one).
//!
//! Points already spent cannot be taken from a balance: the balance stops at zero and the
//! rest is owed, taken from the member's next gains before they become spendable
//! (`ledger::apply`). The tier is recomputed: taken-back points no longer qualify.

use super::ledger::{apply, Entry};
use crate::db::Tenant;
use crate::domain::{ranges, Currency, PointActivityType};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use crate::schema::{members, purchases};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units returned; what remains of the purchase when absent.
    #[serde(default, deserialize_with = "crate::domain::ranges::whole_opt")]
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    pub amount: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Refunded {
    pub purchase_id: Uuid,
    /// Returned by this request, minor units.
    pub amount: i64,
    /// Returned so far, of `purchase_amount`.
    pub refunded_amount: i64,
    pub purchase_amount: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Points this return took back from the balance.
    pub points_taken_back: i64,
    /// Points it should have taken but the member had spent: owed from future gains.
    pub points_owed: i64,
    /// Points paid on the purchase given back.
    pub points_given_back: i64,
    /// The member's points after it.
    pub points: i64,
    pub tier: Option<String>,
    #[serde(skip)]
    pub pass_id: Uuid,
}

#[derive(Queryable)]
struct Bought {
    amount: i64,
    currency: Currency,
    points_earned: i64,
    points_paid: i64,
    refunded_amount: i64,
    points_taken_back: i64,
    points_given_back: i64,
}

/// `floor(total × done / whole)`, exactly.
fn share(total: i64, done: i64, whole: i64) -> i64 {
    (i128::from(total) * i128::from(done) / i128::from(whole.max(1))) as i64
}

pub fn refund(
    conn: &mut PgConnection,
    (channels, at): (Channels, DateTime<Utc>),
    tenant: &Tenant,
    member_id: Uuid,
    purchase_id: Uuid,
    req: &RefundRequest,
) -> Result<Refunded, ApiError> {
    let (member, rules) = super::program::member_and_rules(conn, tenant, member_id)?;
    // The member's row lock (guarded: a till kept waiting is told to retry) orders
    // concurrent returns of the member's purchases and the balance read below.
    super::ledger::lock_member(conn, tenant, member.id)?;
    let p: Bought = purchases::table
        .filter(purchases::merchant_id.eq(tenant.merchant_id()))
        .filter(purchases::member_id.eq(member.id))
        .filter(purchases::id.eq(purchase_id))
        .select((
            purchases::amount,
            purchases::currency,
            purchases::points_earned,
            purchases::points_paid,
            purchases::refunded_amount,
            purchases::points_taken_back,
            purchases::points_given_back,
        ))
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such purchase of this member"))?;
    let left = p.amount - p.refunded_amount;
    let amount = req.amount.unwrap_or(left);
    if left == 0 {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/amount",
            "this purchase has been returned in full already",
        )]));
    }
    if let Some(problem) = ranges::check("/amount", amount, 1..=left, false) {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            problem.pointer,
            format!("from 1 to {left} (what is left of the purchase)"),
        )]));
    }
    let done = p.refunded_amount + amount;
    let take = share(p.points_earned, done, p.amount) - p.points_taken_back;
    let give = share(p.points_paid, done, p.amount) - p.points_given_back;
    let mut pass_id = None;
    if give > 0 {
        let c = apply(
            conn,
            channels,
            tenant,
            &member,
            &rules,
            Entry {
                reason: Some("points paid on a returned purchase given back"),
                purchase_id: Some(purchase_id),
                qualifying: Some(0),
                ..Entry::new(give, PointActivityType::Refund, at)
            },
        )?;
        pass_id = Some(c.pass_id);
    }
    let mut owed = 0;
    if take > 0 {
        let balance: i64 = members::table
            .find(member.id)
            .select(members::points)
            .first(conn)?;
        let taken = take.min(balance);
        owed = take - taken;
        let reason = if owed > 0 {
            "points earned by a returned purchase taken back; the rest is owed"
        } else {
            "points earned by a returned purchase taken back"
        };
        let c = apply(
            conn,
            channels,
            tenant,
            &member,
            &rules,
            Entry {
                reason: Some(reason),
                purchase_id: Some(purchase_id),
                qualifying: Some(-take),
                take_first: Some(purchase_id),
                ..Entry::new(-taken, PointActivityType::Refund, at)
            },
        )?;
        pass_id = Some(c.pass_id);
        if owed > 0 {
            diesel::update(members::table.find(member.id))
                .set(members::points_owed.eq(members::points_owed + owed))
                .execute(conn)?;
        }
    }
    diesel::update(
        purchases::table
            .filter(purchases::merchant_id.eq(tenant.merchant_id()))
            .filter(purchases::id.eq(purchase_id)),
    )
    .set((
        purchases::refunded_amount.eq(done),
        purchases::points_taken_back.eq(purchases::points_taken_back + take),
        purchases::points_given_back.eq(purchases::points_given_back + give),
    ))
    .execute(conn)?;
    crate::segments::member_changed(conn, tenant, member.id, at)?;
    let (points, tier): (i64, Option<String>) = members::table
        .find(member.id)
        .select((members::points, members::tier))
        .first(conn)?;
    let pass_id = match pass_id {
        Some(id) => id,
        // Nothing moved (a return too small for a whole point): the pass stays as it is.
        None => crate::models::Pass::of_member(conn, tenant, member.id)?.id,
    };
    Ok(Refunded {
        purchase_id,
        amount,
        refunded_amount: done,
        purchase_amount: p.amount,
        currency: p.currency,
        points_taken_back: take - owed,
        points_owed: owed,
        points_given_back: give,
        points,
        tier,
        pass_id,
    })
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn partial_returns_add_up_to_a_full_one() {
        // 105 points over 3 returns of 10.00 + 10.00 + 13.33 of 33.33.
        let (earned, whole) = (105, 3333);
        let mut taken = 0;
        for done in [1000, 2000, 3333] {
            let now = share(earned, done, whole) - taken;
            assert!(now >= 0);
            taken += now;
        }
        assert_eq!(taken, earned);
    }
}
