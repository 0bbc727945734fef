use crate::app::AppState;
use crate::db;
use crate::problem::{ApiError, ProblemKind};
use actix_web::{get, web, HttpResponse};
use diesel::RunQueryDsl;

/// The process is up.
#[utoipa::path(operation_id = "getHealth", tag = "operations", responses((status = 200, description = "The process is up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers.
#[utoipa::path(operation_id = "getReadiness", tag = "operations", responses(
    crate::openapi::NotReady, (status = 200, description = "Ready to serve"),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    db::run(&state.pool, |conn| {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map_err(|e| ApiError::new(ProblemKind::Unavailable, format!("database: {e}")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}
