use crate::db;
use crate::domain::{CardNumber, Pin};
use crate::models::GiftCard;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::schema::pin_failures;
use crate::startup::AppState;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use diesel::prelude::*;
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

/// Wrong PINs allowed per card, and per client address, within the window.
const PER_CARD: i64 = 5;
const PER_CLIENT: i64 = 20;
const WINDOW_MINUTES: i64 = 15;

/// A customer checks a gift card's balance with its number and PIN. No key needed; wrong
/// PINs are limited per card and per client address.
#[utoipa::path(operation_id = "checkGiftCardBalance", tag = "public", request_body = BalanceCheck, responses(crate::openapi::Database, crate::openapi::JsonBody,
    (status = 200, body = PublicBalance),
    (status = 404, description = "unknown card or wrong PIN", body = crate::problem::Problem, content_type = "application/problem+json"),
    (status = 429, body = crate::problem::Problem, content_type = "application/problem+json")))]
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
        let since = Utc::now() - Duration::minutes(WINDOW_MINUTES);
        let card = GiftCard::by_gan_any_merchant(conn, &gan)?;
        // Every attempt is recorded as a failure before it is judged, and only then are the
        // failures counted (its own included): concurrent guesses cannot all slip under the
        // limit. A right PIN takes its record back.
        let attempt: i64 = diesel::insert_into(pin_failures::table)
            .values((
                pin_failures::gift_card_id.eq(card.as_ref().map(|c| c.id)),
                pin_failures::client.eq(&client),
            ))
            .returning(pin_failures::id)
            .get_result(conn)?;
        let from_client: i64 = pin_failures::table
            .filter(pin_failures::client.eq(&client))
            .filter(pin_failures::created_at.gt(since))
            .count()
            .get_result(conn)?;
        if from_client > PER_CLIENT {
            return Err(limited());
        }
        if let Some(card) = &card {
            let on_card: i64 = pin_failures::table
                .filter(pin_failures::gift_card_id.eq(card.id))
                .filter(pin_failures::created_at.gt(since))
                .count()
                .get_result(conn)?;
            if on_card > PER_CARD {
                return Err(limited());
            }
        }
        match (card, pin) {
            (Some(card), Some(pin)) if pin.matches(&card.pin_hash) => {
                diesel::delete(pin_failures::table.find(attempt)).execute(conn)?;
                Ok(PublicBalance {
                    balance: card.balance,
                    currency: card.currency.trim().to_string(),
                    state: card.state,
                })
            }
            // The same answer for an unknown card and a wrong PIN: no card enumeration.
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
