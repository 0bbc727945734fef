//! The audit log (owners only), newest first, by cursor: `?before=<id>` continues after
//! the last line shown.

use super::error::PageError;
use super::session::{Section, StaffSession};
use crate::app::AppState;
use crate::db;
use crate::staff::audit;
use actix_web::{web, HttpResponse};
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Cursor {
    before: Option<String>,
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<Cursor>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Audit)?;
    let t = session.texts();
    // A cursor that is no positive number starts at the newest line.
    let before = query
        .before
        .as_deref()
        .and_then(|b| b.parse::<i64>().ok())
        .filter(|b| *b > 0);
    let tenant = session.tenant;
    let audit::Page { lines, next } = db::run(&state.pool, move |conn| {
        Ok(audit::page(conn, &tenant, before)?)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let body = html! {
        section class="panel" {
            @if lines.is_empty() {
                p class="note" id="audit-empty" { (t.no_entries) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="audit-log" {
                        thead { tr {
                            th scope="col" { (t.when) }
                            th scope="col" { (t.who) }
                            th scope="col" { (t.action) }
                            th scope="col" { (t.details) }
                            th scope="col" { (t.address) }
                        } }
                        tbody {
                            @for (entry, email) in &lines {
                                tr data-action=(entry.action) {
                                    td data-label=(t.when) { (entry.created_at.format("%Y-%m-%d %H:%M:%S")) }
                                    td data-label=(t.who) {
                                        @match (email, entry.staff_id) {
                                            (Some(email), _) => (email),
                                            (None, Some(id)) => code { (id) },
                                            (None, None) => (t.command_line),
                                        }
                                    }
                                    td data-label=(t.action) { code { (entry.action) } }
                                    td data-label=(t.details) { code { (entry.details.to_string()) } }
                                    td data-label=(t.address) { (entry.client.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            nav class="pager" aria-label=(t.audit_title) {
                @if before.is_some() {
                    a href="/console/audit" id="audit-newest" { (t.newest) }
                }
                @if let Some(next) = next {
                    a href=(format!("/console/audit?before={next}")) id="audit-older" rel="next" { (t.older) }
                }
            }
        }
    };
    Ok(session.page(Section::Audit, t.audit_title, body))
}
