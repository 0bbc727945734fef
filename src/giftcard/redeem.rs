use super::activity::{Activity, NewActivity};
use super::{check_amount, check_range, lock_usable, require_usable, Movement, MovementRequest};
use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, Currency, GiftCardActivityType, Parsed};
use crate::idempotency::{FastOutcome, IdempotencyKey};
use crate::models::GiftCard;
use crate::pass_events::Channels;
use crate::problem::{ApiError, ProblemKind};
use crate::schema::gift_cards;
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// Minor units to take.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub amount: i64,
    #[schema(value_type = String)]
    pub currency: Parsed<Currency>,
    /// Take what the card has when it holds less than `amount` (the answer says how much).
    #[serde(default)]
    pub allow_partial: bool,
}

impl MovementRequest for Redeem {
    /// Redemptions are never capped by the maximum balance: they only lower it.
    fn apply(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        _max_balance: i64,
    ) -> Result<Movement, ApiError> {
        redeem(conn, channels, tenant, gan, self)
    }

    fn in_one_statement(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        key: &IdempotencyKey,
        fingerprint: &[u8],
    ) -> FastOutcome {
        redeem_in_one_statement(conn, channels, tenant, gan, self, key, fingerprint)
    }
}

/// The common redemption in one statement (`passfold_redeem`, see its migration): the card,
/// the activity, the pass, the outbox and the stored answer in one round trip. `None` when
/// it wrote nothing: an unusual request, a card that does not qualify, or a key already
/// used; [`redeem`] under the idempotency wrapper then settles it and explains.
pub fn redeem_in_one_statement(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Redeem,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> FastOutcome {
    use diesel::sql_types::{Array, BigInt, Bytea, Text, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Done {
        #[diesel(sql_type = SqlUuid)]
        pass_id: Uuid,
        #[diesel(sql_type = Bytea)]
        body: Vec<u8>,
    }
    let Ok(currency) = req.currency.get() else {
        return Ok(None);
    };
    if check_range(req.amount).is_err() {
        return Ok(None);
    }
    let done: Result<Option<Done>, _> =
        diesel::sql_query("SELECT * FROM passfold_redeem($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind::<SqlUuid, _>(tenant.merchant_id())
            .bind::<Text, _>(gan.as_str())
            .bind::<Text, _>(currency.code())
            .bind::<BigInt, _>(req.amount)
            .bind::<SqlUuid, _>(Uuid::new_v4())
            .bind::<Text, _>(key.as_str())
            .bind::<Bytea, _>(fingerprint)
            .bind::<Array<Text>, _>(channels.all())
            .get_result(conn)
            .optional();
    match done {
        Ok(done) => Ok(done.map(|d| (d.pass_id, d.body))),
        // The key is taken: the general path replays its answer or refuses the reuse.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        )) if info.constraint_name() == Some("idempotency_keys_pkey") => Ok(None),
        // Waited too long behind another request on the same card or key: as the general
        // path answers it.
        Err(e) if crate::db::is_lock_timeout(&e) => Err(crate::idempotency::in_use()),
        Err(e) => Err(e.into()),
    }
}

/// Takes money from a card. The balance is decremented by a conditional UPDATE, so two
/// tills can never both spend the last of it.
pub fn redeem(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Redeem,
) -> Result<Movement, ApiError> {
    check_range(req.amount)?;
    let currency = super::check_currency(&req.currency)?;
    // The common case in one statement: the right card, active, in this currency, with
    // enough money. Anything else is explained by the slow path below.
    let fast: Option<(Uuid, i64)> = diesel::update(gift_cards::table)
        .filter(gift_cards::merchant_id.eq(tenant.merchant_id()))
        .filter(gift_cards::gan.eq(gan.as_str()))
        .filter(gift_cards::currency.eq(currency))
        .filter(gift_cards::state.eq(CardState::Active))
        .filter(gift_cards::balance.ge(req.amount))
        .set((
            gift_cards::balance.eq(gift_cards::balance - req.amount),
            gift_cards::updated_at.eq(diesel::dsl::now),
        ))
        .returning((gift_cards::id, gift_cards::balance))
        .get_result(conn)
        .optional()?;
    let (card_id, taken, balance) = match fast {
        Some((id, balance)) => (id, req.amount, balance),
        None => {
            let card = GiftCard::by_gan(conn, tenant, gan)?;
            check_amount(req.amount, &req.currency, &card)?;
            require_usable(&card)?;
            // Not enough, or no longer active: look under the row lock to say which.
            let (state, balance) = lock_usable(conn, card.id)?;
            if state == CardState::Pending {
                return Err(ApiError::new(
                    ProblemKind::CardInactive,
                    "the card is not activated yet: load it first",
                ));
            }
            if balance >= req.amount {
                // Raced with a load between the two statements: take it now.
                diesel::update(gift_cards::table.find(card.id))
                    .set((
                        gift_cards::balance.eq(balance - req.amount),
                        gift_cards::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                (card.id, req.amount, balance - req.amount)
            } else if !req.allow_partial || balance == 0 {
                return Err(ApiError::new(
                    ProblemKind::InsufficientFunds,
                    format!("the card holds {balance}, less than {}", req.amount),
                )
                .with_extra("balance", balance.into()));
            } else {
                diesel::update(gift_cards::table.find(card.id))
                    .set((
                        gift_cards::balance.eq(0),
                        gift_cards::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                (card.id, balance, 0)
            }
        }
    };
    let (activity_id, pass_id) = Activity::record(
        conn,
        NewActivity {
            channels,
            merchant_id: tenant.merchant_id(),
            gift_card_id: card_id,
            kind: GiftCardActivityType::Redeem,
            amount: -taken,
            balance_after: balance,
            refunds: None,
            reason: None,
        },
    )?;
    Ok(Movement {
        activity_id,
        amount: taken,
        balance,
        currency,
        state: CardState::Active,
        pass_id,
    })
}
