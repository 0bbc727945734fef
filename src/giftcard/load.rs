use super::activity::{Activity, NewActivity};
use super::{check_amount, lock_usable, require_usable, Movement, MovementRequest};
use crate::db::Tenant;
use crate::domain::ranges::{self, MAX_AMOUNT};
use crate::domain::{CardNumber, CardState, Currency, GiftCardActivityType, Parsed};
use crate::models::GiftCard;
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::schema::gift_cards;
use diesel::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Minor units to add; the balance stays within the configured maximum
    /// (`PASSFOLD_GIFT_CARD_MAX_BALANCE`).
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub amount: i64,
    #[schema(value_type = String)]
    pub currency: Parsed<Currency>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    /// Signed minor units, not 0: positive adds, negative removes (never below zero).
    #[schema(minimum = -1000000000000_i64, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub amount: i64,
    #[schema(value_type = String)]
    pub currency: Parsed<Currency>,
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

impl MovementRequest for Load {
    type Answer = Movement;

    fn apply(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        max_balance: i64,
    ) -> Result<Movement, ApiError> {
        load(conn, channels, tenant, gan, self, max_balance)
    }
}

impl MovementRequest for Adjust {
    type Answer = Movement;

    fn apply(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        max_balance: i64,
    ) -> Result<Movement, ApiError> {
        adjust(conn, channels, tenant, gan, self, max_balance)
    }
}

/// Adds money; the first load of a pending card activates it. Never above the maximum.
pub fn load(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Load,
    max_balance: i64,
) -> Result<Movement, ApiError> {
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    check_amount(req.amount, &req.currency, &card)?;
    require_usable(&card)?;
    super::lock(conn, &card)?;
    let updated: Option<(i64, CardState)> = diesel::update(gift_cards::table.find(card.id))
        .filter(gift_cards::state.ne(CardState::Deactivated))
        .filter(gift_cards::balance.le(max_balance - req.amount.min(max_balance)))
        .set((
            gift_cards::balance.eq(gift_cards::balance + req.amount),
            gift_cards::state.eq(CardState::Active),
            gift_cards::updated_at.eq(diesel::dsl::now),
        ))
        .returning((gift_cards::balance, gift_cards::state))
        .get_result(conn)
        .optional()?;
    let Some((balance, state)) = updated.filter(|_| req.amount <= max_balance) else {
        let (_, balance) = lock_usable(conn, &card)?;
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/amount",
            format!("the balance would pass the maximum of {max_balance} (it holds {balance})"),
        )]));
    };
    let kind = if card.state == CardState::Pending {
        GiftCardActivityType::Activate
    } else {
        GiftCardActivityType::Load
    };
    let (activity_id, pass_id) = Activity::record(
        conn,
        NewActivity {
            channels,
            merchant_id: tenant.merchant_id(),
            gift_card_id: card.id,
            kind,
            amount: req.amount,
            balance_after: balance,
            refunds: None,
            reason: None,
        },
    )?;
    Ok(Movement {
        activity_id,
        amount: req.amount,
        balance,
        currency: card.currency,
        state,
        pass_id,
    })
}

/// An admin's correction, with a reason, in either direction.
pub fn adjust(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Adjust,
    max_balance: i64,
) -> Result<Movement, ApiError> {
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    if let Some(p) = ranges::check("/amount", req.amount, -MAX_AMOUNT..=MAX_AMOUNT, true) {
        return Err(ApiError::invalid_fields(vec![p]));
    }
    check_amount(req.amount.saturating_abs(), &req.currency, &card)?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/reason",
            "1 to 200 characters",
        )]));
    }
    require_usable(&card)?;
    let (state, current) = lock_usable(conn, &card)?;
    let balance = current
        .checked_add(req.amount)
        .filter(|b| (0..=max_balance).contains(b))
        .ok_or_else(|| {
            if req.amount < 0 {
                ApiError::new(
                    ProblemKind::InsufficientFunds,
                    format!("the card holds {current}"),
                )
                .with_extra("balance", current.into())
            } else {
                ApiError::invalid_fields(vec![FieldProblem::new(
                    "/amount",
                    format!("the balance would pass the maximum of {max_balance}"),
                )])
            }
        })?;
    let state = if state == CardState::Pending && balance > 0 {
        CardState::Active
    } else {
        state
    };
    diesel::update(gift_cards::table.find(card.id))
        .set((
            gift_cards::balance.eq(balance),
            gift_cards::state.eq(state),
            gift_cards::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    let (activity_id, pass_id) = Activity::record(
        conn,
        NewActivity {
            channels,
            merchant_id: tenant.merchant_id(),
            gift_card_id: card.id,
            kind: GiftCardActivityType::Adjust,
            amount: req.amount,
            balance_after: balance,
            refunds: None,
            reason: Some(reason),
        },
    )?;
    Ok(Movement {
        activity_id,
        amount: req.amount.saturating_abs(),
        balance,
        currency: card.currency,
        state,
        pass_id,
    })
}
