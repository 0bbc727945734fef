//! A merchant's message to one card: stored on the card's pass (the Apple pass's back and
//! lock screen, a Google Wallet message) and delivered like any other change of the pass.

use crate::db::Tenant;
use crate::domain::CardNumber;
use crate::models::{GiftCard, Pass};
use crate::pass_events::{self as outbox, Card, Channels};
use crate::problem::{ApiError, FieldProblem};
use crate::schema::passes;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
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
    conn.transaction(|conn| {
        // Under the member's lock, as points are: an erasure running at the same time is
        // seen (410), not written over.
        crate::loyalty::ledger::lock_member(conn, tenant, member_id)?;
        let pass = Pass::of_member(conn, tenant, member_id)?;
        send(conn, channels, tenant, Card::Member(member_id), pass, text)
    })
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
    conn.transaction(|conn| {
        // The card's lock first, as every movement of it takes it: the pass's row is
        // written twice here, and the second write checks the pass's key to the card,
        // waiting on a movement that holds the card and waits on the pass (a deadlock,
        // answered 500).
        crate::giftcard::lock(conn, &card)?;
        let pass = Pass::of_gift_card(conn, tenant, card.id)?;
        send(conn, channels, tenant, Card::GiftCard(card.id), pass, text)
    })
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

/// What a card says of its points' next expiry, as (header, body) in `language` (English
/// unless Russian): the expiry reminder's message and the pass's expiry field.
pub fn expiry_text(language: &str, points: i64, day: NaiveDate) -> (String, String) {
    const EN_MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const RU_MONTHS: [&str; 12] = [
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ];
    let month = day.month0() as usize;
    if language == "ru" {
        // 1 балл, 2-4 балла, 5-20 баллов; by the last two digits.
        let (n10, n100) = (points % 10, points % 100);
        let word = if n10 == 1 && n100 != 11 {
            "балл сгорит"
        } else if (2..=4).contains(&n10) && !(12..=14).contains(&n100) {
            "балла сгорят"
        } else {
            "баллов сгорят"
        };
        (
            "Баллы сгорают".into(),
            format!("{points} {word} {} {}", day.day(), RU_MONTHS[month]),
        )
    } else {
        let word = if points == 1 {
            "point expires"
        } else {
            "points expire"
        };
        (
            "Points expiring".into(),
            format!("{points} {word} on {} {}", day.day(), EN_MONTHS[month]),
        )
    }
}

/// The key of the back field that shows a member's next points expiry.
pub const EXPIRY_FIELD_KEY: &str = "points_expiry";

/// "120 points expire on 12 December" with its header, when a member's points expire.
pub fn expiry_note(context: &crate::template::Context, language: &str) -> Option<(String, String)> {
    match (context.get("expiring_points"), context.get("expiry_date")) {
        (Some(crate::template::Value::Number(points)), Some(crate::template::Value::Date(day)))
            if *points > 0 =>
        {
            Some(expiry_text(language, *points, *day))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_texts_in_both_languages() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 12).unwrap();
        assert_eq!(
            expiry_text("en", 120, day).1,
            "120 points expire on 12 December"
        );
        assert_eq!(
            expiry_text("en", 1, day).1,
            "1 point expires on 12 December"
        );
        assert_eq!(
            expiry_text("ru", 120, day).1,
            "120 баллов сгорят 12 декабря"
        );
        assert_eq!(expiry_text("ru", 21, day).1, "21 балл сгорит 12 декабря");
        assert_eq!(expiry_text("ru", 3, day).1, "3 балла сгорят 12 декабря");
        assert_eq!(expiry_text("ru", 13, day).1, "13 баллов сгорят 12 декабря");
    }
}
