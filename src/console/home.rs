//! The home page: the dashboard's figures (the same `analytics::dashboard::load` as
//! `GET /api/v1/dashboard`) for owners and cashiers. Designers see a pointer to their
//! templates instead: the figures (gift-card liability above all) are not their business.

use super::error::PageError;
use super::format::{money, number, when};
use super::i18n::fill;
use super::session::{Section, StaffSession};
use crate::analytics::dashboard;
use crate::app::AppState;
use crate::db;
use crate::domain::{Currency, Role};
use crate::webhooks::endpoints;
use actix_web::{web, HttpResponse};
use maud::html;

pub async fn page(
    session: StaffSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Home)?;
    let t = session.texts();
    let w = t.pages();
    let lang = session.lang;
    if session.role == Role::Designer {
        return Ok(session.page(
            Section::Home,
            t.home_title,
            html! {
                section class="panel" id="dashboard" {
                    p id="welcome" { (t.welcome) ", " (session.staff.email) }
                    p class="note" { (w.designer_home) }
                }
            },
        ));
    }
    let tenant = session.tenant;
    let now = state.clock.now();
    let owner = Section::Webhooks.allows(session.role);
    let (figures, gave_up) = db::run(&state.pool, move |conn| {
        let figures = dashboard::load(conn, &tenant, now)?;
        // The merchant is told here of endpoints passfold disabled (and by an event on the
        // others): whoever may fix them sees it on opening the console.
        let gave_up: Vec<_> = match owner {
            true => endpoints::list(conn, &tenant)?
                .into_iter()
                .filter(endpoints::Endpoint::gave_up)
                .collect(),
            false => Vec::new(),
        };
        Ok((figures, gave_up))
    })
    .await
    .map_err(|e| session.failed(e))?;
    let body = html! {
        @if !gave_up.is_empty() {
            section class="panel" id="webhooks-gave-up" role="alert" {
                p class="errors" { (w.webhooks_gave_up_home) }
                ul {
                    @for e in &gave_up {
                        li { a href=(format!("/console/webhooks/{}", e.id)) { code { (e.url) } } }
                    }
                }
            }
        }
        section class="panel" id="dashboard" aria-labelledby="programs-figures" {
            p id="welcome" { (t.welcome) ", " (session.staff.email) }
            @if !figures.live {
                // A big merchant's figures are the dashboard job's, not this moment's.
                p class="note" id="as-of" { (fill(w.figures_as_of, "time", &when(figures.as_of))) }
            }
            h2 id="programs-figures" { (w.programs) }
            @if figures.programs.is_empty() {
                p class="note" { (w.no_programs) }
            }
            @for p in &figures.programs {
                div class="figures" data-program=(p.program_id) {
                    h3 { (p.name) }
                    dl class="figure-list" {
                        div { dt { (w.members) } dd data-figure="members" { (number(lang, p.members)) } }
                        div { dt { (w.apple_installs) } dd data-figure="apple_installs" { (number(lang, p.apple_installs)) } }
                        div { dt { (w.google_installs) } dd data-figure="google_installs" { (number(lang, p.google_installs)) } }
                        div { dt { (w.points_issued) } dd data-figure="points_issued" { (number(lang, p.points_issued)) } }
                        div { dt { (w.points_debited) } dd data-figure="points_debited" { (number(lang, p.points_debited)) } }
                        div { dt { (w.points_outstanding) } dd data-figure="points_outstanding" { (number(lang, p.points_outstanding)) } }
                    }
                }
            }
        }
        section class="panel" id="liability" aria-labelledby="liability-title" {
            h2 id="liability-title" { (w.liability_title) }
            @if figures.gift_card_liability.is_empty() {
                p class="note" { (w.no_gift_cards) }
            }
            dl class="figure-list" {
                @for l in &figures.gift_card_liability {
                    div data-currency=(l.currency) {
                        dt { (l.currency) " · " (w.cards) ": " (number(lang, l.cards)) }
                        dd data-figure="balance" data-minor=(l.balance) {
                            @match Currency::parse(&l.currency) {
                                Ok(c) => (money(lang, l.balance, c)),
                                Err(_) => (number(lang, l.balance)),
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(session.page(Section::Home, t.home_title, body))
}
