use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::Currency;
use crate::loyalty::program::{self, CreateProgram};
use crate::loyalty::{Lifecycle, ProgramRules, ReferralRule, Tier};
use crate::models::Program;
use crate::problem::ApiError;
use actix_web::{get, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// Expiry, reminders, payment with points, birthdays, tier window, time zone.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// RFM window and thresholds, cooling and lapse days (docs/SEGMENTS.md); absent: defaults.
    #[serde(flatten)]
    pub segments: crate::segments::Settings,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ProgramChange {
    /// The program after the change (before it, with `dry_run`).
    pub program: ProgramView,
    /// What the change does (or would do), said before it is saved.
    pub effects: program::Effects,
    pub dry_run: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ChangeQuery {
    /// `true`: only say what the change would do.
    #[serde(default)]
    pub dry_run: bool,
}

/// Change a program's rules and settings (the whole program, as created; the currency
/// cannot change). Members whose tier the new thresholds change move at once, each with a
/// `tier` ledger row, and their cards are updated. With `?dry_run=true`, nothing is saved:
/// the answer says what the change would do.
#[utoipa::path(operation_id = "updateProgram", tag = "programs", security(("bearer" = ["admin"])), params(("id" = Uuid, Path), ChangeQuery), request_body = CreateProgram, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody, crate::openapi::Query,
    (status = 200, body = ProgramChange)))]
#[put("/programs/{id}")]
pub async fn update(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ChangeQuery>,
    body: web::Json<CreateProgram>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let (id, dry_run) = (id.into_inner(), query.dry_run);
    let input = body.into_inner();
    let public_url = state.settings.public_url.clone();
    let channels = state.channels;
    let change = db::run(&state.pool, move |conn| {
        let (p, rules, effects) = program::update(conn, channels, &tenant, id, input, dry_run)?;
        Ok(ProgramChange {
            program: view(&p, &rules, &public_url),
            effects,
            dry_run,
        })
    })
    .await?;
    if !dry_run {
        // The program's name is on its passes: other processes hear of it through NOTIFY.
        state.pass_cache.evict_merchant(tenant.merchant_id());
    }
    Ok(HttpResponse::Ok().json(change))
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
        lifecycle: rules.lifecycle.clone(),
        segments: crate::segments::Settings::of(&p.segments),
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
    let tenant = caller.0.tenant;
    let input = body.into_inner();
    let public_url = state.settings.public_url.clone();
    let created = db::run(&state.pool, move |conn| {
        let (program, rules) = program::create(conn, &tenant, input)?;
        Ok(view(&program, &rules, &public_url))
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
            .map(|p| Ok(view(p, &program::rules(p)?, &public_url)))
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
        Ok(view(&p, &program::rules(&p)?, &public_url))
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
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let counts = db::run(&state.pool, move |conn| {
        let program = Program::find(conn, &tenant, id)?;
        let c = Program::installs(conn, &tenant, program.id)?;
        Ok(Installs {
            members: c.members,
            apple: c.apple,
            google: c.google,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(counts))
}
