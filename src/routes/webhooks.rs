//! Webhook endpoints (admin): register, list, change, delete, rotate the secret, read the
//! delivery log, send messages again.

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::Paging;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::webhooks::deliveries::{self as log, Delivery};
use crate::webhooks::endpoints::{
    self, Checked, EndpointChanges, EndpointView, NewEndpoint, TooMany,
};
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret (`whsec_` + base64 of 32 bytes). Shown only here and on rotation.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointList {
    pub webhooks: Vec<EndpointView>,
    /// Always null: every endpoint fits on one page (at most 50 per merchant).
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// Messages queued for the endpoint.
    pub queued: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    /// Messages queued for the endpoint (at most 100,000 a call).
    pub queued: usize,
    /// Set when the limit cut the replay short: replay again `since` this (its last message
    /// may then arrive twice, as at-least-once allows).
    pub next_since: Option<DateTime<Utc>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 200, default 50.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// RFC 3339 instant: every message since then is sent again.
    pub since: Option<String>,
}

/// Register a webhook endpoint. The answer carries its secret, shown only here.
#[utoipa::path(operation_id = "createWebhook", tag = "webhooks", security(("bearer" = ["admin"])), request_body = NewEndpoint,
    responses(crate::openapi::AdminKey, crate::openapi::JsonBody, crate::openapi::EndpointLimit, (status = 201, body = CreatedEndpoint)))]
#[post("/webhooks")]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let events = endpoints::check_events(&body.events, &mut problems);
    let description = endpoints::check_description(body.description.as_deref(), &mut problems);
    let url = endpoints::check_url(&body.url, state.settings.webhooks_allow_private)
        .await
        .map_err(|p| problems.push(p))
        .ok();
    let Some(url) = url.filter(|_| problems.is_empty()) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let now = state.clock.now();
    let enabled = body.enabled.unwrap_or(true);
    let created = db::run(&state.pool, move |conn| {
        Ok(endpoints::create(
            conn,
            &tenant,
            &url,
            &events,
            description.as_deref(),
            enabled,
            now,
        )?)
    })
    .await?;
    let endpoint = created.map_err(|TooMany| {
        ApiError::new(
            ProblemKind::Conflict,
            format!(
                "a merchant has at most {} webhook endpoints",
                endpoints::MAX_ENDPOINTS
            ),
        )
    })?;
    let secret = endpoint.secret.clone();
    Ok(HttpResponse::Created().json(CreatedEndpoint {
        endpoint: endpoint.into(),
        secret,
    }))
}

/// List the merchant's webhook endpoints (never their secrets).
#[utoipa::path(operation_id = "listWebhooks", tag = "webhooks", security(("bearer" = ["admin"])),
    responses(crate::openapi::AdminKey, (status = 200, body = EndpointList)))]
#[get("/webhooks")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let all = db::run(&state.pool, move |conn| Ok(endpoints::list(conn, &tenant)?)).await?;
    Ok(HttpResponse::Ok().json(EndpointList {
        webhooks: all.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

/// One webhook endpoint.
#[utoipa::path(operation_id = "getWebhook", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = EndpointView)))]
#[get("/webhooks/{id}")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.0.tenant, id.into_inner());
    let endpoint = db::run(&state.pool, move |conn| {
        Ok(endpoints::find(conn, &tenant, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(endpoint)))
}

/// Change a webhook endpoint's URL, events, description or state.
#[utoipa::path(operation_id = "updateWebhook", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), request_body = EndpointChanges,
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody, (status = 200, body = EndpointView)))]
#[patch("/webhooks/{id}")]
pub async fn update(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<EndpointChanges>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let mut checked = Checked {
        enabled: body.enabled,
        ..Checked::default()
    };
    if let Some(events) = &body.events {
        checked.events = Some(endpoints::check_events(events, &mut problems));
    }
    if body.description.is_some() {
        checked.description = Some(endpoints::check_description(
            body.description.as_deref(),
            &mut problems,
        ));
    }
    if let Some(url) = &body.url {
        match endpoints::check_url(url, state.settings.webhooks_allow_private).await {
            Ok(url) => checked.url = Some(url),
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    let (tenant, id, now) = (caller.0.tenant, id.into_inner(), state.clock.now());
    let endpoint = db::run(&state.pool, move |conn| {
        Ok(endpoints::update(conn, &tenant, id, checked, now)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(endpoint)))
}

/// Delete a webhook endpoint, with what was queued for it and its delivery log.
#[utoipa::path(operation_id = "deleteWebhook", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 204, description = "Deleted")))]
#[delete("/webhooks/{id}")]
pub async fn remove(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.0.tenant, id.into_inner());
    let deleted = db::run(&state.pool, move |conn| {
        Ok(endpoints::delete(conn, &tenant, id)?)
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found("no such webhook endpoint"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Issue a new secret; the previous one keeps signing too for 24 hours.
#[utoipa::path(operation_id = "rotateWebhookSecret", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = CreatedEndpoint)))]
#[post("/webhooks/{id}/rotate")]
pub async fn rotate(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, now) = (caller.0.tenant, id.into_inner(), state.clock.now());
    let endpoint = db::run(&state.pool, move |conn| {
        Ok(endpoints::rotate(conn, &tenant, id, now)?)
    })
    .await?;
    let secret = endpoint.secret.clone();
    Ok(HttpResponse::Ok().json(CreatedEndpoint {
        endpoint: endpoint.into(),
        secret,
    }))
}

/// The endpoint's delivery log: every attempt, newest first.
#[utoipa::path(operation_id = "listWebhookDeliveries", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path), PageQuery),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query, (status = 200, body = DeliveryPage)))]
#[get("/webhooks/{id}/deliveries")]
pub async fn deliveries(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let Some(paging) = Paging::<i64>::parse(
        query.limit.as_deref(),
        query.cursor.as_deref(),
        &mut problems,
    ) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let (tenant, id) = (caller.0.tenant, id.into_inner());
    let (deliveries, next_cursor) = db::run(&state.pool, move |conn| {
        let endpoint = endpoints::find(conn, &tenant, id)?;
        Ok(log::page(conn, &tenant, &endpoint, &paging)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeliveryPage {
        deliveries,
        next_cursor,
    }))
}

/// Send one message to the endpoint again (after what is queued for it).
#[utoipa::path(operation_id = "resendWebhookMessage", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path), ("msg_id" = String, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::EndpointDisabled, (status = 202, body = Queued)))]
#[post("/webhooks/{id}/messages/{msg_id}/resend")]
pub async fn resend(
    caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, message) = path.into_inner();
    if !log::is_message_id(&message) {
        return Err(ApiError::not_found("no such message"));
    }
    let tenant = caller.0.tenant;
    let queued = db::run(&state.pool, move |conn| {
        let endpoint = endpoints::find(conn, &tenant, id)?;
        require_enabled(&endpoint)?;
        Ok(log::resend(conn, &tenant, &endpoint, &message)?)
    })
    .await?;
    if !queued {
        return Err(ApiError::not_found("no such message"));
    }
    Ok(HttpResponse::Accepted().json(Queued { queued: 1 }))
}

/// Send every message since an instant to the endpoint again, of the types it subscribes
/// to, oldest first.
#[utoipa::path(operation_id = "replayWebhookMessages", tag = "webhooks", security(("bearer" = ["admin"])), params(("id" = Uuid, Path), ReplayQuery),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query, crate::openapi::EndpointDisabled, (status = 202, body = Replayed)))]
#[post("/webhooks/{id}/replay")]
pub async fn replay(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ReplayQuery>,
) -> Result<HttpResponse, ApiError> {
    let since = query
        .since
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            ApiError::invalid_fields(vec![FieldProblem::new(
                "/since",
                "an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z",
            )])
        })?;
    let (tenant, id) = (caller.0.tenant, id.into_inner());
    let (queued, next_since) = db::run(&state.pool, move |conn| {
        let endpoint = endpoints::find(conn, &tenant, id)?;
        require_enabled(&endpoint)?;
        Ok(log::replay(conn, &tenant, &endpoint, since)?)
    })
    .await?;
    Ok(HttpResponse::Accepted().json(Replayed { queued, next_since }))
}

fn require_enabled(endpoint: &endpoints::Endpoint) -> Result<(), ApiError> {
    if endpoint.enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            ProblemKind::Conflict,
            "the endpoint is disabled: enable it first",
        ))
    }
}
