//! The merchant's figures at a glance (the console's first screen shows the same).

use crate::analytics::dashboard::{self, Dashboard};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::problem::ApiError;
use actix_web::{get, web, HttpResponse};

/// Members and installs per program, points issued, debited and outstanding, and the gift
/// cards' liability per currency, as of `as_of`: summed for this answer, or for a merchant
/// too big for that (about 50 ms or more), as the dashboard job summed them last (every 5
/// minutes).
#[utoipa::path(operation_id = "getDashboard", tag = "programs", security(("bearer" = ["admin"])), responses(crate::openapi::AdminKey, (status = 200, body = Dashboard)))]
#[get("/dashboard")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let now = state.clock.now();
    let figures = db::run(&state.pool, move |conn| {
        Ok(dashboard::load(conn, &tenant, now)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(figures))
}
