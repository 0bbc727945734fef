//! A program's segments: sizes per RFM cell, named group and lifecycle stage, and a full
//! recompute on demand. Members of a segment are listed by `GET /programs/{id}/members`
//! with `group`, `cell` or `stage`.

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::models::Program;
use crate::problem::ApiError;
use crate::segments::{self, Recomputed, Scope, Sizes};
use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Sizes of a program's RFM cells, named groups (English and Russian names) and lifecycle
/// stages, as of the last recompute, with the RFM cut points in force.
#[utoipa::path(operation_id = "getSegments", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id")),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = Sizes)))]
#[get("/programs/{id}/segments")]
pub async fn sizes(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let sizes = db::run(&state.pool, move |conn| {
        Program::find(conn, &tenant, id)?;
        Ok(segments::sizes(conn, &tenant, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(sizes))
}

#[derive(Serialize, ToSchema)]
pub struct RecomputeAnswer {
    #[serde(flatten)]
    pub recomputed: Recomputed,
    pub segments: Sizes,
}

/// Recompute the program's segments now, in full: new RFM cut points from its buyers (or
/// the merchant's thresholds), every member's scores and stage as of the clock's now.
#[utoipa::path(operation_id = "recomputeSegments", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id")),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = RecomputeAnswer)))]
#[post("/programs/{id}/segments/recompute")]
pub async fn recompute(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let now = state.clock.now();
    let answer = db::run(&state.pool, move |conn| {
        Program::find(conn, &tenant, id)?;
        let recomputed = segments::recompute(conn, Scope::Program(tenant.merchant_id(), id), now)?;
        Ok(RecomputeAnswer {
            recomputed,
            segments: segments::sizes(conn, &tenant, id)?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}
