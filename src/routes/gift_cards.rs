use crate::app::AppState;
use crate::auth::{AdminCaller, PosCaller};
use crate::db::{self, Tenant};
use crate::domain::cursor::instant;
use crate::domain::cursor::Page;
use crate::domain::Paging;
use crate::domain::{CardNumber, CardState, Currency};
use crate::giftcard::activity::Activity;
use crate::giftcard::{self, issue::IssueGiftCard, Movement, MovementRequest};
use crate::models::gift_card::CardFilter;
use crate::models::{GiftCard, Pass};
use crate::problem::{ApiError, FieldProblem};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
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
    /// Oldest first.
    pub activities: Vec<Activity>,
    /// Where the next page starts (`?cursor=`); null on the last page.
    pub next_cursor: Option<String>,
}

/// A card's ledger is answered whole unless a page is asked for (as before pages existed):
/// up to 1,000 entries a page.
const CARD_LEDGER_PAGE: (i64, i64) = (1000, 1000);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardActivityQuery {
    /// Page size, 1 to 1000 (1000 when absent).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The card's ledger, oldest first; `amount` is signed and sums to the balance.
#[utoipa::path(operation_id = "listGiftCardActivities", tag = "gift cards", security(("bearer" = ["pos"])), params(("gan" = String, Path), CardActivityQuery),
    responses(crate::openapi::PosKey, crate::openapi::CardPath, crate::openapi::Query, (status = 200, body = ActivityList)))]
#[get("/gift-cards/{gan}/activities")]
pub async fn activities(
    caller: PosCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    query: web::Query<CardActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let gan = parse_gan(&gan)?;
    let mut problems = Vec::new();
    let Some(paging) = Paging::<i64>::parse_within(
        query.limit.as_deref(),
        query.cursor.as_deref(),
        CARD_LEDGER_PAGE,
        &mut problems,
    ) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let (rows, next_cursor) = db::run(&state.pool, move |conn| {
        let card = GiftCard::by_gan(conn, &tenant, &gan)?;
        let after = paging.after.map(|(seq, _)| seq);
        let rows = Activity::page_of_card(conn, card.id, after, paging.fetch())?;
        Ok(paging.finish(rows, |(seq, a)| (*seq, a.id)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(ActivityList {
        activities: rows.into_iter().map(|(_, a)| a).collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardListQuery {
    /// Only cards in this state: `pending`, `active` or `deactivated`.
    pub state: Option<String>,
    /// RFC 3339: only cards issued since then.
    pub created_since: Option<String>,
    /// RFC 3339: only cards changed since then (balance, state); the list is then ordered
    /// by `updated_at`, then id, instead of by issue time.
    pub updated_since: Option<String>,
    /// Page size, 1 to 200 (50 when absent).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl CardListQuery {
    /// The filters and the page; what is wrong is added to `problems`.
    pub fn parse(
        &self,
        problems: &mut Vec<FieldProblem>,
    ) -> Option<(CardFilter, Paging<DateTime<Utc>>)> {
        let card_state = match self.state.as_deref().map(CardState::parse) {
            Some(None) => {
                problems.push(FieldProblem::new(
                    "/state",
                    "one of pending, active, deactivated",
                ));
                None
            }
            s => Some(s.flatten()),
        };
        let created_since = instant("/created_since", self.created_since.as_deref(), problems);
        let updated_since = instant("/updated_since", self.updated_since.as_deref(), problems);
        let paging = Paging::parse(self.limit.as_deref(), self.cursor.as_deref(), problems);
        Some((
            CardFilter {
                state: card_state?,
                created_since: created_since?,
                updated_since: updated_since?,
            },
            paging?,
        ))
    }
}

/// One page of a gift-card list.
#[derive(Serialize, ToSchema)]
pub struct GiftCardPage {
    /// By issue time then id; by `updated_at` then id with `updated_since`. No PINs, and
    /// `google_save_url` is null (`GET /gift-cards/{gan}` signs one per card).
    pub gift_cards: Vec<GiftCardView>,
    pub next_cursor: Option<String>,
}

/// One page of the merchant's cards with their passes, and the next page's cursor: what the
/// list answers and the export writes.
pub(crate) fn page_of_cards(
    conn: &mut diesel::PgConnection,
    tenant: &Tenant,
    filter: &CardFilter,
    paging: &Paging<DateTime<Utc>>,
) -> Result<Page<(GiftCard, Pass)>, ApiError> {
    let rows = GiftCard::page(conn, tenant, filter, paging.after, paging.fetch())?;
    let (rows, next) = paging.finish(rows, |c| (filter.key_of(c), c.id));
    let ids: Vec<Uuid> = rows.iter().map(|c| c.id).collect();
    let mut passes: std::collections::HashMap<Uuid, Pass> =
        Pass::of_gift_cards(conn, tenant, &ids)?
            .into_iter()
            .filter_map(|p| Some((p.gift_card_id?, p)))
            .collect();
    // Every card has a pass from the transaction that issued it.
    let cards = rows
        .into_iter()
        .filter_map(|c| passes.remove(&c.id).map(|p| (c, p)))
        .collect();
    Ok((cards, next))
}

/// The merchant's gift cards, a page at a time.
#[utoipa::path(operation_id = "listGiftCards", tag = "gift cards", security(("bearer" = ["admin"])), params(CardListQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query, (status = 200, body = GiftCardPage)))]
#[get("/gift-cards")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
    query: web::Query<CardListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let Some((filter, paging)) = query.parse(&mut problems) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let public_url = state.settings.public_url.clone();
    let page = db::run(&state.pool, move |conn| {
        let (cards, next_cursor) = page_of_cards(conn, &tenant, &filter, &paging)?;
        Ok(GiftCardPage {
            gift_cards: cards
                .into_iter()
                .map(|(card, pass)| view(card, &pass, None, &public_url, None))
                .collect(),
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
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
