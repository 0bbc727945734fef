use crate::app::AppState;
use actix_web::{get, web, HttpResponse};

/// Prometheus metrics in the text exposition format.
#[utoipa::path(operation_id = "getMetrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&state.pool))
}
