use crate::app::AppState;
use crate::auth::PosCaller;
use crate::db;
use crate::domain::CardNumber;
use crate::domain::Scope;
use crate::loyalty::enrollment::{self, Applicant};
use crate::loyalty::points::{Movement, PointsAdjustment, PointsChange, Purchase};
use crate::loyalty::program;
use crate::models::member::Member;
use crate::models::Pass;
use crate::problem::{ApiError, FieldProblem};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub referral_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub program_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    /// The pass's serial number.
    pub serial: String,
    /// What the pass's barcode carries; a till finds the member by it.
    pub card_number: String,
    pub points: i64,
    pub lifetime_points: i64,
    pub tier: Option<String>,
    pub referral_code: String,
    pub referral_url: String,
    pub apple_pass_url: String,
    pub google_save_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

pub(crate) fn view(
    m: Member,
    pass: &Pass,
    public_url: &str,
    google_save_url: Option<String>,
) -> MemberView {
    MemberView {
        id: m.id,
        program_id: m.program_id,
        name: m.name,
        email: m.email,
        phone: m.phone,
        external_id: m.external_id,
        serial: pass.serial_number.clone(),
        card_number: m.card_number,
        points: m.points,
        lifetime_points: m.lifetime_points,
        tier: m.tier,
        referral_url: crate::urls::referral_url(public_url, &m.referral_code),
        referral_code: m.referral_code,
        apple_pass_url: crate::urls::pass_url(public_url, pass),
        google_save_url,
        created_at: m.created_at,
    }
}

/// The answer to an enrollment: the member, and what a referral earned.
#[derive(Serialize, ToSchema)]
pub struct Enrolled {
    #[serde(flatten)]
    pub member: MemberView,
    /// Present when the member joined with a referral code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<crate::loyalty::referral::ReferralResult>,
}

/// Enroll a member in a program: welcome points, a pass, a referral link.
#[utoipa::path(operation_id = "enrollMember", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path, description = "program id")), request_body = Enroll, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::JsonBody,
    crate::openapi::MemberExists, (status = 201, body = Enrolled)))]
#[post("/programs/{id}/members")]
pub async fn enroll(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<Enroll>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let referral_code = input.referral_code.filter(|c| !c.trim().is_empty());
    let new = enrollment::parse(Applicant {
        name: input.name,
        email: input.email,
        phone: input.phone,
        external_id: input.external_id,
    })
    .map_err(ApiError::invalid_fields)?;
    let tenant = caller.0.tenant;
    let program_id = id.into_inner();
    let public_url = state.settings.public_url.clone();
    let app = state.clone();
    let (created, changed, google) = db::run(&state.pool, move |conn| {
        let joined = enrollment::join_with_code(
            conn,
            app.channels,
            &tenant,
            program_id,
            new,
            referral_code.as_deref(),
        )?;
        let changed = joined.changed_passes();
        let google = crate::pass_service::google_save_url(conn, &tenant, &joined.pass, &app)?;
        Ok((
            Enrolled {
                member: view(joined.member, &joined.pass, &public_url, None),
                referral: joined.referral,
            },
            changed,
            google,
        ))
    })
    .await?;
    let mut created = created;
    created.member.google_save_url = crate::pass_service::finish_save_link(&state, google).await;
    for pass_id in changed {
        state.pass_cache.evict_pass(pass_id);
    }
    Ok(HttpResponse::Created().json(created))
}

/// One member, with points and tier.
#[utoipa::path(operation_id = "getMember", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path)), responses(crate::openapi::PosKey, crate::openapi::PathObject,
    (status = 200, body = MemberView)))]
#[get("/members/{id}")]
pub async fn get(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let public_url = state.settings.public_url.clone();
    let app = state.clone();
    let (mut member, google) = db::run(&state.pool, move |conn| {
        let m = Member::find(conn, &tenant, id)?;
        let pass = Pass::of_member(conn, &tenant, m.id)?;
        let google = crate::pass_service::google_save_url(conn, &tenant, &pass, &app)?;
        Ok((view(m, &pass, &public_url, None), google))
    })
    .await?;
    member.google_save_url = crate::pass_service::finish_save_link(&state, google).await;
    Ok(HttpResponse::Ok().json(member))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct MemberQuery {
    /// The number the pass's barcode carries.
    pub card_number: String,
}

/// Find the member whose pass a till scanned.
#[utoipa::path(operation_id = "findMembers", tag = "members", security(("bearer" = ["pos"])), params(MemberQuery), responses(crate::openapi::PosKey, crate::openapi::Query,
    (status = 200, body = MemberList)))]
#[get("/members")]
pub async fn find(
    caller: PosCaller,
    state: web::Data<AppState>,
    query: web::Query<MemberQuery>,
) -> Result<HttpResponse, ApiError> {
    let number = CardNumber::parse(&query.card_number)
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/card_number", e)]))?;
    let tenant = caller.0.tenant;
    let public_url = state.settings.public_url.clone();
    let app = state.clone();
    let found = db::run(&state.pool, move |conn| {
        Member::by_card_number(conn, &tenant, &number)?
            .into_iter()
            .map(|m| {
                let pass = Pass::of_member(conn, &tenant, m.id)?;
                let google = crate::pass_service::google_save_url(conn, &tenant, &pass, &app)?;
                Ok((view(m, &pass, &public_url, None), google))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await?;
    let mut members = Vec::with_capacity(found.len());
    for (mut member, google) in found {
        member.google_save_url = crate::pass_service::finish_save_link(&state, google).await;
        members.push(member);
    }
    Ok(HttpResponse::Ok().json(MemberList { members }))
}

/// Record a purchase: points earned per the program's rules, tier moves. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "recordPurchase", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = Purchase, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, (status = 200, body = PointsChange)))]
#[post("/members/{id}/purchases")]
pub async fn purchase(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    move_points::<Purchase>(req, caller, state, id, body).await
}

/// Grant or take points with a reason; never below zero. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "adjustPoints", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = PointsAdjustment, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, crate::openapi::PointsRefusals, (status = 200, body = PointsChange)))]
#[post("/members/{id}/points")]
pub async fn adjust_points(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    move_points::<PointsAdjustment>(req, caller, state, id, body).await
}

/// A purchase or an adjustment under its `Idempotency-Key`. A pos key's limits are judged
/// before the key is taken: a refusal of the key, not of the request, so a manager may send
/// the same request with the same key under an admin key.
async fn move_points<M: Movement>(
    req: HttpRequest,
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let pos_key = caller.0.scope == Scope::Pos;
    let channels = state.channels;
    super::pos::mutation_fast_first(
        &req,
        &state,
        caller.0.tenant,
        body.into_inner(),
        StatusCode::OK,
        move |conn, tenant, (m, _, _): (&M, _, _)| {
            if pos_key {
                m.allowed(&program::pos_limits_of_member(conn, tenant, id)?)?;
            }
            Ok(None)
        },
        move |conn, tenant, m: M| m.record(conn, channels, tenant, id),
    )
    .await
}
