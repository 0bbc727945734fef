//! Personal data of a member: the export of everything held, and erasure
//! (docs/PRIVACY.md).

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::privacy::erasure;
use crate::problem::ApiError;
use actix_web::{delete, get, web, HttpResponse};
use uuid::Uuid;

/// Everything passfold holds about a member, as one JSON document (format
/// `passfold.member-export.v1`): profile, consents, ledger (activities, lots), purchases,
/// passes (without their secrets), Apple devices, Google objects and callbacks, referrals,
/// segment and stage changes, campaigns received, survey answers, webhook messages and
/// audit lines about them. docs/PRIVACY.md describes each section.
#[utoipa::path(operation_id = "exportMember", tag = "members", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject,
        (status = 200, description = "The member's data export", body = Object, content_type = "application/json")))]
#[get("/members/{id}/export")]
pub async fn export(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let at = state.clock.now();
    let doc = db::run(&state.pool, move |conn| {
        crate::privacy::export::export(conn, &tenant, id, at)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"member-{id}.json\""),
        ))
        .json(doc))
}

/// Erase a member's personal data: name, contacts, birth date and external id wiped, a new
/// card number, the pass voided (Apple) and expired (Google), `member.erased` sent to
/// webhooks; points, purchases and their dates kept. Erasing an erased member answers the
/// same and changes nothing.
#[utoipa::path(operation_id = "eraseMember", tag = "members", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject,
        (status = 204, description = "Erased (now or before)")))]
#[delete("/members/{id}")]
pub async fn erase(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let (channels, at) = (state.channels, state.clock.now());
    let erased = db::run(&state.pool, move |conn| {
        erasure::erase(conn, channels, &tenant, id, at)
    })
    .await?;
    erased.committed(&state.pass_cache);
    Ok(HttpResponse::NoContent().finish())
}
