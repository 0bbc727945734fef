//! The merchant's CSV imports (issue 17): a list, newest first, and one import's page with
//! a progress bar, its figures and its refused rows by line and column, paged. Read through
//! `imports::page` and `imports::find` only, the API's own reads (`GET /api/v1/imports`,
//! `GET /api/v1/imports/{id}`), so the console shows what the API says. Owners and cashiers
//! look ([`Section::Imports`]).
//!
//! While an import runs its page reloads itself every 2 seconds, by the HTTP `Refresh`
//! header: no script, nothing the CSP has to allow. Not by `<meta http-equiv="refresh">`,
//! which axe-core refuses (WCAG 2.2.1: a timed reload disorients screen-reader users unless
//! they can stop it); the page carries a link that stops it (`?follow=off`) and one that
//! starts it again, which is what 2.2.1 asks of a reload whichever way it is sent.
//!
//! How many rows a file holds is known only once it has been read to its end, so the bar
//! of a running import has no value (an indeterminate `<progress>`) and its words say how
//! many rows were handled of those read so far; once it ends, the bar is full.

use super::error::PageError;
use super::format::{number, when};
use super::i18n::fill;
use super::paging::{pager, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::db;
use crate::imports::{self, ImportView, Kind};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use crate::routes::{self, imports::ImportQuery};
use crate::staff::audit;
use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use maud::{html, Markup};
use serde::Deserialize;

/// Refused rows shown per page of an import.
const ERRORS_PAGE: usize = 50;

/// Seconds between reloads of a running import's page.
const REFRESH_SECONDS: u32 = 2;

/// Whether the import is still at work (its page follows it).
fn running(v: &ImportView) -> bool {
    matches!(v.state.as_str(), "queued" | "validating" | "importing")
}

/// A not-found answer of the imports' reads as the not-found page; the rest as failures.
fn failed(session: &StaffSession, e: diesel::result::Error) -> PageError {
    match e {
        diesel::result::Error::NotFound => PageError::NotFound(session.lang),
        e => session.failed(ApiError::from(e)),
    }
}

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
    session.require(Section::Imports)?;
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(session.id_in_path(a)?),
        None => None,
    };
    list_page(&session, &state, after, StatusCode::OK, None).await
}

/// The list (from after `after`), with the owner's form and why it was refused, if it was.
async fn list_page(
    session: &StaffSession,
    state: &AppState,
    after: Option<uuid::Uuid>,
    status: StatusCode,
    refused: Option<&[FieldProblem]>,
) -> Result<HttpResponse, PageError> {
    let lang = session.lang;
    let m = session.texts().imports();
    let tenant = session.tenant;
    let (rows, next) = db::run(&state.pool, move |conn| {
        Ok(imports::page(conn, &tenant, PAGE, after))
    })
    .await
    .map_err(|e| session.failed(e))?
    .map_err(|e| failed(session, e))?;
    let programs = if Section::ImportChanges.allows(session.role) {
        db::run(&state.pool, move |conn| {
            Ok(Program::page(conn, &tenant, None, PAGE)?)
        })
        .await
        .map_err(|e| session.failed(e))?
    } else {
        Vec::new()
    };
    let next = next.map(|c| format!("/console/imports?after={c}"));
    let first = after.map(|_| "/console/imports".to_string());
    let body = html! {
        @if Section::ImportChanges.allows(session.role) {
            (start_form(session, &programs, refused))
        }
        section class="panel" {
            p class="note" { (m.imports_note) }
            @if rows.is_empty() {
                p class="note" id="no-imports" { (m.no_imports) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="imports" {
                        thead { tr {
                            th scope="col" { (m.created) }
                            th scope="col" { (m.kind) }
                            th scope="col" { (m.state) }
                            th scope="col" { (m.rows) }
                            th scope="col" { (m.imported) }
                            th scope="col" { (m.skipped) }
                            th scope="col" { (m.errors) }
                        } }
                        tbody {
                            @for v in &rows {
                                tr data-import=(v.id) data-state=(v.state) {
                                    td data-label=(m.created) {
                                        a href=(format!("/console/imports/{}", v.id)) { (when(v.created_at)) }
                                    }
                                    td data-label=(m.kind) {
                                        (m.kind(v.kind))
                                        @if v.dry_run { " · " (m.dry_run) }
                                    }
                                    td data-label=(m.state) { (m.state(&v.state)) }
                                    td data-label=(m.rows) data-figure="rows" { (number(lang, v.rows)) }
                                    td data-label=(m.imported) data-figure="imported" { (number(lang, v.imported)) }
                                    td data-label=(m.skipped) data-figure="skipped" { (number(lang, v.skipped)) }
                                    td data-label=(m.errors) data-figure="error_count" { (number(lang, v.error_count)) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(session.texts(), "imports-pager", next, first))
        }
    };
    Ok(session.page_with_status(status, Section::Imports, m.imports_title, body))
}

/// The owner's upload form: multipart, so its CSRF token rides in the action's query.
fn start_form(
    session: &StaffSession,
    programs: &[Program],
    refused: Option<&[FieldProblem]>,
) -> Markup {
    let m = session.texts().imports();
    html! {
        section class="panel" aria-labelledby="start-title" {
            h2 id="start-title" { (m.start_title) }
            p class="note" { (m.start_note) }
            @if let Some(problems) = refused {
                div class="errors" role="alert" id="import-start-errors" {
                    p { (m.start_refused) }
                    ul { @for p in problems { li {
                        @if !p.pointer.is_empty() { code { (p.pointer.trim_start_matches('/')) } ": " }
                        (p.detail)
                    } } }
                }
            }
            form class="stack" id="import-form" method="post" enctype="multipart/form-data"
                action=(format!("/console/imports?csrf={}", session.csrf)) {
                div {
                    label for="import-kind" { (m.kind) }
                    select id="import-kind" name="kind" {
                        @for kind in [Kind::Members, Kind::Purchases, Kind::GiftCards] {
                            option value=(kind.as_str()) { (m.kind(kind)) }
                        }
                    }
                }
                div {
                    label for="import-program" { (m.program) }
                    select id="import-program" name="program_id" {
                        option value="" { "—" }
                        @for p in programs {
                            option value=(p.id) { (p.name) }
                        }
                    }
                }
                label class="check" {
                    input type="checkbox" name="dry_run" value="true";
                    (m.dry_run_check)
                }
                div {
                    label for="import-file" { (m.file) }
                    input type="file" id="import-file" name="file" accept=".csv,text/csv" required;
                }
                button type="submit" id="import-submit" { (m.start_button) }
            }
        }
    }
}

/// Starts an import from the form through the API's own upload (`routes::imports::request`
/// reads the same fields the API's query has, `receive` stores the file the same way); the
/// fields come before the file in the form, so the file is streamed, never held whole.
pub async fn start(
    session: StaffSession,
    state: web::Data<AppState>,
    mut payload: Multipart,
) -> Result<HttpResponse, PageError> {
    // Refused on the server for cashiers, whatever the page showed them.
    session.require(Section::ImportChanges)?;
    let mut fields: std::collections::BTreeMap<String, String> = Default::default();
    let mut outcome: Option<Result<uuid::Uuid, ApiError>> = None;
    while let Some(field) = payload.next().await {
        let Ok(mut field) = field else {
            outcome = Some(Err(ApiError::bad_request("the form could not be read")));
            break;
        };
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_name())
            .unwrap_or_default()
            .to_string();
        if name == "file" {
            let given = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
            let query = ImportQuery {
                kind: given("kind"),
                program_id: given("program_id"),
                dry_run: given("dry_run"),
                template: given("template"),
            };
            outcome = Some(match routes::imports::request(&query) {
                Ok(request) => {
                    routes::imports::receive(&state, session.tenant, request, field).await
                }
                Err(e) => Err(e),
            });
            break;
        }
        // A short text field (kind, program, dry run): read to its end, kept to 200 bytes
        // (anything longer is not this form's and is not held).
        let mut text = Vec::new();
        while let Some(Ok(chunk)) = field.next().await {
            if text.len() + chunk.len() <= 200 {
                text.extend_from_slice(&chunk);
            }
        }
        fields.insert(name, String::from_utf8_lossy(&text).trim().to_string());
    }
    let outcome = outcome.unwrap_or_else(|| {
        Err(ApiError::bad_request(
            "the body is empty: send the CSV file",
        ))
    });
    match outcome {
        Ok(id) => {
            // After the file is stored: the upload spans many transactions, and this line
            // says an import was started by whom (its progress is the import's own record).
            let (actor, now) = (session.actor(), state.clock.now());
            let kind = fields.get("kind").cloned().unwrap_or_default();
            db::run(&state.pool, move |conn| {
                Ok(audit::record(
                    conn,
                    &actor,
                    now,
                    audit::IMPORT_START,
                    serde_json::json!({"import": id, "kind": kind}),
                )?)
            })
            .await
            .map_err(|e| session.failed(e))?;
            Ok(to(&format!("/console/imports/{id}?started=1")))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            let problems = if e.errors.is_empty() {
                vec![FieldProblem::new("", e.detail.clone())]
            } else {
                e.errors.clone()
            };
            let status = if e.status == StatusCode::NOT_FOUND {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                e.status
            };
            list_page(&session, &state, None, status, Some(&problems)).await
        }
        Err(e) => Err(session.failed(e)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    /// The first refused row shown (0-based, a multiple of the errors' page).
    errors_from: Option<String>,
    /// `off`: a running import's page does not reload itself.
    follow: Option<String>,
    started: Option<String>,
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Imports)?;
    let id = session.id_in_path(&path)?;
    let from = match query.errors_from.as_deref().filter(|v| !v.is_empty()) {
        None => 0,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| n % ERRORS_PAGE == 0)
            .ok_or(PageError::NotFound(session.lang))?,
    };
    let tenant = session.tenant;
    let view = db::run(&state.pool, move |conn| {
        Ok(imports::find(conn, &tenant, id))
    })
    .await
    .map_err(|e| session.failed(e))?
    .map_err(|e| failed(&session, e))?;
    if from > 0 && from >= view.errors.len() {
        return Err(PageError::NotFound(session.lang));
    }
    let m = session.texts().imports();
    let follow = running(&view) && query.follow.as_deref() != Some("off");
    let body = html! {
        @if query.started.is_some() {
            p class="notice" role="status" id="import-started" { (m.started_notice) }
        }
        (summary(&session, &view, follow, from))
        (errors(&session, &view, from))
    };
    let title = format!("{} · {}", m.import_title, m.kind(view.kind));
    let mut page = session.page(Section::Imports, &title, body);
    if follow {
        page.headers_mut().insert(
            header::HeaderName::from_static("refresh"),
            header::HeaderValue::from(REFRESH_SECONDS),
        );
    }
    Ok(page)
}

fn summary(session: &StaffSession, v: &ImportView, follow: bool, from: usize) -> Markup {
    let lang = session.lang;
    let m = session.texts().imports();
    let handled = v.imported + v.skipped + v.error_count;
    html! {
        section class="panel" id="import" data-import=(v.id) data-state=(v.state) aria-labelledby="progress-label" {
            h2 id="progress-label" { (m.progress) }
            @if running(v) {
                progress id="import-progress" aria-labelledby="progress-label" {}
                p id="progress-text" {
                    (fill(&fill(m.progress_text, "done", &number(lang, handled.min(v.rows))), "rows", &number(lang, v.rows)))
                }
                @let here = format!("/console/imports/{}?errors_from={from}", v.id);
                @if follow {
                    p class="note" id="refreshing" {
                        (m.refreshing) " "
                        a href=(format!("{here}&follow=off")) id="stop-refreshing" { (m.stop_refreshing) }
                    }
                } @else {
                    p class="note" id="not-refreshing" {
                        a href=(here) id="start-refreshing" { (m.start_refreshing) }
                    }
                }
            } @else {
                progress id="import-progress" aria-labelledby="progress-label" max="1" value="1" {}
            }
            dl class="figure-list" id="import-figures" {
                div { dt { (m.state) } dd id="import-state" { (m.state(&v.state)) } }
                div { dt { (m.kind) } dd { (m.kind(v.kind)) } }
                div { dt { (m.dry_run) } dd { (if v.dry_run { m.yes } else { m.no }) } }
                div { dt { (m.rows_read) } dd data-figure="rows" { (number(lang, v.rows)) } }
                div { dt { (m.imported) } dd data-figure="imported" { (number(lang, v.imported)) } }
                div { dt { (m.skipped) } dd data-figure="skipped" { (number(lang, v.skipped)) } }
                div { dt { (m.errors) } dd data-figure="error_count" { (number(lang, v.error_count)) } }
                div { dt { (m.size) } dd data-figure="bytes" { (number(lang, v.bytes)) } }
                div { dt { (m.created) } dd { (when(v.created_at)) } }
                @if let Some(at) = v.finished_at {
                    div { dt { (m.finished) } dd { (when(at)) } }
                }
            }
            @if let Some(failure) = &v.failure {
                p class="errors" role="alert" id="import-failure" { (m.failure) ": " (failure) }
            }
        }
    }
}

fn errors(session: &StaffSession, v: &ImportView, from: usize) -> Markup {
    let m = session.texts().imports();
    let shown = v.errors.iter().skip(from).take(ERRORS_PAGE);
    let base = format!("/console/imports/{}", v.id);
    let next = (from + ERRORS_PAGE < v.errors.len())
        .then(|| format!("{base}?errors_from={}", from + ERRORS_PAGE));
    let first = (from > 0).then(|| base.clone());
    let kept = v.errors.len() as i64;
    html! {
        section class="panel" aria-labelledby="errors-title" id="import-errors" {
            h2 id="errors-title" { (m.errors_title) }
            @if v.errors.is_empty() {
                p class="note" id="no-errors" { (m.no_errors) }
            } @else {
                @if v.error_count > kept {
                    p class="note" id="errors-kept" {
                        (fill(&fill(m.errors_kept, "kept", &number(session.lang, kept)), "all", &number(session.lang, v.error_count)))
                    }
                }
                div class="table-wrap" {
                    table class="cards" id="error-table" {
                        thead { tr {
                            th scope="col" { (m.line) }
                            th scope="col" { (m.column) }
                            th scope="col" { (m.message) }
                        } }
                        tbody {
                            @for e in shown {
                                tr data-line=(e.line) {
                                    td data-label=(m.line) { (e.line) }
                                    td data-label=(m.column) {
                                        @match &e.column { Some(c) => code { (c) }, None => (m.whole_row) }
                                    }
                                    td data-label=(m.message) { (e.message) }
                                }
                            }
                        }
                    }
                }
                (pager(session.texts(), "errors-pager", next, first))
            }
        }
    }
}
