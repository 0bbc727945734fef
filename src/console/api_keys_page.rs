//! API keys (owners only): the list a page at a time, a new key (its secret shown on the
//! answer page, this once), and revocation, refused for the last active admin key with the
//! reason. The same `ApiKey` functions as `/api/v1/api-keys`; each change has an audit line
//! in its transaction. passfold records no "last used" time, and the page says so.

use super::error::PageError;
use super::format::when;
use super::i18n::{fill, PageTexts};
use super::paging::{cut, pager, parse_time_cursor, time_cursor, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::db;
use crate::domain::Scope;
use crate::models::api_key::{ApiKey, LastAdminKey};
use crate::problem::ApiError;
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use diesel::Connection;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

fn scope_text(w: &PageTexts, scope: Scope) -> &'static str {
    match scope {
        Scope::Admin => w.scope_admin,
        Scope::Pos => w.scope_pos,
    }
}

enum Notice {
    Problem(&'static str),
    Done(&'static str),
    /// A new key's secret: shown this once.
    Secret(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    after: Option<String>,
    revoked: Option<String>,
}

async fn render(
    session: &StaffSession,
    state: &AppState,
    status: StatusCode,
    after: Option<&str>,
    notice: Option<Notice>,
) -> Result<HttpResponse, PageError> {
    let t = session.texts();
    let w = t.pages();
    let after = match after.filter(|a| !a.is_empty()) {
        Some(a) => Some(parse_time_cursor(a).ok_or(PageError::NotFound(session.lang))?),
        None => None,
    };
    let tenant = session.tenant;
    let rows = db::run(&state.pool, move |conn| {
        Ok(ApiKey::page(conn, &tenant, after, PAGE + 1)?)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let (rows, more) = cut(rows);
    let next = more.then(|| rows.last()).flatten().map(|k| {
        format!(
            "/console/api-keys?after={}",
            time_cursor(k.created_at, k.id)
        )
    });
    let first = after.map(|_| "/console/api-keys".to_string());
    let body = html! {
        @match &notice {
            Some(Notice::Problem(text)) => p class="errors" role="alert" id="key-error" { (text) },
            Some(Notice::Done(text)) => p class="notice" role="status" id="key-done" { (text) },
            Some(Notice::Secret(secret)) => {
                section class="panel" id="new-key" {
                    h2 { (w.secret_title) }
                    p { (w.secret_note) }
                    code class="secret-link" id="key-secret" { (secret) }
                }
            }
            None => {}
        }
        section class="panel" aria-labelledby="keys-title" {
            h2 id="keys-title" { (w.nav_api_keys) }
            p class="note" { (w.last_used_note) }
            @if rows.is_empty() {
                p class="note" { (w.no_keys) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="api-keys" {
                        thead { tr {
                            th scope="col" { (w.label) }
                            th scope="col" { (w.scope) }
                            th scope="col" { (w.prefix) }
                            th scope="col" { (w.created) }
                            th scope="col" { (w.key_state) }
                            th scope="col" { (t.actions) }
                        } }
                        tbody {
                            @for k in &rows {
                                tr data-key=(k.id) data-revoked=(k.revoked_at.is_some()) {
                                    td data-label=(w.label) { (k.label.as_deref().unwrap_or("")) }
                                    td data-label=(w.scope) { (scope_text(w, k.scope)) }
                                    td data-label=(w.prefix) { code { (k.display_prefix) } }
                                    td data-label=(w.created) { (when(k.created_at)) }
                                    td data-label=(w.key_state) {
                                        @match k.revoked_at {
                                            Some(at) => (fill(w.key_revoked_on, "when", &when(at))),
                                            None => (w.key_active),
                                        }
                                    }
                                    td data-label=(t.actions) {
                                        @if k.revoked_at.is_none() {
                                            form class="inline" method="post" action=(format!("/console/api-keys/{}/revoke", k.id)) {
                                                (session.csrf_field())
                                                button type="submit" class="danger" { (w.revoke_key) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "keys-pager", next, first))
        }
        section class="panel" aria-labelledby="create-key-title" {
            h2 id="create-key-title" { (w.create_key_title) }
            form class="stack" id="create-key" method="post" action="/console/api-keys" {
                (session.csrf_field())
                div {
                    label for="key-label" { (w.label) }
                    input type="text" id="key-label" name="label" maxlength="100" autocomplete="off";
                }
                div {
                    label for="key-scope" { (w.scope) }
                    select id="key-scope" name="scope" {
                        option value="pos" { (w.scope_pos) }
                        option value="admin" { (w.scope_admin) }
                    }
                }
                button type="submit" id="create-key-submit" { (w.create_key_button) }
            }
        }
    };
    Ok(session.page_with_status(status, Section::ApiKeys, w.nav_api_keys, body))
}

pub async fn list(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::ApiKeys)?;
    let w = session.texts().pages();
    let notice = query
        .revoked
        .is_some()
        .then_some(Notice::Done(w.key_revoked));
    render(
        &session,
        &state,
        StatusCode::OK,
        query.after.as_deref(),
        notice,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateForm {
    label: String,
    scope: String,
}

pub async fn create(
    session: StaffSession,
    state: web::Data<AppState>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::ApiKeys)?;
    let w = session.texts().pages();
    let Some(scope) = Scope::parse(&form.scope) else {
        return Err(PageError::NotFound(session.lang));
    };
    let label = Some(form.label.trim().to_string()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        let problem = Some(Notice::Problem(w.label_too_long));
        return render(
            &session,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            problem,
        )
        .await;
    }
    let tenant = session.tenant;
    let actor = session.actor();
    let now = state.clock.now();
    let secret = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let (key, secret) = ApiKey::issue(conn, &tenant, scope, label.as_deref())?;
            audit::record(
                conn,
                &actor,
                now,
                audit::API_KEY_CREATE,
                serde_json::json!({ "key": key.id, "scope": scope.as_str(), "label": key.label, "prefix": key.display_prefix }),
            )?;
            Ok::<_, ApiError>(secret.expose().to_string())
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    render(
        &session,
        &state,
        StatusCode::CREATED,
        None,
        Some(Notice::Secret(secret)),
    )
    .await
}

pub async fn revoke(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::ApiKeys)?;
    let w = session.texts().pages();
    let id = Uuid::parse_str(&path).map_err(|_| PageError::NotFound(session.lang))?;
    let tenant = session.tenant;
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let revoked = ApiKey::revoke(conn, &tenant, id)?;
            if let Ok(key) = &revoked {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::API_KEY_REVOKE,
                    serde_json::json!({ "key": key.id, "scope": key.scope.as_str(), "label": key.label, "prefix": key.display_prefix }),
                )?;
            }
            Ok::<_, ApiError>(revoked)
        })
    })
    .await;
    match done {
        Ok(Ok(_)) => {
            // Authenticated keys are cached; a revoked one must stop working at once.
            state.api_keys.clear();
            Ok(to("/console/api-keys?revoked=1"))
        }
        Ok(Err(LastAdminKey)) => {
            let problem = Some(Notice::Problem(w.last_admin_key));
            render(&session, &state, StatusCode::CONFLICT, None, problem).await
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) => Err(session.failed(e)),
    }
}
