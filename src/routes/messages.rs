use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db::{self, Tenant};
use crate::models::{GiftCard, Member, Pass};
use crate::pass_events::{self as outbox, Card};
use crate::problem::{ApiError, FieldProblem};
use crate::schema::passes;
use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
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

#[derive(Serialize, ToSchema)]
pub struct MessageSent {
    pub serial: String,
    pub sent_at: DateTime<Utc>,
    #[serde(skip)]
    pub pass_id: uuid::Uuid,
}

fn checked(m: &Message) -> Result<(String, String), ApiError> {
    let (header, body) = (m.header.trim().to_string(), m.body.trim().to_string());
    let mut problems = Vec::new();
    if header.is_empty() || header.chars().count() > 100 {
        problems.push(FieldProblem::new("/header", "1 to 100 characters"));
    }
    if body.is_empty() || body.chars().count() > 1000 {
        problems.push(FieldProblem::new("/body", "1 to 1000 characters"));
    }
    if problems.is_empty() {
        Ok((header, body))
    } else {
        Err(ApiError::invalid_fields(problems))
    }
}

/// Stores the message on the card's pass and queues it for both wallets, in one transaction.
fn send(
    conn: &mut PgConnection,
    tenant: &Tenant,
    card: Card,
    pass: Pass,
    header: &str,
    body: &str,
) -> Result<MessageSent, ApiError> {
    conn.transaction(|conn| {
        let sent_at: DateTime<Utc> = diesel::update(passes::table.find(pass.id))
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .set((
                passes::message_header.eq(header),
                passes::message_body.eq(body),
                passes::message_at.eq(diesel::dsl::now),
            ))
            .returning(passes::message_at.assume_not_null())
            .get_result(conn)?;
        outbox::pass_changed(conn, outbox::channels(), card, "message")?;
        Ok(MessageSent {
            serial: pass.serial_number,
            sent_at,
            pass_id: pass.id,
        })
    })
}

/// Send a message to a member's card: on the Apple pass's back and lock screen, and as a
/// Google Wallet message (with a notification while the day's budget lasts).
#[utoipa::path(operation_id = "sendMemberMessage", tag = "members", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), request_body = Message,
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody, (status = 202, body = MessageSent), (status = 422, body = crate::problem::Problem, content_type = "application/problem+json")))]
#[post("/members/{id}/messages")]
pub async fn to_member(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Message>,
) -> Result<HttpResponse, ApiError> {
    let (header, text) = checked(&body)?;
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let sent = db::run(&state.pool, move |conn| {
        let member = Member::find(conn, &tenant, id)?;
        let pass = Pass::of_member(conn, &tenant, member.id)?;
        send(conn, &tenant, Card::Member(member.id), pass, &header, &text)
    })
    .await?;
    state.pass_cache.evict_pass(sent.pass_id);
    Ok(HttpResponse::Accepted().json(sent))
}

/// Send a message to a gift card.
#[utoipa::path(operation_id = "sendGiftCardMessage", tag = "gift cards", security(("bearer" = ["admin"])), params(("gan" = String, Path)), request_body = Message,
    responses(crate::openapi::AdminKey, crate::openapi::CardPath, crate::openapi::JsonBody, (status = 202, body = MessageSent), (status = 422, body = crate::problem::Problem, content_type = "application/problem+json")))]
#[post("/gift-cards/{gan}/messages")]
pub async fn to_gift_card(
    caller: AdminCaller,
    state: web::Data<AppState>,
    gan: web::Path<String>,
    body: web::Json<Message>,
) -> Result<HttpResponse, ApiError> {
    let gan = super::gift_cards::parse_gan(&gan)?;
    let (header, text) = checked(&body)?;
    let tenant = caller.0.tenant;
    let sent = db::run(&state.pool, move |conn| {
        let card = GiftCard::by_gan(conn, &tenant, &gan)?;
        let pass = Pass::of_gift_card(conn, &tenant, card.id)?;
        send(conn, &tenant, Card::GiftCard(card.id), pass, &header, &text)
    })
    .await?;
    state.pass_cache.evict_pass(sent.pass_id);
    Ok(HttpResponse::Accepted().json(sent))
}
