use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::{Currency, TemplateKind};
use crate::loyalty::rules::PosLimits;
use crate::loyalty::{ProgramRules, ReferralRule, Tier};
use crate::models::{Program, Template};
use crate::problem::{ApiError, FieldProblem};
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProgram {
    pub name: String,
    /// Id of a loyalty template, e.g. `loyalty-default`.
    pub template: String,
    pub currency: String,
    /// Points per one major unit of the currency (per 1 EUR, not per cent).
    #[schema(minimum = 0, maximum = 100000)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub points_per_unit: i64,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tiers: Vec<Tier>,
    #[serde(default, deserialize_with = "crate::domain::ranges::whole")]
    #[schema(minimum = 0, maximum = 1000000000_i64)]
    pub welcome_points: i64,
    pub referral: Option<ReferralRule>,
    /// Largest purchase (minor units) a pos key may record in one request; default 100000
    /// (1,000.00 in a two-decimal currency). Admin keys are not limited.
    #[serde(default)]
    pub pos_max_purchase: Option<i64>,
    /// Largest manual points change (either sign) a pos key may make in one request;
    /// default 1000. Admin keys are not limited.
    #[serde(default)]
    pub pos_max_points_adjustment: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ProgramView {
    pub id: Uuid,
    pub name: String,
    pub template: String,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub points_per_unit: i64,
    pub tiers: Vec<Tier>,
    pub welcome_points: i64,
    pub referral: Option<ReferralRule>,
    /// The program's public join page (no referrer), for in-store posters; its QR code is
    /// at `join_url + "/qr.svg"` (or `.png`).
    pub join_url: String,
    /// Largest purchase (minor units) a pos key may record in one request.
    pub pos_max_purchase: i64,
    /// Largest manual points change a pos key may make in one request.
    pub pos_max_points_adjustment: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ProgramList {
    pub programs: Vec<ProgramView>,
}

pub(crate) fn view(p: &Program, rules: &ProgramRules, public_url: &str) -> ProgramView {
    ProgramView {
        id: p.id,
        name: p.name.clone(),
        template: p.template_id.clone(),
        currency: rules.currency,
        points_per_unit: rules.points_per_unit,
        tiers: rules.tiers.clone(),
        welcome_points: rules.welcome_points,
        referral: rules.referral.clone(),
        join_url: crate::urls::join_url(public_url, &p.join_code),
        pos_max_purchase: p.pos_max_purchase,
        pos_max_points_adjustment: p.pos_max_points_adjustment,
        created_at: p.created_at,
    }
}

/// Create a loyalty program.
#[utoipa::path(operation_id = "createProgram", tag = "programs", security(("bearer" = ["admin"])), request_body = CreateProgram, responses(crate::openapi::AdminKey, crate::openapi::JsonBody,
    (status = 201, body = ProgramView)))]
#[post("/programs")]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<CreateProgram>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let name = input.name.trim().to_string();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldProblem::new("/name", "1 to 100 characters"));
    }
    let rules = ProgramRules::parse(
        &input.currency,
        input.points_per_unit,
        input.tiers,
        input.welcome_points,
        input.referral,
    )
    .map_err(|p| problems.extend(p))
    .ok();
    let limits = PosLimits::parse(input.pos_max_purchase, input.pos_max_points_adjustment)
        .map_err(|p| problems.extend(p))
        .ok();
    let tenant = caller.0.tenant;
    let template_id = input.template;
    let public_url = state.settings.public_url.clone();
    let created = db::run(&state.pool, move |conn| {
        match Template::find(conn, &tenant, &template_id) {
            Ok(t) if t.kind == TemplateKind::Loyalty => {}
            Ok(_) => problems.push(FieldProblem::new(
                "/template",
                "a program needs a loyalty template, not a gift-card one",
            )),
            Err(diesel::result::Error::NotFound) => problems.push(FieldProblem::new(
                "/template",
                format!("no template {template_id:?}"),
            )),
            Err(e) => return Err(e.into()),
        }
        match (rules, limits) {
            (Some(rules), Some(limits)) if problems.is_empty() => {
                let program = Program::create(conn, &tenant, &name, &template_id, &rules, &limits)?;
                Ok(view(&program, &rules, &public_url))
            }
            _ => Err(ApiError::invalid_fields(problems)),
        }
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// List the merchant's programs.
#[utoipa::path(operation_id = "listPrograms", tag = "programs", security(("bearer" = ["admin"])), responses(crate::openapi::AdminKey, (status = 200, body = ProgramList)))]
#[get("/programs")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let public_url = state.settings.public_url.clone();
    let programs = db::run(&state.pool, move |conn| {
        let programs = Program::list(conn, &tenant)?;
        programs
            .iter()
            .map(|p| Ok(view(p, &p.rules()?, &public_url)))
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(ProgramList { programs }))
}

/// One program.
#[utoipa::path(operation_id = "getProgram", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 200, body = ProgramView)))]
#[get("/programs/{id}")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let public_url = state.settings.public_url.clone();
    let program = db::run(&state.pool, move |conn| {
        let p = Program::find(conn, &tenant, id)?;
        Ok(view(&p, &p.rules()?, &public_url))
    })
    .await?;
    Ok(HttpResponse::Ok().json(program))
}

#[derive(Serialize, ToSchema)]
pub struct Installs {
    pub members: i64,
    /// Members whose pass is registered on at least one Apple device.
    pub apple: i64,
    /// Members whose pass is saved in Google Wallet (from Google's callbacks).
    pub google: i64,
}

/// How many customers carry the program's card, per wallet.
#[utoipa::path(operation_id = "getProgramInstalls", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = Installs)))]
#[get("/programs/{id}/installs")]
pub async fn installs(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    use diesel::prelude::*;
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        members: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        apple: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        google: i64,
    }
    let counts = db::run(&state.pool, move |conn| {
        let program = Program::find(conn, &tenant, id)?;
        let c: Counts = diesel::sql_query(
            "SELECT count(*) AS members,
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM registrations r WHERE r.pass_id = p.id)) AS apple,
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM google_installs g WHERE g.pass_id = p.id AND g.saved)) AS google
               FROM members m JOIN passes p ON p.member_id = m.id
              WHERE m.program_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(program.id)
        .get_result(conn)?;
        Ok(Installs { members: c.members, apple: c.apple, google: c.google })
    })
    .await?;
    Ok(HttpResponse::Ok().json(counts))
}
