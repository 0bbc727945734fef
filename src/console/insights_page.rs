//! Insights (issue 16): the programs, each with its segments, campaigns and analytics
//! pages (`segments_page`, `campaigns_page`, `analytics_page`), for owners and cashiers
//! ([`Section::Insights`]); cancelling a campaign is the owner's
//! ([`Section::CampaignChanges`]). What those pages share is here: the program of a path,
//! the CSV answer.

use super::error::PageError;
use super::format::when;
use super::paging::{cut, pager, parse_time_cursor, time_cursor, PAGE};
use super::session::{Section, StaffSession};
use crate::app::AppState;
use crate::db;
use crate::models::Program;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use diesel::OptionalExtension;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    after: Option<String>,
}

pub async fn list(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let t = session.texts();
    let (w, i, a) = (t.pages(), t.insights(), t.automations());
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(parse_time_cursor(a).ok_or(PageError::NotFound(session.lang))?),
        None => None,
    };
    let tenant = session.tenant;
    let rows = db::run(&state.pool, move |conn| {
        Ok(Program::page(conn, &tenant, after, PAGE + 1)?)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let (rows, more) = cut(rows);
    let next = more.then(|| rows.last()).flatten().map(|p| {
        format!(
            "/console/insights?after={}",
            time_cursor(p.created_at, p.id)
        )
    });
    let first = after.map(|_| "/console/insights".to_string());
    let body = html! {
        section class="panel" {
            p class="note" { (i.insights_note) }
            @if rows.is_empty() {
                p class="note" { (w.no_programs) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="insight-programs" {
                        thead { tr {
                            th scope="col" { (w.name) }
                            th scope="col" { (w.created) }
                            th scope="col" { (i.segments) }
                            th scope="col" { (i.campaigns) }
                            th scope="col" { (a.automations) }
                            th scope="col" { (i.analytics) }
                        } }
                        tbody {
                            @for p in &rows {
                                tr data-program=(p.id) {
                                    td data-label=(w.name) { (p.name) }
                                    td data-label=(w.created) { (when(p.created_at)) }
                                    td data-label=(i.segments) { a href=(format!("/console/programs/{}/segments", p.id)) { (i.segments) } }
                                    td data-label=(i.campaigns) { a href=(format!("/console/programs/{}/campaigns", p.id)) { (i.campaigns) } }
                                    td data-label=(a.automations) { a href=(format!("/console/programs/{}/automations", p.id)) { (a.automations) } }
                                    td data-label=(i.analytics) { a href=(format!("/console/programs/{}/analytics", p.id)) { (i.analytics) } }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "insights-pager", next, first))
        }
    };
    Ok(session.page(Section::Insights, i.insights_title, body))
}

/// The session's merchant's program `id`: another merchant's is not found, as a missing one.
pub fn program_of(
    conn: &mut diesel::PgConnection,
    session_tenant: &crate::db::Tenant,
    id: Uuid,
) -> Result<Program, crate::problem::ApiError> {
    Program::find(conn, session_tenant, id)
        .optional()?
        .ok_or_else(|| crate::problem::ApiError::not_found("no such program"))
}

/// A failure of a page's query as its page: not found stays not found.
pub fn failed(session: &StaffSession, e: crate::problem::ApiError) -> PageError {
    if e.status == StatusCode::NOT_FOUND {
        PageError::NotFound(session.lang)
    } else {
        session.failed(e)
    }
}

/// A CSV download (`name` without directory parts; the pages make it).
pub fn csv(name: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// Links to a program's three pages, the current one marked.
pub fn tabs(session: &StaffSession, program: &Program, current: &str) -> maud::Markup {
    let i = session.texts().insights();
    let links = [
        ("segments", i.segments),
        ("campaigns", i.campaigns),
        ("automations", session.texts().automations().automations),
        ("analytics", i.analytics),
    ];
    html! {
        nav class="tabs" aria-label=(program.name) {
            ul {
                @for (path, label) in links {
                    li {
                        a href=(format!("/console/programs/{}/{path}", program.id)) id=(format!("tab-{path}"))
                          aria-current=[(path == current).then_some("page")] { (label) }
                    }
                }
            }
        }
    }
}
