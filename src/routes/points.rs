//! A member's points at the till beyond earning: paying with points (and a quote of what a
//! receipt allows), returns of purchases, and the member's ledger.

use crate::app::AppState;
use crate::auth::PosCaller;
use crate::db;
use crate::domain::{Paging, PointActivityType};
use crate::loyalty::payment::{self, PointsPaid, PointsPayment, Quote, QuoteRequest};
use crate::loyalty::refund::{RefundRequest, Refunded};
use crate::models::Member;
use crate::problem::ApiError;
use crate::schema::point_activities;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Pay part of a receipt with points: at most `max_points_payment_percent` of it at
/// `point_value` a point, never beyond the balance. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "payWithPoints", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = PointsPayment, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, crate::openapi::PointsRefusals, crate::openapi::MemberErased, (status = 200, body = PointsPaid)))]
#[post("/members/{id}/points/redeem")]
pub async fn redeem(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (channels, clock) = (state.channels, state.clock.clone());
    super::pos::mutation(
        &req,
        &state,
        caller.0.tenant,
        body.into_inner(),
        StatusCode::OK,
        move |conn, tenant, p: PointsPayment| {
            payment::redeem(conn, (channels, clock.now()), tenant, id, &p)
        },
    )
    .await
}

/// How many points a receipt allows paying with, spending nothing.
#[utoipa::path(operation_id = "quotePointsPayment", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path)),
    request_body = QuoteRequest, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::JsonBody, (status = 200, body = Quote)))]
#[post("/members/{id}/points/quote")]
pub async fn quote(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<QuoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let body = body.into_inner();
    let quote = db::run(&state.pool, move |conn| {
        payment::quote(conn, &tenant, id, &body)
    })
    .await?;
    Ok(HttpResponse::Ok().json(quote))
}

/// Return a purchase, in full or in part (`amount`): the points it earned are taken back
/// and points paid on it given back, in proportion; points already spent are owed from
/// future earnings. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "refundPurchase", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path), ("purchase_id" = Uuid, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = RefundRequest, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, crate::openapi::MemberErased, (status = 200, body = Refunded)))]
#[post("/members/{id}/purchases/{purchase_id}/refund")]
pub async fn refund_purchase(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (id, purchase_id) = path.into_inner();
    let (channels, clock) = (state.channels, state.clock.clone());
    // No body returns what is left of the purchase; a body must be JSON.
    let body: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?
    };
    super::pos::mutation(
        &req,
        &state,
        caller.0.tenant,
        body,
        StatusCode::OK,
        move |conn, tenant, r: RefundRequest| {
            crate::loyalty::refund::refund(
                conn,
                (channels, clock.now()),
                tenant,
                id,
                purchase_id,
                &r,
            )
        },
    )
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Page size, 1 to 200 (50 when absent).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One entry of a member's points ledger.
#[derive(Serialize, ToSchema, Queryable)]
pub struct ActivityView {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: PointActivityType,
    /// Points moved: positive gained, negative spent, expired or taken back.
    pub points: i64,
    pub points_after: i64,
    pub reason: Option<String>,
    /// The purchase (for `earn` and `refund`), its amount in minor units.
    pub purchase_id: Option<Uuid>,
    pub purchase_amount: Option<i64>,
    pub tier_after: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    seq: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    /// Newest first.
    pub activities: Vec<ActivityView>,
    pub next_cursor: Option<String>,
}

/// A member's points ledger, newest first, a page at a time.
#[utoipa::path(operation_id = "memberActivities", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path), ActivityQuery),
    responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Query, (status = 200, body = ActivityPage)))]
#[get("/members/{id}/activities")]
pub async fn activities(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let Some(paging) = Paging::<i64>::parse(
        query.limit.as_deref(),
        query.cursor.as_deref(),
        &mut problems,
    ) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let page = db::run(&state.pool, move |conn| {
        let member = Member::find(conn, &tenant, id)?;
        let mut q = point_activities::table
            .filter(point_activities::merchant_id.eq(tenant.merchant_id()))
            .filter(point_activities::member_id.eq(member.id))
            .into_boxed();
        if let Some((seq, _)) = paging.after {
            q = q.filter(point_activities::seq.lt(seq));
        }
        let rows: Vec<ActivityView> = q
            .order(point_activities::seq.desc())
            .select((
                point_activities::id,
                point_activities::type_,
                point_activities::delta,
                point_activities::points_after,
                point_activities::reason,
                point_activities::purchase_id,
                point_activities::purchase_amount,
                point_activities::tier_after,
                point_activities::created_at,
                point_activities::seq,
            ))
            .limit(paging.fetch())
            .load(conn)?;
        let (rows, next_cursor) = paging.finish(rows, |a| (a.seq, a.id));
        Ok::<_, ApiError>(ActivityPage {
            activities: rows,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
