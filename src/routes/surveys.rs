//! A program's NPS survey rule, and the comments its members left.

use crate::analytics::surveys::{self, Comment, Rule};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::models::Program;
use crate::problem::ApiError;
use actix_web::{get, put, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Set the program's survey rule: `delay_minutes` after a purchase (default 120), for
/// `share_percent` of purchases (default 100), at most once per member in `every_days`
/// (default 90), the member's pass gets a message linking to the survey page. Purchases
/// made before the rule was first set are not surveyed.
#[utoipa::path(operation_id = "setSurveyRule", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id")),
    request_body = Rule, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody, (status = 200, body = Rule)))]
#[put("/programs/{id}/survey")]
pub async fn set(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Rule>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let (id, now, rule) = (id.into_inner(), state.clock.now(), body.into_inner());
    let rule = db::run(&state.pool, move |conn| {
        surveys::set_rule(conn, &tenant, id, &rule, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rule))
}

#[derive(Serialize, ToSchema)]
pub struct Comments {
    pub comments: Vec<Comment>,
    /// Always null: the latest 100 are listed.
    pub next_cursor: Option<String>,
}

/// The latest 100 survey answers that carry a comment, newest first.
#[utoipa::path(operation_id = "listSurveyComments", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id")),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = Comments)))]
#[get("/programs/{id}/survey/comments")]
pub async fn comments(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let comments = db::run(&state.pool, move |conn| {
        Program::find(conn, &tenant, id)?;
        Ok(surveys::comments(conn, &tenant, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Comments {
        comments,
        next_cursor: None,
    }))
}
