//! A program's automations: standing rules that message one member when something happens
//! to them. Create, read with counts and results, pause or resume, list.

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::campaigns::automations::{
    self, AutomationChange, AutomationPage, AutomationView, NewAutomation,
};
use crate::db;
use crate::domain::Paging;
use crate::problem::ApiError;
use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use uuid::Uuid;

/// Create an automation: a message per language (and optional bonus points and offer) put
/// on a member's pass when its `trigger` happens to them (a lifecycle stage entered, a
/// first or n-th purchase, a birthday), at most once per member per `period_days`, with a
/// random `holdout_percent` of firings held out. Fires for what happens from now on, within
/// 09:00-21:00 in the program's time zone. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "createAutomation", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id"), crate::openapi::IdempotencyKeyHeader),
    request_body = NewAutomation, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, (status = 201, body = AutomationView)))]
#[post("/programs/{id}/automations")]
pub async fn create(
    req: HttpRequest,
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let clock = state.clock.clone();
    super::pos::mutation(
        &req,
        &state,
        caller.0.tenant,
        body.into_inner(),
        StatusCode::CREATED,
        move |conn, tenant, a: NewAutomation| {
            automations::create(conn, tenant, id, &a, clock.now())
        },
    )
    .await
}

/// An automation: its rule, counts of its firings (`targeted` counts firings, `held_out`,
/// `pushed_apple`, `messaged_google`, `no_pass`, ...) and `results`: sent firings against
/// held-out ones, each over its attribution window from when it fired.
#[utoipa::path(operation_id = "getAutomation", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "automation id")),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = AutomationView)))]
#[get("/automations/{id}")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let view = db::run(&state.pool, move |conn| automations::get(conn, &tenant, id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Pause (`enabled: false`) or resume an automation, or rename it. Resuming fires only
/// for what happens from then on.
#[utoipa::path(operation_id = "changeAutomation", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "automation id")),
    request_body = AutomationChange, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody, (status = 200, body = AutomationView)))]
#[patch("/automations/{id}")]
pub async fn change(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<AutomationChange>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let (id, now, body) = (id.into_inner(), state.clock.now(), body.into_inner());
    let view = db::run(&state.pool, move |conn| {
        automations::change(conn, &tenant, id, &body, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A program's automations, newest first, with their counts (`results` only on the
/// automation's own answer).
#[utoipa::path(operation_id = "listAutomations", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id"), super::campaigns::ListQuery),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query, (status = 200, body = AutomationPage)))]
#[get("/programs/{id}/automations")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<super::campaigns::ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let Some(paging) = Paging::parse(
        query.limit.as_deref(),
        query.cursor.as_deref(),
        &mut problems,
    ) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let page = db::run(&state.pool, move |conn| {
        automations::list(conn, &tenant, id, &paging)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
