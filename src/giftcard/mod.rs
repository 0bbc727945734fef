//! Gift-card money movements. Each one is a single transaction: a conditional update of the
//! balance (so concurrent tills can never overdraw), an append-only activity with the
//! balance after it, the pass's new version and its outbox row. Idempotency wraps them.

pub mod activity;
pub mod deactivate;
pub mod issue;
pub mod load;
pub mod redeem;
pub mod refund;
pub mod verify;

use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, Currency, Parsed};
use crate::idempotency::{FastOutcome, IdempotencyKey};
use crate::models::GiftCard;
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use diesel::PgConnection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// The answer to a money movement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Movement {
    pub activity_id: Uuid,
    /// Minor units moved by this activity (always positive).
    pub amount: i64,
    pub balance: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    #[schema(value_type = String)]
    pub state: CardState,
    #[serde(skip)]
    pub pass_id: Uuid,
}

/// The body of a money movement on one card, applied under its `Idempotency-Key`.
pub trait MovementRequest: DeserializeOwned + Send + 'static {
    /// The answer: a [`Movement`], or for a redemption the body `passfold_redeem` built.
    type Answer: Serialize + Send + 'static;

    fn apply(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        max_balance: i64,
    ) -> Result<Self::Answer, ApiError>;

    /// The common case in one statement that also stores the answer under the key; `None`
    /// when it wrote nothing and [`apply`](Self::apply) is to run. Most movements have none.
    fn in_one_statement(
        &self,
        _conn: &mut PgConnection,
        _channels: Channels,
        _tenant: &Tenant,
        _gan: &CardNumber,
        _key: &IdempotencyKey,
        _fingerprint: &[u8],
    ) -> FastOutcome {
        Ok(None)
    }
}

/// A positive amount in minor units of the card's currency.
pub fn check_amount(
    amount: i64,
    currency: &Parsed<Currency>,
    card: &GiftCard,
) -> Result<(), ApiError> {
    check_range(amount)?;
    let currency = check_currency(currency)?;
    if currency != card.currency {
        return Err(ApiError::new(
            ProblemKind::CurrencyMismatch,
            format!("the card holds {}, not {currency}", card.currency),
        ));
    }
    Ok(())
}

/// The request's currency, or a 422 on `/currency`.
pub fn check_currency(currency: &Parsed<Currency>) -> Result<Currency, ApiError> {
    currency
        .get()
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/currency", e)]))
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
    if card.state == CardState::Deactivated {
        return Err(deactivated());
    }
    Ok(())
}

fn deactivated() -> ApiError {
    ApiError::new(
        ProblemKind::CardInactive,
        "the card is deactivated; it can only be read",
    )
}

diesel::define_sql_function! {
    /// Takes a card's row lock (migration 000029), a wait past `lock_timeout` raised with
    /// the constraint name `db::is_lock_timeout` recognises; false when there is no such card.
    fn passfold_lock_gift_card(merchant: diesel::sql_types::Uuid, card: diesel::sql_types::Uuid) -> diesel::sql_types::Bool;
}

/// Takes the card's row lock before a movement decides anything: a till kept waiting past
/// the lock timeout is told to retry (409 `idempotency-key-in-use`), like the
/// one-statement redemption.
pub fn lock(conn: &mut diesel::PgConnection, card: &GiftCard) -> Result<(), ApiError> {
    use diesel::RunQueryDsl;
    match diesel::select(passfold_lock_gift_card(card.merchant_id, card.id)).get_result(conn) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found("no such gift card")),
        Err(e) if crate::db::is_lock_timeout(&e) => Err(crate::idempotency::in_use()),
        Err(e) => Err(e.into()),
    }
}

/// The card's state and balance under its row lock, refusing a deactivated card: what
/// every movement that is not a single conditional UPDATE decides on.
pub fn lock_usable(
    conn: &mut diesel::PgConnection,
    card: &GiftCard,
) -> Result<(CardState, i64), ApiError> {
    use crate::schema::gift_cards;
    use diesel::prelude::*;
    lock(conn, card)?;
    let (state, balance): (CardState, i64) = gift_cards::table
        .find(card.id)
        .filter(gift_cards::merchant_id.eq(card.merchant_id))
        .select((gift_cards::state, gift_cards::balance))
        .first(conn)?;
    if state == CardState::Deactivated {
        return Err(deactivated());
    }
    Ok((state, balance))
}
