use super::activity::{Activity, NewActivity};
use super::{lock_usable, require_usable, Movement, MovementRequest};
use crate::db::Tenant;
use crate::domain::{CardNumber, GiftCardActivityType};
use crate::models::GiftCard;
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use crate::schema::{gift_card_activities, gift_cards};
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// The redemption to give back.
    pub activity_id: Uuid,
    /// Minor units; by default what is left of that redemption.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(default, deserialize_with = "crate::domain::ranges::whole_opt")]
    pub amount: Option<i64>,
}

impl MovementRequest for Refund {
    type Answer = Movement;

    fn apply(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        max_balance: i64,
    ) -> Result<Movement, ApiError> {
        refund(conn, channels, tenant, gan, self, max_balance)
    }
}

/// Gives back (part of) a redemption: never more than it took minus earlier refunds.
pub fn refund(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Refund,
    max_balance: i64,
) -> Result<Movement, ApiError> {
    if let Some(amount) = req.amount {
        super::check_range(amount)?;
    }
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    require_usable(&card)?;
    // The card's row lock serializes refunds of the same redemption.
    let (state, current) = lock_usable(conn, &card)?;
    let redeemed: Option<(GiftCardActivityType, i64)> = gift_card_activities::table
        .filter(gift_card_activities::id.eq(req.activity_id))
        .filter(gift_card_activities::gift_card_id.eq(card.id))
        .select((gift_card_activities::type_, gift_card_activities::amount))
        .first(conn)
        .optional()?;
    let taken = match redeemed {
        Some((GiftCardActivityType::Redeem, amount)) => -amount,
        Some(_) => {
            return Err(ApiError::invalid_fields(vec![FieldProblem::new(
                "/activity_id",
                "only a redemption can be refunded",
            )]))
        }
        None => {
            return Err(ApiError::invalid_fields(vec![FieldProblem::new(
                "/activity_id",
                "no redemption with this id on this card",
            )]))
        }
    };
    let refunded: i64 = gift_card_activities::table
        .filter(gift_card_activities::refunds_activity_id.eq(req.activity_id))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "COALESCE(SUM(amount), 0)::bigint",
        ))
        .first(conn)?;
    let left = taken - refunded;
    let amount = req.amount.unwrap_or(left);
    if amount <= 0 {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/amount",
            "a positive whole number of minor units",
        )])
        .with_extra("refundable", left.into()));
    }
    if amount > left {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/amount",
            format!("only {left} of that redemption is left to refund"),
        )])
        .with_extra("refundable", left.into()));
    }
    let balance = current + amount;
    if balance > max_balance {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/amount",
            format!("the balance would pass the maximum of {max_balance}"),
        )]));
    }
    diesel::update(gift_cards::table.find(card.id))
        .set((
            gift_cards::balance.eq(balance),
            gift_cards::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    let (activity_id, pass_id) = Activity::record(
        conn,
        NewActivity {
            channels,
            merchant_id: tenant.merchant_id(),
            gift_card_id: card.id,
            kind: GiftCardActivityType::Refund,
            amount,
            balance_after: balance,
            refunds: Some(req.activity_id),
            reason: None,
        },
    )?;
    Ok(Movement {
        activity_id,
        amount,
        balance,
        currency: card.currency,
        state,
        pass_id,
    })
}
