use crate::app::AppState;
use crate::auth::{AdminCaller, PosCaller};
use crate::db;
use crate::loyalty::referral::{self, ReferralEntry, ReferralStats};
use crate::models::{Member, Program};
use crate::problem::ApiError;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ReferralList {
    pub referrals: Vec<ReferralEntry>,
}

/// Whom a member brought: who joined, when, status and reward.
#[utoipa::path(operation_id = "listMemberReferrals", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path)), responses(crate::openapi::PosKey, crate::openapi::PathObject,
    (status = 200, body = ReferralList)))]
#[get("/members/{id}/referrals")]
pub async fn of_member(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let list = db::run(&state.pool, move |conn| {
        let member = Member::find(conn, &tenant, id)?;
        Ok(ReferralList {
            referrals: referral::of_referrer(conn, &tenant, &member)?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// How the program's referral links perform.
#[utoipa::path(operation_id = "getReferralStats", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 200, body = ReferralStats)))]
#[get("/programs/{id}/referral-stats")]
pub async fn stats(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let stats = db::run(&state.pool, move |conn| {
        let program = Program::find(conn, &tenant, id)?;
        Ok(referral::stats(conn, &tenant, &program)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(stats))
}
