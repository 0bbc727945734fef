//! Webhook endpoints (owners only): the list with each endpoint's state, so an endpoint
//! passfold disabled after three days of failures is seen (the home page points here too);
//! a new endpoint (its secret shown on the answer page, this once); an endpoint's delivery
//! log a page at a time, sending one message again, enabling or disabling it, rotating its
//! secret and deleting it. The same `webhooks::endpoints` and `webhooks::deliveries`
//! functions as `/api/v1/webhooks`; each change has an audit line in its transaction.

use super::error::PageError;
use super::format::when;
use super::i18n::{fill, PageTexts};
use super::paging::{pager, q, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::db;
use crate::domain::{PageLimit, Paging};
use crate::problem::{ApiError, FieldProblem};
use crate::staff::audit;
use crate::webhooks::deliveries::{self as log, Delivery};
use crate::webhooks::endpoints::{self, Checked, Endpoint, TooMany};
use crate::webhooks::EVENT_TYPES;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use diesel::Connection;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

enum Notice {
    Problems(Vec<String>),
    Done(&'static str),
    /// A new secret: shown this once.
    Secret(String),
}

fn notice_markup(w: &PageTexts, notice: &Option<Notice>) -> Markup {
    html! {
        @match notice {
            Some(Notice::Problems(lines)) => div class="errors" role="alert" id="webhook-errors" {
                p { (w.form_problems) }
                ul { @for line in lines { li { (line) } } }
            },
            Some(Notice::Done(text)) => p class="notice" role="status" id="webhook-done" { (text) },
            Some(Notice::Secret(secret)) => section class="panel" id="new-secret" {
                h2 { (w.webhook_secret_title) }
                p { (w.webhook_secret_note) }
                code class="secret-link" id="webhook-secret" { (secret) }
            },
            None => {}
        }
    }
}

fn state_text(w: &PageTexts, e: &Endpoint) -> String {
    match (e.enabled, e.disabled_reason.as_ref(), e.failing_since) {
        (false, Some(_), Some(since)) => fill(w.webhook_gave_up, "when", &when(since)),
        (false, _, _) => w.webhook_off.to_string(),
        (true, _, Some(since)) => fill(w.webhook_failing, "when", &when(since)),
        (true, _, None) => w.webhook_on.to_string(),
    }
}

/// Problems of a form as lines (the API names fields by JSON pointer; the page by label).
fn lines(w: &PageTexts, problems: Vec<FieldProblem>) -> Vec<String> {
    problems
        .into_iter()
        .map(|p| {
            let field = match p.pointer.split('/').nth(1).unwrap_or("") {
                "url" => w.webhook_url,
                "events" => w.webhook_events,
                "description" => w.webhook_description,
                _ => "",
            };
            format!("{field}: {}", p.detail)
        })
        .collect()
}

async fn render_list(
    session: &StaffSession,
    state: &AppState,
    status: StatusCode,
    notice: Option<Notice>,
) -> Result<HttpResponse, PageError> {
    let t = session.texts();
    let w = t.pages();
    let tenant = session.tenant;
    let rows = db::run(&state.pool, move |conn| Ok(endpoints::list(conn, &tenant)?))
        .await
        .map_err(|e| session.failed(e))?;
    let body = html! {
        (notice_markup(w, &notice))
        section class="panel" aria-labelledby="webhooks-title" {
            h2 id="webhooks-title" { (w.nav_webhooks) }
            p class="note" { (w.webhooks_note) }
            @if rows.is_empty() {
                p class="note" { (w.no_webhooks) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="webhooks" {
                        thead { tr {
                            th scope="col" { (w.webhook_url) }
                            th scope="col" { (w.webhook_events) }
                            th scope="col" { (w.webhook_state) }
                            th scope="col" { (w.created) }
                        } }
                        tbody {
                            @for e in &rows {
                                tr data-webhook=(e.id) data-enabled=(e.enabled) data-gave-up=(e.gave_up()) {
                                    td data-label=(w.webhook_url) {
                                        a href=(format!("/console/webhooks/{}", e.id)) { code { (e.url) } }
                                        @if let Some(d) = &e.description { br; span class="note" { (d) } }
                                    }
                                    td data-label=(w.webhook_events) { (e.events.len()) }
                                    td data-label=(w.webhook_state) { (state_text(w, e)) }
                                    td data-label=(w.created) { (when(e.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section class="panel" aria-labelledby="add-webhook-title" {
            h2 id="add-webhook-title" { (w.add_webhook) }
            form class="stack" id="add-webhook" method="post" action="/console/webhooks" {
                (session.csrf_field())
                div {
                    label for="webhook-url" { (w.webhook_url) }
                    input type="url" id="webhook-url" name="url" required maxlength="2000" inputmode="url" autocomplete="off" placeholder="https://";
                }
                div {
                    label for="webhook-description" { (w.webhook_description) }
                    input type="text" id="webhook-description" name="description" maxlength="500" autocomplete="off";
                }
                fieldset id="webhook-event-types" {
                    legend { (w.webhook_events) }
                    @for (i, event) in EVENT_TYPES.iter().enumerate() {
                        div class="check" {
                            input type="checkbox" id=(format!("event-{i}")) name="events" value=(event);
                            label for=(format!("event-{i}")) { code { (event) } }
                        }
                    }
                }
                button type="submit" id="add-webhook-submit" { (w.add_webhook) }
            }
        }
    };
    Ok(session.page_with_status(status, Section::Webhooks, w.nav_webhooks, body))
}

pub async fn list(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let w = session.texts().pages();
    let notice = query
        .deleted
        .is_some()
        .then_some(Notice::Done(w.webhook_deleted));
    render_list(&session, &state, StatusCode::OK, notice).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DoneQuery {
    deleted: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// The add form: `events` repeats, which a struct-shaped form cannot hold.
struct AddForm {
    url: String,
    description: String,
    events: Vec<String>,
}

fn parse_add_form(body: &[u8]) -> AddForm {
    let mut form = AddForm {
        url: String::new(),
        description: String::new(),
        events: Vec::new(),
    };
    for (name, value) in url::form_urlencoded::parse(body) {
        match &*name {
            "url" => form.url = value.trim().to_string(),
            "description" => form.description = value.trim().to_string(),
            "events" => form.events.push(value.into_owned()),
            _ => {}
        }
    }
    form
}

pub async fn create(
    session: StaffSession,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let w = session.texts().pages();
    let form = parse_add_form(&body);
    let mut problems = Vec::new();
    let events = endpoints::check_events(&form.events, &mut problems);
    let description = Some(form.description).filter(|d| !d.is_empty());
    let description = endpoints::check_description(description.as_deref(), &mut problems);
    let url = endpoints::check_url(&form.url, state.settings.webhooks_allow_private)
        .await
        .map_err(|p| problems.push(p))
        .ok();
    let Some(url) = url.filter(|_| problems.is_empty()) else {
        let notice = Some(Notice::Problems(lines(w, problems)));
        return render_list(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, notice).await;
    };
    let (tenant, actor, now) = (session.tenant, session.actor(), state.clock.now());
    let created = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let created = endpoints::create(
                conn,
                &tenant,
                &url,
                &events,
                description.as_deref(),
                true,
                now,
            )?;
            if let Ok(e) = &created {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::WEBHOOK_CREATE,
                    serde_json::json!({ "webhook": e.id, "url": e.url, "events": e.events }),
                )?;
            }
            Ok::<_, ApiError>(created)
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    match created {
        Ok(endpoint) => {
            let secret = endpoint.secret.clone();
            render_one(
                &session,
                &state,
                StatusCode::CREATED,
                endpoint,
                None,
                Some(Notice::Secret(secret)),
            )
            .await
        }
        Err(TooMany) => {
            let line = fill(
                w.too_many_webhooks,
                "n",
                &endpoints::MAX_ENDPOINTS.to_string(),
            );
            let notice = Some(Notice::Problems(vec![line]));
            render_list(&session, &state, StatusCode::CONFLICT, notice).await
        }
    }
}

async fn render_one(
    session: &StaffSession,
    state: &AppState,
    status: StatusCode,
    endpoint: Endpoint,
    after: Option<&str>,
    notice: Option<Notice>,
) -> Result<HttpResponse, PageError> {
    let t = session.texts();
    let w = t.pages();
    let tenant = session.tenant;
    let e = endpoint;
    // The API's cursors, a console page at a time; one this service did not make is 404.
    let first_page = Paging::<i64>::first(PageLimit::fixed(PAGE));
    let paging = match after {
        Some(cursor) => first_page
            .continued(cursor)
            .ok_or(PageError::NotFound(session.lang))?,
        None => first_page,
    };
    let (page, next) = {
        let e = e.clone();
        db::run(&state.pool, move |conn| {
            Ok(log::page(conn, &tenant, &e, &paging)?)
        })
        .await
        .map_err(|err| session.failed(err))?
    };
    let base = format!("/console/webhooks/{}", e.id);
    let next = next.map(|cursor| format!("{base}?after={}", q(&cursor)));
    let first = after.map(|_| base.clone());
    let body = html! {
        (notice_markup(w, &notice))
        section class="panel" id="webhook" data-webhook=(e.id) aria-labelledby="webhook-title" {
            h2 id="webhook-title" { code { (e.url) } }
            dl class="figure-list" {
                @if let Some(d) = &e.description {
                    div { dt { (w.webhook_description) } dd { (d) } }
                }
                div { dt { (w.webhook_state) } dd id="webhook-state" { (state_text(w, &e)) } }
                @if let (false, Some(reason)) = (e.enabled, &e.disabled_reason) {
                    div { dt { (w.webhook_reason) } dd { (reason) } }
                }
                div { dt { (w.webhook_events) } dd { @for (i, ev) in e.events.iter().enumerate() { @if i > 0 { ", " } code { (ev) } } } }
                @if let Some(until) = e.previous_secret_until {
                    div { dt { (w.previous_secret) } dd { (fill(w.previous_secret_until, "when", &when(until))) } }
                }
            }
            div class="actions" {
                form class="inline" method="post" action=(format!("{base}/state")) {
                    (session.csrf_field())
                    @if e.enabled {
                        input type="hidden" name="enabled" value="false";
                        button type="submit" id="webhook-disable" { (w.webhook_disable) }
                    } @else {
                        input type="hidden" name="enabled" value="true";
                        button type="submit" id="webhook-enable" { (w.webhook_enable) }
                    }
                }
                form class="inline" method="post" action=(format!("{base}/rotate")) {
                    (session.csrf_field())
                    button type="submit" id="webhook-rotate" { (w.webhook_rotate) }
                }
                form class="inline" method="post" action=(format!("{base}/delete")) {
                    (session.csrf_field())
                    button type="submit" class="danger" id="webhook-delete" { (w.webhook_delete) }
                }
            }
        }
        section class="panel" aria-labelledby="deliveries-title" {
            h2 id="deliveries-title" { (w.deliveries) }
            @if page.is_empty() {
                p class="note" { (w.no_deliveries) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="deliveries" {
                        thead { tr {
                            th scope="col" { (t.when) }
                            th scope="col" { (w.delivery_message) }
                            th scope="col" { (w.delivery_status) }
                            th scope="col" { (w.delivery_answer) }
                            th scope="col" { (t.actions) }
                        } }
                        tbody {
                            @for d in &page { (delivery_row(session, w, &base, e.enabled, d)) }
                        }
                    }
                }
            }
            (pager(t, "deliveries-pager", next, first))
        }
    };
    let title = w.nav_webhooks;
    Ok(session.page_with_status(status, Section::Webhooks, title, body))
}

fn delivery_row(
    session: &StaffSession,
    w: &PageTexts,
    base: &str,
    enabled: bool,
    d: &Delivery,
) -> Markup {
    let status = match d.status.as_str() {
        "delivered" => w.delivery_delivered,
        "gave_up" => w.delivery_gave_up,
        _ => w.delivery_failed,
    };
    html! {
        tr data-message=(d.message_id) data-status=(d.status) {
            td data-label=(session.texts().when) { (when(d.at)) }
            td data-label=(w.delivery_message) { code { (d.message_id) } " #" (d.attempt) }
            td data-label=(w.delivery_status) { (status) }
            td data-label=(w.delivery_answer) {
                @if let Some(code) = d.response_code { (code) " " }
                @if let Some(error) = &d.error { span class="note" { (error) } }
                " (" (d.duration_ms) " ms)"
            }
            td data-label=(session.texts().actions) {
                @if enabled {
                    form class="inline" method="post" action=(format!("{base}/messages/{}/resend", d.message_id)) {
                        (session.csrf_field())
                        button type="submit" { (w.delivery_resend) }
                    }
                }
            }
        }
    }
}

/// The endpoint of this merchant, or the 404 page.
async fn endpoint_of(
    session: &StaffSession,
    state: &AppState,
    id: &str,
) -> Result<Endpoint, PageError> {
    let id = Uuid::parse_str(id).map_err(|_| PageError::NotFound(session.lang))?;
    let tenant = session.tenant;
    db::run(&state.pool, move |conn| {
        Ok(endpoints::find(conn, &tenant, id)?)
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::NOT_FOUND => PageError::NotFound(session.lang),
        _ => session.failed(e),
    })
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let w = session.texts().pages();
    let endpoint = endpoint_of(&session, &state, &path).await?;
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let notice = match query.done.as_deref() {
        Some("state") => Some(Notice::Done(w.webhook_saved)),
        Some("resend") => Some(Notice::Done(w.delivery_queued)),
        _ => None,
    };
    render_one(&session, &state, StatusCode::OK, endpoint, after, notice).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StateForm {
    enabled: String,
}

pub async fn change_state(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<StateForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(PageError::NotFound(session.lang)),
    };
    let endpoint = endpoint_of(&session, &state, &path).await?;
    let (tenant, actor, now, id) = (
        session.tenant,
        session.actor(),
        state.clock.now(),
        endpoint.id,
    );
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let changes = Checked {
                enabled: Some(enabled),
                ..Checked::default()
            };
            endpoints::update(conn, &tenant, id, changes, now)?;
            audit::record(
                conn,
                &actor,
                now,
                audit::WEBHOOK_CHANGE,
                serde_json::json!({ "webhook": id, "enabled": enabled }),
            )?;
            Ok::<_, ApiError>(())
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    Ok(to(&format!("/console/webhooks/{id}?done=state")))
}

pub async fn rotate(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let endpoint = endpoint_of(&session, &state, &path).await?;
    let (tenant, actor, now, id) = (
        session.tenant,
        session.actor(),
        state.clock.now(),
        endpoint.id,
    );
    let rotated = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let rotated = endpoints::rotate(conn, &tenant, id, now)?;
            audit::record(
                conn,
                &actor,
                now,
                audit::WEBHOOK_ROTATE,
                serde_json::json!({ "webhook": id }),
            )?;
            Ok::<_, ApiError>(rotated)
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    let secret = rotated.secret.clone();
    render_one(
        &session,
        &state,
        StatusCode::OK,
        rotated,
        None,
        Some(Notice::Secret(secret)),
    )
    .await
}

pub async fn remove(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let endpoint = endpoint_of(&session, &state, &path).await?;
    let (tenant, actor, now) = (session.tenant, session.actor(), state.clock.now());
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            endpoints::delete(conn, &tenant, endpoint.id)?;
            audit::record(
                conn,
                &actor,
                now,
                audit::WEBHOOK_DELETE,
                serde_json::json!({ "webhook": endpoint.id, "url": endpoint.url }),
            )?;
            Ok::<_, ApiError>(())
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    Ok(to("/console/webhooks?deleted=1"))
}

pub async fn resend(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Webhooks)?;
    let (id, message) = path.into_inner();
    let endpoint = endpoint_of(&session, &state, &id).await?;
    if !endpoint.enabled || !log::is_message_id(&message) {
        return Err(PageError::NotFound(session.lang));
    }
    let (tenant, actor, now, id) = (
        session.tenant,
        session.actor(),
        state.clock.now(),
        endpoint.id,
    );
    let queued = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let queued = log::resend(conn, &tenant, &endpoint, &message)?;
            if queued {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::WEBHOOK_RESEND,
                    serde_json::json!({ "webhook": id, "message": message }),
                )?;
            }
            Ok::<_, ApiError>(queued)
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    if !queued {
        return Err(PageError::NotFound(session.lang));
    }
    Ok(to(&format!("/console/webhooks/{id}?done=resend")))
}
