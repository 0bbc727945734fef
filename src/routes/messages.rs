use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::messages::{self, MessageSent, Text};
use crate::problem::ApiError;
use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    #[schema(min_length = 1, max_length = 100)]
    pub header: String,
    #[schema(min_length = 1, max_length = 1000)]
    pub body: String,
}

fn checked(m: &Message) -> Result<Text, ApiError> {
    Text::parse(&m.header, &m.body).map_err(ApiError::invalid_fields)
}

/// Send a message to a member's card: on the Apple pass's back and lock screen, and as a
/// Google Wallet message (with a notification while the day's budget lasts).
#[utoipa::path(operation_id = "sendMemberMessage", tag = "members", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), request_body = Message,
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody, crate::openapi::MemberErased, (status = 202, body = MessageSent)))]
#[post("/members/{id}/messages")]
pub async fn to_member(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Message>,
) -> Result<HttpResponse, ApiError> {
    let text = checked(&body)?;
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let channels = state.channels;
    let sent = db::run(&state.pool, move |conn| {
        messages::to_member(conn, channels, &tenant, id, &text)
    })
    .await?;
    state.pass_cache.evict_pass(sent.pass_id);
    Ok(HttpResponse::Accepted().json(sent))
}

/// Send a message to a gift card.
#[utoipa::path(operation_id = "sendGiftCardMessage", tag = "gift cards", security(("bearer" = ["admin"])), params(("gan" = String, Path)), request_body = Message,
    responses(crate::openapi::AdminKey, crate::openapi::CardPath, crate::openapi::JsonBody, (status = 202, body = MessageSent)))]
#[post("/gift-cards/{gan}/messages")]
pub async fn to_gift_card(
    caller: AdminCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<Message>,
) -> Result<HttpResponse, ApiError> {
    let gan = super::gift_cards::parse_gan(&gan)?;
    let text = checked(&body)?;
    let tenant = caller.0.tenant;
    let channels = state.channels;
    let sent = db::run(&state.pool, move |conn| {
        messages::to_gift_card(conn, channels, &tenant, &gan, &text)
    })
    .await?;
    state.pass_cache.evict_pass(sent.pass_id);
    Ok(HttpResponse::Accepted().json(sent))
}
