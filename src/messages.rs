//! A merchant's message to one card: stored on the card's pass (the Apple pass's back and
//! lock screen, a Google Wallet message) and delivered like any other change of the pass.

use crate::db::Tenant;
use crate::domain::CardNumber;
use crate::models::{GiftCard, Member, Pass};
use crate::pass_events::{self as outbox, Card, Channels};
use crate::problem::{ApiError, FieldProblem};
use crate::schema::passes;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

/// A message's header and body, trimmed and within their lengths.
#[derive(Debug, Clone)]
pub struct Text {
    header: String,
    body: String,
}

impl Text {
    pub fn parse(header: &str, body: &str) -> Result<Self, Vec<FieldProblem>> {
        let (header, body) = (header.trim().to_string(), body.trim().to_string());
        let mut problems = Vec::new();
        if header.is_empty() || header.chars().count() > 100 {
            problems.push(FieldProblem::new("/header", "1 to 100 characters"));
        }
        if body.is_empty() || body.chars().count() > 1000 {
            problems.push(FieldProblem::new("/body", "1 to 1000 characters"));
        }
        if problems.is_empty() {
            Ok(Self { header, body })
        } else {
            Err(problems)
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageSent {
    pub serial: String,
    pub sent_at: DateTime<Utc>,
    #[serde(skip)]
    pub pass_id: Uuid,
}

/// Sends `text` to a member's card.
pub fn to_member(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    member_id: Uuid,
    text: &Text,
) -> Result<MessageSent, ApiError> {
    let member = Member::find(conn, tenant, member_id)?;
    let pass = Pass::of_member(conn, tenant, member.id)?;
    send(conn, channels, tenant, Card::Member(member.id), pass, text)
}

/// Sends `text` to a gift card.
pub fn to_gift_card(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    gan: &CardNumber,
    text: &Text,
) -> Result<MessageSent, ApiError> {
    let card = GiftCard::by_gan(conn, tenant, gan)?;
    let pass = Pass::of_gift_card(conn, tenant, card.id)?;
    send(conn, channels, tenant, Card::GiftCard(card.id), pass, text)
}

/// Stores the message on the card's pass and queues it for both wallets, in one transaction.
fn send(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    card: Card,
    pass: Pass,
    text: &Text,
) -> Result<MessageSent, ApiError> {
    conn.transaction(|conn| {
        let sent_at: DateTime<Utc> = diesel::update(passes::table.find(pass.id))
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .set((
                passes::message_header.eq(&text.header),
                passes::message_body.eq(&text.body),
                passes::message_at.eq(diesel::dsl::now),
            ))
            .returning(passes::message_at.assume_not_null())
            .get_result(conn)?;
        outbox::pass_changed(conn, channels, card, "message")?;
        Ok(MessageSent {
            serial: pass.serial_number,
            sent_at,
            pass_id: pass.id,
        })
    })
}
