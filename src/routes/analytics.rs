//! A program's loyalty analytics over a range, per day, week or month: JSON, or CSV with
//! `Accept: text/csv`.

use crate::analytics::report::{self, AnalyticsQuery, Range, Report};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::models::Program;
use crate::problem::ApiError;
use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use uuid::Uuid;

/// Members, retention (CRR, churn), repeat rate, frequency, AOV, revenue per member, share
/// of revenue, points and gift-card movements and liabilities, installs, referrals per
/// period of `[from, to)` in the program's time zone, the whole range's figures, and a
/// signup-month cohort table. Formulas: docs/ANALYTICS.md. `Accept: text/csv` answers the
/// periods and the total as CSV rows (the cohorts are JSON only).
#[utoipa::path(operation_id = "getAnalytics", tag = "programs", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "program id"), AnalyticsQuery),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query,
        (status = 200, content((Report = "application/json"), (String = "text/csv")))))]
#[get("/programs/{id}/analytics")]
pub async fn get(
    req: HttpRequest,
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let (id, now) = (id.into_inner(), state.clock.now());
    let query = query.into_inner();
    let answer = db::run(&state.pool, move |conn| {
        let program = Program::find(conn, &tenant, id)?;
        let range = Range::parse(&query, program.tz(), now)?;
        Ok(report::report(conn, &tenant, &program, &range)?)
    })
    .await?;
    if wants_csv(&req) {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(report::csv(&answer)?));
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// Whether the caller asks for CSV rather than JSON: `text/csv` with a quality above 0 and
/// no lower than `application/json`'s (`text/csv;q=0.1, application/json` and `text/csv;q=0`
/// are answered JSON).
fn wants_csv(req: &HttpRequest) -> bool {
    let (mut csv, mut json) = (0.0f32, 0.0f32);
    for (media, q) in req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(crate::negotiation::weighted)
    {
        if media.eq_ignore_ascii_case("text/csv") {
            csv = csv.max(q);
        } else if media.eq_ignore_ascii_case("application/json") {
            json = json.max(q);
        }
    }
    csv > 0.0 && csv >= json
}
