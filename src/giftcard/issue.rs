//! Issuing a card: checked request, card with a fresh GAN and PIN, opening activity, pass.

use super::activity::Activity;
use crate::db::Tenant;
use crate::domain::{CardNumber, CardState, Currency, Parsed, Pin, TemplateKind};
use crate::models::gift_card::NewGiftCard;
use crate::models::pass::{Holder, Pass};
use crate::models::{GiftCard, Template};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use diesel::prelude::*;
use serde::Deserialize;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueGiftCard {
    /// Id of a gift-card template, e.g. `gift-card-default`.
    pub template: String,
    #[schema(value_type = String)]
    pub currency: Parsed<Currency>,
    /// Minor units (1050 EUR = 10.50 EUR), at most the configured maximum balance
    /// (`PASSFOLD_GIFT_CARD_MAX_BALANCE`, 10^8 unless set). 0 issues a `pending` card that its
    /// first load activates.
    #[schema(minimum = 0, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub initial_balance: i64,
}

/// Checks the request (every problem in one answer) and issues the card. The PIN is
/// returned once: only its hash is kept.
pub fn issue(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    request: &IssueGiftCard,
    max_balance: i64,
) -> Result<(GiftCard, Pin, Pass), ApiError> {
    let mut problems = Vec::new();
    let currency = request
        .currency
        .get()
        .map_err(|e| problems.push(FieldProblem::new("/currency", e)))
        .ok();
    if !(0..=max_balance).contains(&request.initial_balance) {
        problems.push(FieldProblem::new(
            "/initial_balance",
            format!("minor units from 0 to the maximum balance of {max_balance}"),
        ));
    }
    match Template::find(conn, tenant, &request.template) {
        Ok(t) if t.kind == TemplateKind::GiftCard => {}
        Ok(_) => problems.push(FieldProblem::new(
            "/template",
            "a gift card needs a gift_card template",
        )),
        Err(diesel::result::Error::NotFound) => problems.push(FieldProblem::new(
            "/template",
            format!("no template {:?}", request.template),
        )),
        Err(e) => return Err(e.into()),
    }
    match currency {
        Some(currency) if problems.is_empty() => Ok(create(
            conn,
            channels,
            tenant,
            &request.template,
            currency,
            request.initial_balance,
            (None, Pin::generate()),
        )?),
        _ => Err(ApiError::invalid_fields(problems)),
    }
}

/// `active` with an `activate` activity when it starts with a balance, `pending`
/// (activated by its first load) when it starts empty. Card, activity and pass in one
/// transaction. Also how `imports::gift_cards` issues a card brought from another system:
/// its own GAN when it had one (a GAN taken is a unique violation, not drawn again) and
/// PIN, else fresh ones; the template is the caller's to check.
pub(crate) fn create(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    template_id: &str,
    currency: Currency,
    initial_balance: i64,
    (given, pin): (Option<&CardNumber>, Pin),
) -> QueryResult<(GiftCard, Pin, Pass)> {
    let pin_hash = pin.hash();
    let state = if initial_balance > 0 {
        CardState::Active
    } else {
        CardState::Pending
    };
    conn.transaction(|conn| {
        let mut attempt = 0;
        let card = loop {
            attempt += 1;
            let gan = given.cloned().unwrap_or_else(CardNumber::generate);
            let new = NewGiftCard {
                template_id,
                gan: &gan,
                pin_hash: &pin_hash,
                currency,
                balance: initial_balance,
                state,
            };
            let inserted = conn.transaction(|conn| GiftCard::insert(conn, tenant, &new));
            match inserted {
                Ok(card) => break card,
                // A GAN collision: draw another.
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) if attempt < 5 && given.is_none() => {}
                Err(e) => return Err(e),
            }
        };
        if initial_balance > 0 {
            Activity::record_opening(conn, tenant, card.id, initial_balance)?;
        }
        let pass = Pass::create(
            conn,
            tenant.merchant_id(),
            template_id,
            Holder::GiftCard(card.id),
        )?;
        crate::pass_events::pass_created(
            conn,
            channels,
            crate::pass_events::Card::GiftCard(card.id),
        )?;
        Ok((card, pin, pass))
    })
}
