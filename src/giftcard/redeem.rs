use super::{check_amount, check_range, lock_usable, require_usable, MovementRequest};
use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, Currency, Parsed};
use crate::idempotency::{FastOutcome, IdempotencyKey};
use crate::models::GiftCard;
use crate::pass_events::Channels;
use crate::problem::{ApiError, ProblemKind};
use diesel::prelude::*;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
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

/// A redemption's answer exactly as `passfold_redeem` built it (the shape of a
/// [`Movement`](super::Movement)): served and stored byte for byte, never rebuilt in Rust.
#[derive(Debug)]
pub struct Redeemed {
    pub pass_id: Uuid,
    pub body: Box<RawValue>,
}

impl Serialize for Redeemed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

impl MovementRequest for Redeem {
    type Answer = Redeemed;

    /// Redemptions are never capped by the maximum balance: they only lower it.
    fn apply(
        &self,
        conn: &mut PgConnection,
        channels: Channels,
        tenant: &Tenant,
        gan: &CardNumber,
        _max_balance: i64,
    ) -> Result<Redeemed, ApiError> {
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

/// The key under which `passfold_redeem` stores its answer, or none: then it only returns it.
type StoreUnder<'a> = Option<(&'a IdempotencyKey, &'a [u8])>;

/// The typed binding of `passfold_redeem` (see its latest migration, `one_redemption`), the
/// only code that performs a redemption: the card (in full, or what it holds when
/// `allow_partial`), the activity, the pass, the outbox and, under a key, the stored answer,
/// in one round trip. Returns the changed pass and the answer's JSON body; `None` when the
/// card does not qualify (it wrote nothing).
fn passfold_redeem(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Redeem,
    currency: Currency,
    store_under: StoreUnder<'_>,
) -> QueryResult<Option<(Uuid, Vec<u8>)>> {
    use diesel::sql_types::{Array, BigInt, Bool, Bytea, Nullable, Text, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Done {
        #[diesel(sql_type = SqlUuid)]
        pass_id: Uuid,
        #[diesel(sql_type = Bytea)]
        body: Vec<u8>,
    }
    let done: Option<Done> =
        diesel::sql_query("SELECT * FROM passfold_redeem($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind::<SqlUuid, _>(tenant.merchant_id())
            .bind::<Text, _>(gan.as_str())
            .bind::<Text, _>(currency.code())
            .bind::<BigInt, _>(req.amount)
            .bind::<Bool, _>(req.allow_partial)
            .bind::<SqlUuid, _>(Uuid::new_v4())
            .bind::<Nullable<Text>, _>(store_under.map(|(key, _)| key.as_str()))
            .bind::<Nullable<Bytea>, _>(store_under.map(|(_, fingerprint)| fingerprint))
            .bind::<Array<Text>, _>(channels.all())
            .get_result(conn)
            .optional()?;
    Ok(done.map(|d| (d.pass_id, d.body)))
}

/// The common redemption in one statement, storing its answer under the key. `None` when
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
    let Ok(currency) = req.currency.get() else {
        return Ok(None);
    };
    if check_range(req.amount).is_err() {
        return Ok(None);
    }
    match passfold_redeem(
        conn,
        channels,
        tenant,
        gan,
        req,
        currency,
        Some((key, fingerprint)),
    ) {
        Ok(done) => Ok(done),
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

/// The general path, under the idempotency wrapper (which stores the answer): explains why
/// a card does not qualify, and when it does (a load raced in since the one statement, or
/// the key's first answer is being replayed) redeems through `passfold_redeem` all the same.
pub fn redeem(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    req: &Redeem,
) -> Result<Redeemed, ApiError> {
    check_range(req.amount)?;
    let currency = super::check_currency(&req.currency)?;
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    check_amount(req.amount, &req.currency, &card)?;
    require_usable(&card)?;
    // Decided under the row lock, which passfold_redeem then takes again at no cost.
    let (state, balance) = lock_usable(conn, &card)?;
    if state == CardState::Pending {
        return Err(ApiError::new(
            ProblemKind::CardInactive,
            "the card is not activated yet: load it first",
        ));
    }
    if balance < req.amount && !(req.allow_partial && balance > 0) {
        return Err(ApiError::new(
            ProblemKind::InsufficientFunds,
            format!("the card holds {balance}, less than {}", req.amount),
        )
        .with_extra("balance", balance.into()));
    }
    let (pass_id, body) = passfold_redeem(conn, channels, tenant, gan, req, currency, None)?
        .ok_or_else(|| ApiError::internal("passfold_redeem refused a card that qualifies"))?;
    let body = String::from_utf8(body)
        .ok()
        .and_then(|body| RawValue::from_string(body).ok())
        .ok_or_else(|| ApiError::internal("passfold_redeem answered with invalid JSON"))?;
    Ok(Redeemed { pass_id, body })
}
