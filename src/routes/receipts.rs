//! Receipts of customers who are not members, reported by tills for share-of-revenue
//! figures.

use crate::analytics::receipts::{self, NewReceipt, Receipt};
use crate::app::AppState;
use crate::auth::PosCaller;
use crate::domain::Scope;
use crate::problem::ApiError;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use uuid::Uuid;

/// Record a receipt of a customer who is not a member: `amount` (minor units) in the
/// program's `currency`, paid at `purchased_at` (now when absent; more than 48 hours back
/// only with an admin key). Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "createReceipt", tag = "programs", security(("bearer" = ["pos"])),
    params(("id" = Uuid, Path, description = "program id"), crate::openapi::IdempotencyKeyHeader),
    request_body = NewReceipt,
    responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, crate::openapi::PosBackdate, (status = 201, body = Receipt)))]
#[post("/programs/{id}/receipts")]
pub async fn create(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let admin = caller.0.scope == Scope::Admin;
    let clock = state.clock.clone();
    super::pos::mutation(
        &req,
        &state,
        caller.0.tenant,
        body.into_inner(),
        StatusCode::CREATED,
        move |conn, tenant, r: NewReceipt| {
            receipts::record(conn, tenant, id, &r, clock.now(), admin)
        },
    )
    .await
}
