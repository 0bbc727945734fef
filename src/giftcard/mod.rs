//! Gift-card money movements. Each one is a single transaction: a conditional update of the
//! balance (so concurrent tills can never overdraw), an append-only activity with the
//! balance after it, the pass's new version and its outbox row. Idempotency wraps them.

pub mod activity;
pub mod deactivate;
pub mod load;
pub mod redeem;
pub mod refund;
pub mod verify;

use crate::domain::Currency;
use crate::models::GiftCard;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use serde::Serialize;
use uuid::Uuid;

/// The answer to a money movement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Movement {
    pub activity_id: Uuid,
    /// Minor units moved by this activity (always positive).
    pub amount: i64,
    pub balance: i64,
    pub currency: String,
    pub state: String,
    #[serde(skip)]
    pub pass_id: Uuid,
}

/// A positive amount in minor units of the card's currency.
pub fn check_amount(amount: i64, currency: &str, card: &GiftCard) -> Result<(), ApiError> {
    check_range(amount)?;
    let parsed = Currency::parse(currency)
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/currency", e)]))?;
    if parsed.code() != card.currency.trim() {
        return Err(ApiError::new(
            ProblemKind::CurrencyMismatch,
            format!(
                "the card holds {}, not {}",
                card.currency.trim(),
                parsed.code()
            ),
        ));
    }
    Ok(())
}

/// 1 to [`MAX_AMOUNT`](crate::domain::ranges::MAX_AMOUNT) minor units, or a 422 on `/amount`.
pub fn check_range(amount: i64) -> Result<(), ApiError> {
    match crate::domain::ranges::check(
        "/amount",
        amount,
        1..=crate::domain::ranges::MAX_AMOUNT,
        false,
    ) {
        Some(p) => Err(ApiError::invalid_fields(vec![p])),
        None => Ok(()),
    }
}

pub fn require_usable(card: &GiftCard) -> Result<(), ApiError> {
    if card.state == "deactivated" {
        return Err(ApiError::new(
            ProblemKind::CardInactive,
            "the card is deactivated; it can only be read",
        ));
    }
    Ok(())
}

/// The card's state and balance under its row lock, refusing a deactivated card: what
/// every movement that is not a single conditional UPDATE decides on.
pub fn lock_usable(
    conn: &mut diesel::PgConnection,
    card_id: Uuid,
) -> Result<(String, i64), ApiError> {
    use crate::schema::gift_cards;
    use diesel::prelude::*;
    let (state, balance): (String, i64) = gift_cards::table
        .find(card_id)
        .select((gift_cards::state, gift_cards::balance))
        .for_update()
        .first(conn)?;
    if state == "deactivated" {
        return Err(ApiError::new(
            ProblemKind::CardInactive,
            "the card is deactivated; it can only be read",
        ));
    }
    Ok((state, balance))
}
