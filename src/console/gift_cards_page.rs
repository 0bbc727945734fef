//! Gift cards: find one by its number (exact, check digit verified first), its page with
//! balance, state and activities (a page at a time), and the owner's "Deactivate" with a
//! confirmation step, through `giftcard::deactivate` (as `POST
//! /api/v1/gift-cards/{gan}/deactivate`), with an audit line in the same transaction.
//! Cashiers look cards up; deactivating is refused to them on the server.

use super::error::PageError;
use super::format::{money, when};
use super::i18n::{fill, PageTexts};
use super::paging::{cut, pager, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::db;
use crate::domain::{CardNumber, CardState, GiftCardActivityType};
use crate::giftcard::{self, activity::Activity};
use crate::models::GiftCard;
use crate::problem::ApiError;
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use diesel::Connection;
use maud::{html, Markup};
use serde::Deserialize;

fn find_form(session: &StaffSession, gan: &str, problem: Option<&str>) -> Markup {
    let w = session.texts().pages();
    let p = session.texts().privacy();
    html! {
        section class="panel" {
            @if let Some(problem) = problem {
                p class="errors" role="alert" id="gan-error" { (problem) }
            }
            form class="search" method="get" action="/console/gift-cards" role="search" {
                div {
                    label for="gan" { (w.gan_label) }
                    input type="text" inputmode="numeric" id="gan" name="gan" value=(gan) maxlength="40" autocomplete="off";
                }
                button type="submit" id="gan-find" { (w.find_button) }
            }
        }
        section class="panel" aria-labelledby="download-title" id="downloads" {
            h2 id="download-title" { (p.download_title) }
            p class="note" { (p.download_cards_note) }
            p { a href="/console/gift-cards.csv" download id="download-cards" { (p.download_cards) } }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct FindQuery {
    gan: String,
}

pub async fn find(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<FindQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::GiftCards)?;
    let w = session.texts().pages();
    let typed = query.gan.trim();
    if typed.is_empty() {
        return Ok(session.page(
            Section::GiftCards,
            w.nav_gift_cards,
            find_form(&session, "", None),
        ));
    }
    let gan = match CardNumber::parse(typed) {
        Ok(gan) => gan,
        Err(_) => {
            return Ok(session.page_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                Section::GiftCards,
                w.nav_gift_cards,
                find_form(&session, typed, Some(w.bad_gan)),
            ))
        }
    };
    let tenant = session.tenant;
    let found = {
        let gan = gan.clone();
        db::run(&state.pool, move |conn| {
            Ok(GiftCard::by_gan(conn, &tenant, &gan)?)
        })
        .await
    };
    match found {
        Ok(card) => Ok(to(&format!("/console/gift-cards/{}", card.gan))),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(session.page_with_status(
            StatusCode::NOT_FOUND,
            Section::GiftCards,
            w.nav_gift_cards,
            find_form(&session, typed, Some(w.card_not_found)),
        )),
        Err(e) => Err(session.failed(e)),
    }
}

fn activity_text(w: &PageTexts, kind: GiftCardActivityType) -> &'static str {
    match kind {
        GiftCardActivityType::Activate => w.act_activate,
        GiftCardActivityType::Load => w.act_load,
        GiftCardActivityType::Redeem => w.act_redeem,
        GiftCardActivityType::Refund => w.act_refund,
        GiftCardActivityType::Adjust => w.act_adjust,
        GiftCardActivityType::Deactivate => w.act_deactivate,
    }
}

fn state_text(w: &PageTexts, state: CardState) -> &'static str {
    match state {
        CardState::Pending => w.state_pending,
        CardState::Active => w.state_active,
        CardState::Deactivated => w.state_deactivated,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CardQuery {
    /// The activities' cursor: the `seq` of the last one shown.
    after: Option<String>,
    deactivated: Option<String>,
}

/// The card by the number in the path; a number that is no card's is not found.
async fn card(
    session: &StaffSession,
    state: &AppState,
    raw: &str,
    after: Option<i64>,
) -> Result<(GiftCard, Vec<(i64, Activity)>, bool), PageError> {
    let gan = CardNumber::parse(raw).map_err(|_| PageError::NotFound(session.lang))?;
    let tenant = session.tenant;
    let found = db::run(&state.pool, move |conn| {
        let card = GiftCard::by_gan(conn, &tenant, &gan)?;
        let rows = Activity::page_of_card(conn, card.id, after, PAGE + 1)?;
        Ok((card, rows))
    })
    .await;
    match found {
        Ok((card, rows)) => {
            let (rows, more) = cut(rows);
            Ok((card, rows, more))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) => Err(session.failed(e)),
    }
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<CardQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::GiftCards)?;
    let t = session.texts();
    let w = t.pages();
    let lang = session.lang;
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(a.parse::<i64>().map_err(|_| PageError::NotFound(lang))?),
        None => None,
    };
    let (card, rows, more) = card(&session, &state, &path, after).await?;
    let base = format!("/console/gift-cards/{}", card.gan);
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|(seq, _)| format!("{base}?after={seq}#activities-title"));
    let first = after.map(|_| base.clone());
    let body = html! {
        @if query.deactivated.is_some() {
            p class="notice" role="status" id="deactivated" { (w.deactivated_notice) }
        }
        section class="panel" {
            dl class="figure-list" id="card-figures" {
                div { dt { (w.gan_label) } dd id="card-gan" { (card.gan) } }
                div { dt { (w.balance) } dd id="card-balance" data-minor=(card.balance) { (money(lang, card.balance, card.currency)) } }
                div { dt { (w.state) } dd id="card-state" data-state=(card.state.as_str()) { (state_text(w, card.state)) } }
            }
            @if Section::CardChanges.allows(session.role) && card.state != CardState::Deactivated {
                p { a class="button danger" id="deactivate-link" href=(format!("{base}/deactivate")) { (w.deactivate) } }
            }
        }
        section class="panel" aria-labelledby="activities-title" {
            h2 id="activities-title" { (w.activities_title) }
            @if rows.is_empty() {
                p class="note" { (w.no_activities) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="activities" {
                        thead { tr {
                            th scope="col" { (t.when) }
                            th scope="col" { (w.kind) }
                            th scope="col" { (w.amount) }
                            th scope="col" { (w.balance_after) }
                            th scope="col" { (w.reason) }
                        } }
                        tbody {
                            @for (_, a) in &rows {
                                tr data-kind=(a.kind.as_str()) {
                                    td data-label=(t.when) { (when(a.created_at)) }
                                    td data-label=(w.kind) { (activity_text(w, a.kind)) }
                                    td data-label=(w.amount) { (money(lang, a.amount, card.currency)) }
                                    td data-label=(w.balance_after) { (money(lang, a.balance_after, card.currency)) }
                                    td data-label=(w.reason) { (a.reason.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "activities-pager", next, first))
        }
    };
    Ok(session.page(Section::GiftCards, &card.gan, body))
}

/// The confirmation step before a card is deactivated for good.
pub async fn confirm(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::CardChanges)?;
    let w = session.texts().pages();
    let (card, _, _) = card(&session, &state, &path, None).await?;
    let base = format!("/console/gift-cards/{}", card.gan);
    let body = html! {
        section class="panel" {
            p id="deactivate-warning" {
                (fill(w.deactivate_warning, "balance", &money(session.lang, card.balance, card.currency)))
            }
            form class="inline" method="post" action=(format!("{base}/deactivate")) {
                (session.csrf_field())
                button type="submit" class="danger" id="deactivate-confirm" { (w.deactivate_confirm) }
                a href=(base) { (w.cancel) }
            }
        }
    };
    Ok(session.page(Section::GiftCards, w.deactivate_title, body))
}

pub async fn deactivate(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::CardChanges)?;
    let gan = CardNumber::parse(&path).map_err(|_| PageError::NotFound(session.lang))?;
    let tenant = session.tenant;
    let channels = state.channels;
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let (card, pass_id) = giftcard::deactivate::deactivate(conn, channels, &tenant, &gan)?;
            // Deactivating twice changes nothing, and records nothing.
            if pass_id.is_some() {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::GIFT_CARD_DEACTIVATE,
                    serde_json::json!({ "gan": card.gan, "balance": card.balance, "currency": card.currency.code() }),
                )?;
            }
            Ok::<_, ApiError>((card, pass_id))
        })
    })
    .await;
    match done {
        Ok((card, pass_id)) => {
            if let Some(id) = pass_id {
                state.pass_cache.evict_pass(id);
            }
            Ok(to(&format!(
                "/console/gift-cards/{}?deactivated=1",
                card.gan
            )))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) => Err(session.failed(e)),
    }
}
