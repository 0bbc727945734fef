use crate::app::AppState;
use crate::auth::{AdminCaller, PosCaller};
use crate::db::{self, Tenant};
use crate::domain::{CardNumber, CardState, Currency};
use crate::giftcard::{self, activity::Activity, issue::IssueGiftCard, Movement, MovementRequest};
use crate::models::{GiftCard, Pass};
use crate::problem::{ApiError, FieldProblem};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct GiftCardView {
    pub id: Uuid,
    pub gan: String,
    /// Shown only when the card is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    pub balance: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// `pending`, `active` or `deactivated`
    #[schema(value_type = String)]
    pub state: CardState,
    pub template: String,
    pub serial: String,
    pub apple_pass_url: String,
    pub google_save_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn view(
    card: GiftCard,
    pass: &Pass,
    pin: Option<String>,
    public_url: &str,
    google_save_url: Option<String>,
) -> GiftCardView {
    GiftCardView {
        id: card.id,
        gan: card.gan,
        pin,
        balance: card.balance,
        currency: card.currency,
        state: card.state,
        template: card.template_id,
        serial: pass.serial_number.clone(),
        apple_pass_url: crate::urls::pass_url(public_url, pass),
        google_save_url,
        created_at: card.created_at,
    }
}

/// Parses a GAN from the path; a bad check digit is refused before any lookup.
pub(crate) fn parse_gan(text: &str) -> Result<CardNumber, ApiError> {
    CardNumber::parse(text)
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/gan", e)]))
}

/// Issue a gift card with a PIN and a pass.
#[utoipa::path(operation_id = "issueGiftCard", tag = "gift cards", security(("bearer" = ["admin"])), request_body = IssueGiftCard, responses(crate::openapi::AdminKey, crate::openapi::JsonBody,
    (status = 201, body = GiftCardView)))]
#[post("/gift-cards")]
pub async fn issue(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<IssueGiftCard>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let max = state.settings.gift_card_max_balance;
    let app = state.clone();
    let (mut created, google) = db::run(&state.pool, move |conn| {
        let (card, pin, pass) = giftcard::issue::issue(conn, app.channels, &tenant, &body, max)?;
        let google = crate::pass_service::google_save_url(conn, &tenant, &pass, &app)?;
        let pin = Some(pin.expose().to_string());
        let card = view(card, &pass, pin, &app.settings.public_url, None);
        Ok((card, google))
    })
    .await?;
    created.google_save_url = crate::pass_service::finish_save_link(&state, google).await;
    Ok(HttpResponse::Created().json(created))
}

/// A gift card's balance and state.
#[utoipa::path(operation_id = "getGiftCard", tag = "gift cards", security(("bearer" = ["pos"])), params(("gan" = String, Path)), responses(crate::openapi::PosKey, crate::openapi::CardPath,
    (status = 200, body = GiftCardView)))]
#[get("/gift-cards/{gan}")]
pub async fn get(
    caller: PosCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let gan = parse_gan(&gan)?;
    let tenant = caller.0.tenant;
    let public_url = state.settings.public_url.clone();
    let card = db::run(&state.pool, move |conn| {
        let card = GiftCard::by_gan(conn, &tenant, &gan)?;
        let pass = Pass::of_gift_card(conn, &tenant, card.id)?;
        Ok(view(card, &pass, None, &public_url, None))
    })
    .await?;
    Ok(HttpResponse::Ok().json(card))
}

/// Take money from a card (`allow_partial` takes what it holds). Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "redeemGiftCard", tag = "gift cards", security(("bearer" = ["pos"])), params(("gan" = String, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = giftcard::redeem::Redeem, responses(crate::openapi::PosKey, crate::openapi::CardPath, crate::openapi::Idempotent, crate::openapi::JsonBody,
    crate::openapi::RedeemRefusals, (status = 200, body = Movement)))]
#[post("/gift-cards/{gan}/redeem")]
pub async fn redeem(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    movement::<giftcard::redeem::Redeem>(req, caller.0.tenant, state, gan, body).await
}

/// Add money to a card; the first load activates a pending card. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "loadGiftCard", tag = "gift cards", security(("bearer" = ["pos"])), params(("gan" = String, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = giftcard::load::Load, responses(crate::openapi::PosKey, crate::openapi::CardPath, crate::openapi::Idempotent, crate::openapi::JsonBody, (status = 200, body = Movement)))]
#[post("/gift-cards/{gan}/load")]
pub async fn load(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    movement::<giftcard::load::Load>(req, caller.0.tenant, state, gan, body).await
}

/// Give back (part of) a redemption. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "refundGiftCard", tag = "gift cards", security(("bearer" = ["pos"])), params(("gan" = String, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = giftcard::refund::Refund, responses(crate::openapi::PosKey, crate::openapi::CardPath, crate::openapi::Idempotent, crate::openapi::JsonBody, (status = 200, body = Movement)))]
#[post("/gift-cards/{gan}/refund")]
pub async fn refund(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    movement::<giftcard::refund::Refund>(req, caller.0.tenant, state, gan, body).await
}

/// An admin's correction of a balance, with a reason. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "adjustGiftCard", tag = "gift cards", security(("bearer" = ["admin"])), params(("gan" = String, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = giftcard::load::Adjust, responses(crate::openapi::AdminKey, crate::openapi::CardPath, crate::openapi::Idempotent, crate::openapi::JsonBody, (status = 200, body = Movement)))]
#[post("/gift-cards/{gan}/adjust")]
pub async fn adjust(
    req: HttpRequest,
    caller: AdminCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    movement::<giftcard::load::Adjust>(req, caller.0.tenant, state, gan, body).await
}

/// What every money movement shares: the GAN from the path, then the body parsed as `B` and
/// applied under its `Idempotency-Key` (its one-statement common case first, if it has one).
async fn movement<B: MovementRequest>(
    req: HttpRequest,
    tenant: Tenant,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError>
where
    B::Answer: super::pos::ChangesPass,
{
    let gan = parse_gan(&gan)?;
    let fast_gan = gan.clone();
    let max = state.settings.gift_card_max_balance;
    let channels = state.channels;
    super::pos::mutation_fast_first(
        &req,
        &state,
        tenant,
        body.into_inner(),
        StatusCode::OK,
        move |conn, tenant, (request, key, fingerprint): (&B, _, _)| {
            request.in_one_statement(conn, channels, tenant, &fast_gan, key, fingerprint)
        },
        move |conn, tenant, request: B| request.apply(conn, channels, tenant, &gan, max),
    )
    .await
}

/// Deactivate a card for good: reads only from now on, and its pass is voided.
#[utoipa::path(operation_id = "deactivateGiftCard", tag = "gift cards", security(("bearer" = ["admin"])), params(("gan" = String, Path)), responses(crate::openapi::AdminKey, crate::openapi::CardPath, (status = 200, body = GiftCardView)))]
#[post("/gift-cards/{gan}/deactivate")]
pub async fn deactivate(
    caller: AdminCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let gan = parse_gan(&gan)?;
    let tenant = caller.0.tenant;
    let public_url = state.settings.public_url.clone();
    let channels = state.channels;
    let (view, pass_id) = db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            let (card, pass_id) = giftcard::deactivate::deactivate(conn, channels, &tenant, &gan)?;
            let pass = Pass::of_gift_card(conn, &tenant, card.id)?;
            Ok((view(card, &pass, None, &public_url, None), pass_id))
        })
    })
    .await?;
    if let Some(id) = pass_id {
        state.pass_cache.evict_pass(id);
    }
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Serialize, ToSchema)]
pub struct ActivityList {
    pub activities: Vec<Activity>,
}

/// The card's ledger, oldest first; `amount` is signed and sums to the balance.
#[utoipa::path(operation_id = "listGiftCardActivities", tag = "gift cards", security(("bearer" = ["pos"])), params(("gan" = String, Path)), responses(crate::openapi::PosKey, crate::openapi::CardPath, (status = 200, body = ActivityList)))]
#[get("/gift-cards/{gan}/activities")]
pub async fn activities(
    caller: PosCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let gan = parse_gan(&gan)?;
    let tenant = caller.0.tenant;
    let activities = db::run(&state.pool, move |conn| {
        let card = GiftCard::by_gan(conn, &tenant, &gan)?;
        Ok(Activity::of_card(conn, card.id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ActivityList { activities }))
}

/// Verify the merchant's whole ledger: balances against the sums of their activities.
#[utoipa::path(operation_id = "verifyLedger", tag = "gift cards", security(("bearer" = ["admin"])), responses(crate::openapi::AdminKey, (status = 200, body = giftcard::verify::LedgerReport)))]
#[get("/ledger/verify")]
pub async fn verify_ledger(
    caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let report = db::run(&state.pool, move |conn| {
        Ok(giftcard::verify::verify(conn, Some(&tenant))?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(report))
}
