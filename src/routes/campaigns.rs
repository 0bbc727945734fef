//! A program's campaigns: create (scheduled, sent by the worker), read with counts and
//! results, cancel before sending, list.

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::campaigns::{self, CampaignPage, CampaignView, NewCampaign};
use crate::db;
use crate::domain::Paging;
use crate::problem::ApiError;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// Create a campaign: a message per language (and optional bonus points and offer) to the
/// members an audience selects, a random `holdout_percent` of them held out. Sent by the
/// worker at `send_at` (now when absent), moved out of 21:00-09:00 in the program's time
/// zone. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "createCampaign", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id"), crate::openapi::IdempotencyKeyHeader),
    request_body = NewCampaign, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, (status = 201, body = CampaignView)))]
#[post("/programs/{id}/campaigns")]
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
        move |conn, tenant, c: NewCampaign| campaigns::create(conn, tenant, id, &c, clock.now()),
    )
    .await
}

/// A campaign: its state, counts (`targeted`, `held_out`, `pushed_apple`,
/// `messaged_google`, `no_pass`, ...) and, once sent, its `results` over the attribution
/// window, recomputed from the purchases now.
#[utoipa::path(operation_id = "getCampaign", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "campaign id")),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = CampaignView)))]
#[get("/campaigns/{id}")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let (id, now) = (id.into_inner(), state.clock.now());
    let view = db::run(&state.pool, move |conn| {
        campaigns::get(conn, &tenant, id, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Cancel a campaign that has not started sending (again: the same answer).
#[utoipa::path(operation_id = "cancelCampaign", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "campaign id")),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::CampaignStarted, (status = 200, body = CampaignView)))]
#[post("/campaigns/{id}/cancel")]
pub async fn cancel(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let (id, now) = (id.into_inner(), state.clock.now());
    let view = db::run(&state.pool, move |conn| {
        campaigns::cancel(conn, &tenant, id, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 200 (50 when absent).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A program's campaigns, newest first, with their counts (`results` only on the
/// campaign's own answer).
#[utoipa::path(operation_id = "listCampaigns", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id"), ListQuery),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query, (status = 200, body = CampaignPage)))]
#[get("/programs/{id}/campaigns")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ListQuery>,
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
        campaigns::list(conn, &tenant, id, &paging)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
