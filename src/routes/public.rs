use crate::app::AppState;
use crate::db;
use crate::domain::{CardNumber, Pin};
use crate::models::GiftCard;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::schema::pin_failures;
use actix_web::{post, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceCheck {
    pub gan: String,
    pub pin: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublicBalance {
    pub balance: i64,
    pub currency: String,
    pub state: String,
}

/// Wrong PINs allowed within the window: per card number and client address (what one
/// guesser gets), per card number overall (a ceiling many addresses together reach, high
/// enough that one attacker cannot lock the owner out), and per client address over all
/// cards. Known and unknown card numbers are counted alike.
const PER_CARD_AND_CLIENT: i64 = 5;
const PER_CARD: i64 = 50;
const PER_CLIENT: i64 = 20;
const WINDOW_MINUTES: i64 = 15;

/// A hash no PIN matches, checked for unknown card numbers so that they take as long to
/// refuse as a wrong PIN on a real card.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| Pin::generate().hash())
}

#[derive(QueryableByName)]
struct Recent {
    #[diesel(sql_type = BigInt)]
    card_and_client: i64,
    #[diesel(sql_type = BigInt)]
    card: i64,
    #[diesel(sql_type = BigInt)]
    client: i64,
}

/// A customer checks a gift card's balance with its number and PIN. No key needed; wrong
/// PINs are limited per card and address, per card, and per address.
#[utoipa::path(operation_id = "checkGiftCardBalance", tag = "public", request_body = BalanceCheck, responses(crate::openapi::Database, crate::openapi::JsonBody,
    (status = 200, body = PublicBalance),
    crate::openapi::RateLimited, crate::openapi::UnknownCardOrPin))]
#[post("/public/gift-cards/balance")]
pub async fn balance(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<BalanceCheck>,
) -> Result<HttpResponse, ApiError> {
    let gan = CardNumber::parse(&body.gan)
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/gan", e)]))?;
    let pin = Pin::parse(body.pin.trim());
    let client = crate::client_address::of(&req, state.settings.trust_forwarded);
    let answer = db::run(&state.pool, move |conn| {
        // Made on the first request of any kind, so that no unknown number is the one
        // that pays for making it.
        let dummy = dummy_hash();
        let card = GiftCard::by_gan_any_merchant(conn, &gan)?;
        // Every attempt is recorded as a failure (committed at once, no transaction) before
        // it is judged, and only then are the failures counted, its own included: of any
        // number of concurrent guesses, the k-th to be recorded sees at least k records, so
        // no more than the limit are judged. A refused attempt takes its record back (it
        // was never judged, so the owner's right PIN during a lock costs nothing), and so
        // does a right PIN.
        let attempt: i64 = diesel::insert_into(pin_failures::table)
            // Counted by number, not by card: gift_card_id stays empty (its foreign-key
            // check would make known numbers measurably slower than unknown ones).
            .values((
                pin_failures::client.eq(&client),
                pin_failures::gan.eq(gan.as_str()),
            ))
            .returning(pin_failures::id)
            .get_result(conn)?;
        let recent: Recent = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE gan = $2 AND client = $1) AS card_and_client,
                    count(*) FILTER (WHERE gan = $2) AS card,
                    count(*) FILTER (WHERE client = $1) AS client
               FROM pin_failures
              WHERE (client = $1 OR gan = $2)
                AND created_at > now() - make_interval(mins => $3)",
        )
        .bind::<Text, _>(&client)
        .bind::<Text, _>(gan.as_str())
        .bind::<Integer, _>(WINDOW_MINUTES as i32)
        .get_result(conn)?;
        if recent.card_and_client > PER_CARD_AND_CLIENT
            || recent.card > PER_CARD
            || recent.client > PER_CLIENT
        {
            diesel::delete(pin_failures::table.find(attempt)).execute(conn)?;
            return Err(limited());
        }
        // The hash is checked for unknown cards too (against one no PIN matches): unknown
        // and known numbers answer alike, in status, body and time.
        let right = match &pin {
            Some(pin) => {
                let stored = card.as_ref().map_or(dummy, |c| c.pin_hash.as_str());
                pin.matches(stored) && card.is_some()
            }
            None => false,
        };
        match card {
            Some(card) if right => {
                diesel::delete(pin_failures::table.find(attempt)).execute(conn)?;
                Ok(PublicBalance {
                    balance: card.balance,
                    currency: card.currency.to_string(),
                    state: card.state.to_string(),
                })
            }
            _ => Err(ApiError::not_found("no gift card with this number and PIN")),
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

fn limited() -> ApiError {
    ApiError::new(
        ProblemKind::RateLimited,
        "too many wrong PINs; try again later",
    )
    .with_retry_after((WINDOW_MINUTES * 60) as u64)
}
