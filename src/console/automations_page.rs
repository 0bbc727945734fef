//! A program's automations (`automations::list`, the API's pages of 25) and one
//! automation's page (`automations::get`, as `GET /api/v1/automations/{id}`): its rule, its
//! message, the counts of its firings and its sent firings against the held-out ones with
//! the conversion difference's interval drawn as a campaign's is. Owners pause and resume
//! it (`automations::change`, the API's code) with an audit line in the same transaction;
//! cashiers see the figures only.

use super::campaigns_page::comparison;
use super::error::PageError;
use super::format::{decimal, number, when};
use super::i18n::{fill, name_in, AutomationTexts};
use super::insights_page::{failed, program_of, tabs};
use super::paging::{pager, q, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::campaigns::automations::{self, AutomationChange, AutomationView, Trigger};
use crate::db;
use crate::domain::{Language, PageLimit, Paging};
use crate::models::Program;
use crate::problem::ApiError;
use crate::schema;
use crate::segments::Stage;
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    after: Option<String>,
}

/// The rule's trigger in words.
pub fn trigger_text(lang: Language, a: &AutomationTexts, trigger: &Trigger) -> String {
    match trigger {
        Trigger::StageEntered { stage } => {
            let name = Stage::parse(stage)
                .map_or(stage.as_str(), |s| name_in(lang, s.name_en(), s.name_ru()));
            format!("{}: {name}", a.trigger_stage_entered)
        }
        Trigger::FirstPurchase => a.trigger_first_purchase.to_string(),
        Trigger::NthPurchase { n } => fill(a.trigger_nth_purchase, "n", &n.to_string()),
        Trigger::Birthday => a.trigger_birthday.to_string(),
    }
}

pub async fn list(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let id = session.id_in_path(&path)?;
    let lang = session.lang;
    let (i, a) = (session.texts().insights(), session.texts().automations());
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let first_page = Paging::<DateTime<Utc>>::first(PageLimit::fixed(PAGE));
    let paging = match after {
        Some(cursor) => first_page
            .continued(cursor)
            .ok_or(PageError::NotFound(lang))?,
        None => first_page,
    };
    let tenant = session.tenant;
    let (program, page) = db::run(&state.pool, move |conn| {
        let program = program_of(conn, &tenant, id)?;
        let page = automations::list(conn, &tenant, id, &paging)?;
        Ok((program, page))
    })
    .await
    .map_err(|e| failed(&session, e))?;
    let base = format!("/console/programs/{}/automations", program.id);
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| format!("{base}?after={}", q(c)));
    let first = after.map(|_| base.clone());
    let body = html! {
        (tabs(&session, &program, "automations"))
        @if Section::CampaignChanges.allows(session.role) {
            p { a class="button secondary" id="new-automation" href=(format!("{base}/new")) { (a.new_automation) } }
        }
        section class="panel" {
            p class="note" { (a.counts_note) }
            @if page.automations.is_empty() {
                p class="note" id="no-automations" { (a.no_automations) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="automations" {
                        thead { tr {
                            th scope="col" { (a.name) }
                            th scope="col" { (a.trigger) }
                            th scope="col" { (a.enabled) }
                            th scope="col" { (i.targeted) }
                            th scope="col" { (i.held_out) }
                            th scope="col" { (i.sent) }
                        } }
                        tbody {
                            @for v in &page.automations {
                                tr data-automation=(v.id) data-enabled=(v.enabled) {
                                    td data-label=(a.name) {
                                        a href=(format!("/console/automations/{}", v.id)) { (v.name) }
                                    }
                                    td data-label=(a.trigger) { (trigger_text(lang, a, &v.trigger)) }
                                    td data-label=(a.enabled) { (a.state(v.enabled)) }
                                    td data-label=(i.targeted) data-figure="targeted" { (number(lang, v.counts.targeted)) }
                                    td data-label=(i.held_out) data-figure="held_out" { (number(lang, v.counts.held_out)) }
                                    td data-label=(i.sent) data-figure="sent" { (number(lang, v.counts.sent)) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(session.texts(), "automations-pager", next, first))
        }
    };
    let title = format!("{} · {}", a.automations, program.name);
    Ok(session.page(Section::Insights, &title, body))
}

struct Shown {
    program: Program,
    view: AutomationView,
}

async fn load(session: &StaffSession, state: &AppState, raw: &str) -> Result<Shown, PageError> {
    let id = session.id_in_path(raw)?;
    let tenant = session.tenant;
    db::run(&state.pool, move |conn| {
        let view = automations::get(conn, &tenant, id)?;
        let program = program_of(conn, &tenant, view.program_id)?;
        Ok(Shown { program, view })
    })
    .await
    .map_err(|e| failed(session, e))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    created: Option<String>,
    paused: Option<String>,
    resumed: Option<String>,
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let shown = load(&session, &state, &path).await?;
    let a = session.texts().automations();
    let notice = if query.created.is_some() {
        Some(a.created_notice)
    } else if query.paused.is_some() {
        Some(a.paused_notice)
    } else if query.resumed.is_some() {
        Some(a.resumed_notice)
    } else {
        None
    };
    Ok(render(&session, shown, notice))
}

fn render(session: &StaffSession, shown: Shown, notice: Option<&str>) -> HttpResponse {
    let lang = session.lang;
    let (i, a) = (session.texts().insights(), session.texts().automations());
    let Shown { program, view: v } = shown;
    let days = |d: i32| format!("{} {}", number(lang, i64::from(d)), a.days);
    let body = html! {
        (tabs(session, &program, "automations"))
        @if let Some(notice) = notice {
            p class="notice" role="status" id="automation-notice" { (notice) }
        }
        section class="panel" id="automation" data-automation=(v.id) data-enabled=(v.enabled) aria-labelledby="automation-name" {
            h2 id="automation-name" { (v.name) }
            dl class="figure-list" id="automation-rule" {
                div { dt { (a.enabled) } dd id="automation-state" { (a.state(v.enabled)) } }
                div { dt { (a.trigger) } dd id="automation-trigger" { (trigger_text(lang, a, &v.trigger)) } }
                div { dt { (a.period_days) } dd data-figure="period_days" {
                    @match v.period_days { Some(d) => (days(d)), None => (a.once_ever) }
                } }
                div { dt { (i.holdout_percent) } dd data-figure="holdout_percent" { (v.holdout_percent) "%" } }
                div { dt { (i.bonus_points) } dd data-figure="bonus_points" { (number(lang, v.bonus_points)) } }
                @if let Some(d) = v.bonus_expire_days {
                    div { dt { (a.bonus_expire_days) } dd data-figure="bonus_expire_days" { (days(d)) } }
                }
                div { dt { (a.attribution_days) } dd data-figure="attribution_days" { (days(v.attribution_days)) } }
                div { dt { (i.cost_per_message) } dd data-figure="cost_per_message" { (super::format::money(lang, v.cost_per_message, program.currency)) } }
                div { dt { (a.active_since) } dd { (when(v.active_since)) } }
                div { dt { (i.created) } dd { (when(v.created_at)) } }
            }
            h3 { (i.message_title) }
            @for (language, text) in &v.message {
                div class="message" lang=(language) {
                    p { strong { (text.header) } }
                    p { (text.body) }
                }
            }
            @if let Some(offer) = &v.offer {
                p { (i.offer) ": " (offer.text)
                    @if let Some(code) = &offer.coupon_code { " · " code { (code) } }
                    @if let Some(until) = offer.valid_until { " · " (until.to_string()) }
                }
            }
        }
        section class="panel" aria-labelledby="reach-title" {
            h2 id="reach-title" { (i.reach_title) }
            p class="note" { (a.counts_note) }
            dl class="figure-list" id="automation-counts" {
                @for (key, label, value) in [
                    ("targeted", i.targeted, v.counts.targeted),
                    ("held_out", i.held_out, v.counts.held_out),
                    ("sent", i.sent, v.counts.sent),
                    ("with_apple_device", i.with_apple_device, v.counts.with_apple_device),
                    ("with_google_save", i.with_google_save, v.counts.with_google_save),
                    ("pushed_apple", i.pushed_apple, v.counts.pushed_apple),
                    ("messaged_google", i.messaged_google, v.counts.messaged_google),
                    ("no_pass", i.no_pass, v.counts.no_pass),
                ] {
                    div { dt { (label) } dd data-figure=(key) { (number(lang, value)) } }
                }
            }
        }
        @if let Some(r) = &v.results {
            section class="panel" aria-labelledby="results-title" id="results" {
                h2 id="results-title" { (i.results_title) }
                p class="note" { (a.results_note) }
                (comparison(session, &r.sent, &r.holdout, &r.uplift, program.currency))
                (satisfaction(lang, i.group_sent, i.group_holdout, a, r))
            }
        }
        @if Section::CampaignChanges.allows(session.role) {
            @let (action, title, note, button) = if v.enabled {
                ("pause", a.pause_title, a.pause_note, a.pause_button)
            } else {
                ("resume", a.resume_title, a.resume_note, a.resume_button)
            };
            section class="panel" aria-labelledby="change-title" {
                h2 id="change-title" { (title) }
                p class="note" { (note) }
                form method="post" action=(format!("/console/automations/{}/{action}", v.id)) id=(format!("{action}-automation")) {
                    (session.csrf_field())
                    button type="submit" class=[v.enabled.then_some("danger")] id=(format!("{action}-submit")) { (button) }
                }
            }
        }
    };
    let title = format!("{} · {}", a.automations, v.name);
    session.page_with_status(StatusCode::OK, Section::Insights, &title, body)
}

/// The survey answers of each group in the windows: how many, and the CSI beside the NPS
/// of the table.
fn satisfaction(
    lang: Language,
    sent: &str,
    holdout: &str,
    a: &AutomationTexts,
    r: &automations::AutomationResults,
) -> Markup {
    let csi = |c: Option<f64>| c.map_or("—".to_string(), |v| decimal(lang, v, 1));
    html! {
        div class="table-wrap" {
            table id="satisfaction-table" {
                thead { tr {
                    th scope="col" { }
                    th scope="col" { (sent) }
                    th scope="col" { (holdout) }
                } }
                tbody {
                    tr data-row="survey_responses" {
                        th scope="row" { (a.survey_responses) }
                        td data-group="sent" { (number(lang, r.sent.nps.survey_responses)) }
                        td data-group="holdout" { (number(lang, r.holdout.nps.survey_responses)) }
                    }
                    tr data-row="csi" {
                        th scope="row" { (a.csi) }
                        td data-group="sent" { (csi(r.sent.nps.csi)) }
                        td data-group="holdout" { (csi(r.holdout.nps.csi)) }
                    }
                }
            }
        }
    }
}

/// Pauses (`enabled`: false) or resumes the automation of the path, with its audit line
/// when it changed; then its page.
async fn set_enabled(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    enabled: bool,
) -> Result<HttpResponse, PageError> {
    // Refused on the server for cashiers, whatever the page showed them.
    session.require(Section::CampaignChanges)?;
    let id = session.id_in_path(&path)?;
    let tenant = session.tenant;
    let actor = session.actor();
    let now = state.clock.now();
    let change = AutomationChange {
        name: None,
        enabled: Some(enabled),
    };
    db::run(&state.pool, move |conn| {
        conn.transaction::<_, ApiError, _>(|conn| {
            // Locked first, so two pauses at once write one audit line between them.
            let before: bool = schema::automations::table
                .filter(schema::automations::merchant_id.eq(tenant.merchant_id()))
                .filter(schema::automations::id.eq(id))
                .for_update()
                .select(schema::automations::enabled)
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found("no such automation"))?;
            let view = automations::change(conn, &tenant, id, &change, now)?;
            if before != view.enabled {
                let action = if enabled {
                    audit::AUTOMATION_RESUME
                } else {
                    audit::AUTOMATION_PAUSE
                };
                audit::record(
                    conn,
                    &actor,
                    now,
                    action,
                    serde_json::json!({"automation": id, "program": view.program_id}),
                )?;
            }
            Ok(view)
        })
    })
    .await
    .map_err(|e| failed(&session, e))?;
    let done = if enabled { "resumed" } else { "paused" };
    Ok(to(&format!("/console/automations/{id}?{done}=1")))
}

pub async fn pause(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    set_enabled(session, state, path, false).await
}

pub async fn resume(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    set_enabled(session, state, path, true).await
}
