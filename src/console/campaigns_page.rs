//! A program's campaigns (`campaigns::list`, the API's pages of 25) and one campaign's page
//! (`campaigns::get`, as `GET /api/v1/campaigns/{id}`): its reach, and once sent its results
//! against the holdout with the conversion difference's 95% interval drawn. Owners cancel a
//! scheduled one (`campaigns::cancel`, the API's code) with an audit line in the same
//! transaction; cashiers see the figures only.

use super::charts::{self, Frame};
use super::error::PageError;
use super::format::{decimal, money, number, percent_of, when};
use super::i18n::{fill, name_in, InsightTexts};
use super::insights_page::{failed, program_of, tabs};
use super::paging::{pager, q, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::campaigns::results::{GroupResult, Uplift};
use crate::campaigns::{self, Audience, CampaignRow, CampaignView};
use crate::db;
use crate::domain::{Currency, Language, PageLimit, Paging};
use crate::models::Program;
use crate::problem::{ApiError, ProblemKind};
use crate::segments::{Group, Stage};
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::Connection;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    after: Option<String>,
}

/// A signed percentage-point difference: "+5.0%".
pub fn signed_percent(lang: Language, fraction: f64) -> String {
    let text = percent_of(lang, fraction, 1);
    if fraction > 0.0 && fraction.is_finite() {
        format!("+{text}")
    } else {
        text
    }
}

/// Minor units that may be fractional (per member), rounded to a minor unit.
pub fn money_f(lang: Language, minor: f64, currency: Currency) -> String {
    if minor.is_finite() {
        money(lang, minor.round() as i64, currency)
    } else {
        "—".into()
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
    let i = session.texts().insights();
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let first_page = Paging::<DateTime<Utc>>::first(PageLimit::fixed(PAGE));
    let paging = match after {
        Some(cursor) => first_page
            .continued(cursor)
            .ok_or(PageError::NotFound(lang))?,
        None => first_page,
    };
    let tenant = session.tenant;
    let now = state.clock.now();
    let (program, page) = db::run(&state.pool, move |conn| {
        let program = program_of(conn, &tenant, id)?;
        let mut page = campaigns::list(conn, &tenant, id, &paging)?;
        // The list's views carry no results; the started ones get theirs (a page is 25).
        for view in page.campaigns.iter_mut() {
            if view.started_at.is_some() {
                *view = campaigns::get(conn, &tenant, view.id, now)?;
            }
        }
        Ok((program, page))
    })
    .await
    .map_err(|e| failed(&session, e))?;
    let base = format!("/console/programs/{}/campaigns", program.id);
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| format!("{base}?after={}", q(c)));
    let first = after.map(|_| base.clone());
    let body = html! {
        (tabs(&session, &program, "campaigns"))
        @if Section::CampaignChanges.allows(session.role) {
            p { a class="button secondary" id="new-campaign" href=(format!("{base}/new")) { (i.new_campaign) } }
        }
        section class="panel" {
            @if page.campaigns.is_empty() {
                p class="note" id="no-campaigns" { (i.no_campaigns) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="campaigns" {
                        thead { tr {
                            th scope="col" { (i.message_title) }
                            th scope="col" { (i.state) }
                            th scope="col" { (i.send_at) }
                            th scope="col" { (i.targeted) }
                            th scope="col" { (i.held_out) }
                            th scope="col" { (i.sent) }
                            th scope="col" { (i.conversion_difference) }
                        } }
                        tbody {
                            @for c in &page.campaigns {
                                tr data-campaign=(c.id) data-state=(c.state) {
                                    td data-label=(i.message_title) {
                                        a href=(format!("/console/campaigns/{}", c.id)) { (headline(lang, c)) }
                                    }
                                    td data-label=(i.state) { (i.campaign_state(&c.state)) }
                                    td data-label=(i.send_at) { (when(c.send_at)) }
                                    td data-label=(i.targeted) data-figure="targeted" { (number(lang, c.counts.targeted)) }
                                    td data-label=(i.held_out) data-figure="held_out" { (number(lang, c.counts.held_out)) }
                                    td data-label=(i.sent) data-figure="sent" { (number(lang, c.counts.sent)) }
                                    td data-label=(i.conversion_difference) data-figure="conversion_difference" {
                                        @match c.results.as_ref().and_then(|r| r.conversion_difference) {
                                            Some(d) => (signed_percent(lang, d)),
                                            None => "—",
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(session.texts(), "campaigns-pager", next, first))
        }
    };
    let title = format!("{} · {}", i.campaigns, program.name);
    Ok(session.page(Section::Insights, &title, body))
}

/// A campaign's message header in the staff member's language, else English, else any.
fn headline(lang: Language, c: &CampaignView) -> String {
    c.message
        .get(lang.as_str())
        .or_else(|| c.message.get("en"))
        .or_else(|| c.message.values().next())
        .map(|m| m.header.clone())
        .unwrap_or_default()
}

/// Who the campaign was for, in words.
fn audience_text(lang: Language, i: &InsightTexts, a: &Audience) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(groups) = &a.groups {
        let names: Vec<&str> = groups
            .iter()
            .map(|g| {
                Group::parse(g).map_or(g.as_str(), |g| name_in(lang, g.name_en(), g.name_ru()))
            })
            .collect();
        out.push((i.kind_group.to_string(), names.join(", ")));
    }
    if let Some(stages) = &a.stages {
        let names: Vec<&str> = stages
            .iter()
            .map(|s| {
                Stage::parse(s).map_or(s.as_str(), |s| name_in(lang, s.name_en(), s.name_ru()))
            })
            .collect();
        out.push((i.kind_stage.to_string(), names.join(", ")));
    }
    if let Some(cells) = &a.cells {
        out.push(("RFM".to_string(), cells.join(", ")));
    }
    if let Some(tiers) = &a.tiers {
        out.push((i.tiers_title.to_string(), tiers.join(", ")));
    }
    if let Some(ids) = a.member_ids.as_ref().filter(|ids| !ids.is_empty()) {
        out.push((i.members.to_string(), number(lang, ids.len() as i64)));
    }
    out
}

struct Shown {
    program: Program,
    view: CampaignView,
}

async fn load(session: &StaffSession, state: &AppState, raw: &str) -> Result<Shown, PageError> {
    let id = session.id_in_path(raw)?;
    let tenant = session.tenant;
    let now = state.clock.now();
    db::run(&state.pool, move |conn| {
        let view = campaigns::get(conn, &tenant, id, now)?;
        let program = program_of(conn, &tenant, view.program_id)?;
        Ok(Shown { program, view })
    })
    .await
    .map_err(|e| failed(session, e))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    cancelled: Option<String>,
    created: Option<String>,
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let shown = load(&session, &state, &path).await?;
    let i = session.texts().insights();
    let notice = match (&query.cancelled, &query.created) {
        (Some(_), _) => Some(i.cancelled_notice),
        (None, Some(_)) => Some(i.created_notice),
        (None, None) => None,
    };
    Ok(render(&session, StatusCode::OK, shown, notice, None))
}

fn render(
    session: &StaffSession,
    status: StatusCode,
    shown: Shown,
    notice: Option<&str>,
    problem: Option<&str>,
) -> HttpResponse {
    let lang = session.lang;
    let i = session.texts().insights();
    let Shown { program, view: c } = shown;
    let currency = program.currency;
    let body = html! {
        (tabs(session, &program, "campaigns"))
        @if let Some(notice) = notice {
            p class="notice" role="status" id="campaign-notice" { (notice) }
        }
        @if let Some(problem) = problem {
            p class="errors" role="alert" id="campaign-error" { (problem) }
        }
        section class="panel" id="campaign" data-campaign=(c.id) data-state=(c.state) aria-labelledby="campaign-message" {
            h2 id="campaign-message" { (i.message_title) }
            dl class="figure-list" {
                div { dt { (i.state) } dd id="campaign-state" { (i.campaign_state(&c.state)) } }
                div { dt { (i.send_at) } dd { (when(c.send_at)) } }
                div { dt { (i.created) } dd { (when(c.created_at)) } }
                div { dt { (i.holdout_percent) } dd { (c.holdout_percent) "%" } }
                div { dt { (i.bonus_points) } dd { (number(lang, c.bonus_points)) } }
                @for (label, value) in audience_text(lang, i, &c.audience) {
                    div { dt { (i.audience) ": " (label) } dd { (value) } }
                }
            }
            @for (language, text) in &c.message {
                div class="message" lang=(language) {
                    p { strong { (text.header) } }
                    p { (text.body) }
                }
            }
            @if let Some(offer) = &c.offer {
                p { (i.offer) ": " (offer.text)
                    @if let Some(code) = &offer.coupon_code { " · " code { (code) } }
                    @if let Some(until) = offer.valid_until { " · " (until.to_string()) }
                }
            }
        }
        section class="panel" aria-labelledby="reach-title" {
            h2 id="reach-title" { (i.reach_title) }
            dl class="figure-list" id="campaign-counts" {
                @for (key, label, value) in [
                    ("targeted", i.targeted, c.counts.targeted),
                    ("held_out", i.held_out, c.counts.held_out),
                    ("sent", i.sent, c.counts.sent),
                    ("with_apple_device", i.with_apple_device, c.counts.with_apple_device),
                    ("with_google_save", i.with_google_save, c.counts.with_google_save),
                    ("pushed_apple", i.pushed_apple, c.counts.pushed_apple),
                    ("messaged_google", i.messaged_google, c.counts.messaged_google),
                    ("no_pass", i.no_pass, c.counts.no_pass),
                ] {
                    div { dt { (label) } dd data-figure=(key) { (number(lang, value)) } }
                }
            }
        }
        (results(session, &c, currency))
        @if c.state == "scheduled" && Section::CampaignChanges.allows(session.role) {
            section class="panel" aria-labelledby="cancel-title" {
                h2 id="cancel-title" { (i.cancel_title) }
                p class="note" { (i.cancel_note) }
                form method="post" action=(format!("/console/campaigns/{}/cancel", c.id)) id="cancel-campaign" {
                    (session.csrf_field())
                    button type="submit" class="danger" id="cancel-submit" { (i.cancel_button) }
                }
            }
        }
    };
    let title = format!("{} · {}", i.campaigns, headline(lang, &c));
    session.page_with_status(status, Section::Insights, &title, body)
}

fn results(session: &StaffSession, c: &CampaignView, currency: Currency) -> Markup {
    let i = session.texts().insights();
    let Some(r) = &c.results else {
        return html! {
            section class="panel" aria-labelledby="results-title" id="results" {
                h2 id="results-title" { (i.results_title) }
                p class="note" id="results-pending" { (i.not_started) }
            }
        };
    };
    let window = fill(
        &fill(i.window, "from", &when(r.window_from)),
        "until",
        &when(r.window_until),
    );
    let uplift = Uplift {
        conversion_difference: r.conversion_difference,
        conversion_difference_ci95: r.conversion_difference_ci95.clone(),
        revenue_per_member_difference: r.revenue_per_member_difference,
        incremental_revenue: r.incremental_revenue,
        cost: r.cost.clone(),
        romi: r.romi,
    };
    html! {
        section class="panel" aria-labelledby="results-title" id="results" {
            h2 id="results-title" { (i.results_title) }
            p class="note" { (window) }
            @if !r.complete { p class="note" id="window-open" { (i.window_open) } }
            (comparison(session, &r.sent, &r.holdout, &uplift, currency))
        }
    }
}

/// The sent group against the holdout (a table), the conversion difference's interval
/// drawn, and what it brought and cost: a campaign's results and an automation's.
pub fn comparison(
    session: &StaffSession,
    sent: &GroupResult,
    holdout: &GroupResult,
    u: &Uplift,
    currency: Currency,
) -> Markup {
    let lang = session.lang;
    let i = session.texts().insights();
    let nps = |n: Option<f64>| n.map_or("—".to_string(), |v| decimal(lang, v, 1));
    let rows: [(&str, &str, String, String); 7] = [
        (
            "members",
            i.members,
            number(lang, sent.members),
            number(lang, holdout.members),
        ),
        (
            "converted",
            i.converted,
            number(lang, sent.converted),
            number(lang, holdout.converted),
        ),
        (
            "conversion_rate",
            i.conversion,
            percent_of(lang, sent.conversion_rate, 1),
            percent_of(lang, holdout.conversion_rate, 1),
        ),
        (
            "purchases",
            i.purchases,
            number(lang, sent.purchases),
            number(lang, holdout.purchases),
        ),
        (
            "revenue",
            i.revenue,
            money(lang, sent.revenue, currency),
            money(lang, holdout.revenue, currency),
        ),
        (
            "revenue_per_member",
            i.revenue_per_member,
            money_f(lang, sent.revenue_per_member, currency),
            money_f(lang, holdout.revenue_per_member, currency),
        ),
        ("nps", i.nps, nps(sent.nps.nps), nps(holdout.nps.nps)),
    ];
    html! {
        div class="table-wrap" {
            table id="results-table" {
                thead { tr {
                    th scope="col" { }
                    th scope="col" { (i.group_sent) }
                    th scope="col" { (i.group_holdout) }
                } }
                tbody {
                    @for (key, label, sent, holdout) in &rows {
                        tr data-row=(key) {
                            th scope="row" { (label) }
                            td data-group="sent" { (sent) }
                            td data-group="holdout" { (holdout) }
                        }
                    }
                }
            }
        }
        @match (u.conversion_difference, &u.conversion_difference_ci95) {
            (Some(d), Some(ci)) => {
                (charts::interval(
                    &Frame { id: "chart-difference", title: i.chart_difference, empty: i.no_comparison },
                    d, ci.low, ci.high, &|v| signed_percent(lang, v),
                ))
                dl class="figure-list" id="difference" {
                    div { dt { (i.difference) } dd data-figure="conversion_difference" { (signed_percent(lang, d)) } }
                    div { dt { (i.interval95) } dd data-figure="ci95" { (signed_percent(lang, ci.low)) " … " (signed_percent(lang, ci.high)) } }
                }
            }
            _ => p class="note" id="no-comparison" { (i.no_comparison) },
        }
        dl class="figure-list" id="money" {
            div { dt { (i.incremental_revenue) } dd data-figure="incremental_revenue" {
                @match u.incremental_revenue { Some(v) => (money_f(lang, v, currency)), None => "—" }
            } }
            div { dt { (i.cost_points) } dd data-figure="cost_points" { (money(lang, u.cost.bonus_points, currency)) } }
            div { dt { (i.cost_messages) } dd data-figure="cost_messages" { (money(lang, u.cost.messages, currency)) } }
            div { dt { (i.cost) } dd data-figure="cost" { (money(lang, u.cost.total, currency)) } }
            div { dt { (i.romi) } dd data-figure="romi" {
                @match u.romi { Some(v) => (percent_of(lang, v, 0)), None => "—" }
            } }
        }
    }
}

pub async fn cancel(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    // Refused on the server for cashiers, whatever the page showed them.
    session.require(Section::CampaignChanges)?;
    let id = session.id_in_path(&path)?;
    let tenant = session.tenant;
    let actor = session.actor();
    let now = state.clock.now();
    let outcome = db::run(&state.pool, move |conn| {
        conn.transaction::<_, ApiError, _>(|conn| {
            let before = CampaignRow::find(conn, &tenant, id)?;
            let view = campaigns::cancel(conn, &tenant, id, now)?;
            if before.state == "scheduled" {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::CAMPAIGN_CANCEL,
                    serde_json::json!({"campaign": id, "program": view.program_id}),
                )?;
            }
            Ok(view)
        })
    })
    .await;
    match outcome {
        Ok(_) => Ok(to(&format!("/console/campaigns/{id}?cancelled=1"))),
        Err(e) if e.kind == ProblemKind::Conflict => {
            let shown = load(&session, &state, &path).await?;
            let i = session.texts().insights();
            Ok(render(
                &session,
                StatusCode::CONFLICT,
                shown,
                None,
                Some(i.cancel_refused),
            ))
        }
        Err(e) => Err(failed(&session, e)),
    }
}
