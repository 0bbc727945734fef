//! CSV exports of the lists (admin): members, gift cards and both ledgers, with the lists'
//! own filters, streamed page by page (`crate::exports`). A `cursor` from the list (or
//! from where an export was cut off) starts the export there; `limit` is not used.

use super::activities::{self, FeedQuery};
use super::gift_cards::{page_of_cards, CardListQuery};
use super::members::{page_of_members, ListQuery};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::{GiftCardActivityType, Paging, PointActivityType};
use crate::exports::{csv_response, Sheet, PAGE};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use crate::urls;
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgramParam {
    /// The program whose members or activities are exported.
    #[param(value_type = Uuid)]
    pub program_id: Option<String>,
}

/// The whole-export page size in place of the list's `limit`.
fn export_paging<K>(paging: Paging<K>) -> Paging<K> {
    Paging {
        limit: PAGE,
        after: paging.after,
    }
}

/// The program named by `program_id`, which must be the merchant's.
async fn program_of(
    state: &web::Data<AppState>,
    tenant: crate::db::Tenant,
    param: &ProgramParam,
    mut problems: Vec<FieldProblem>,
) -> Result<Uuid, ApiError> {
    let id = param
        .program_id
        .as_deref()
        .and_then(|p| p.parse::<Uuid>().ok());
    let Some(id) = id.filter(|_| problems.is_empty()) else {
        if id.is_none() {
            problems.push(FieldProblem::new("/program_id", "a program's id"));
        }
        return Err(ApiError::invalid_fields(problems));
    };
    db::run(&state.pool, move |conn| {
        Program::find(conn, &tenant, id)?;
        Ok(id)
    })
    .await
}

const MEMBER_COLUMNS: &[&str] = &[
    "id",
    "external_id",
    "name",
    "email",
    "phone",
    "card_number",
    "points",
    "tier",
    "stage",
    "rfm_group",
    "created_at",
    "updated_at",
    "apple_pass_url",
    "google_save_url",
];

/// A program's members as CSV, with the member list's filters and order; each row has the
/// card's pass link and a lasting Google save link (`/passes/{token}/google`).
#[utoipa::path(operation_id = "exportMembers", tag = "exports", security(("bearer" = ["admin"])), params(ProgramParam, ListQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query, crate::openapi::PathObject,
    (status = 200, description = "The members, one CSV row each, streamed", content_type = "text/csv")))]
#[get("/exports/members.csv")]
pub async fn members(
    caller: AdminCaller,
    state: web::Data<AppState>,
    program: web::Query<ProgramParam>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    members_csv(&state, caller.0.tenant, &program, &query).await
}

/// The members export of `tenant`: the API's answer, and the console's download.
pub async fn members_csv(
    state: &web::Data<AppState>,
    tenant: crate::db::Tenant,
    program: &ProgramParam,
    query: &ListQuery,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let parsed = query.parse(None, &mut problems);
    let program_id = program_of(state, tenant, program, problems).await?;
    let Some((mut search, paging)) = parsed else {
        return Err(ApiError::internal("unreachable: problems were reported"));
    };
    search.program_id = Some(program_id);
    let public_url = state.settings.public_url.clone();
    let writer =
        move |conn: &mut diesel::PgConnection, paging: &Paging<String>, sheet: &mut Sheet| {
            let (rows, next) = page_of_members(conn, &tenant, &search, paging)?;
            for (m, pass, segment) in rows {
                sheet
                    .plain(m.id)
                    .opt_text(m.external_id.as_deref())
                    .text(&m.name)
                    .opt_text(m.email.as_deref())
                    .opt_text(m.phone.as_deref())
                    .text(&m.card_number)
                    .number(m.points)
                    .opt_text(m.tier.as_deref())
                    .plain(segment.stage.as_str())
                    .plain(segment.rfm.map(|r| r.group.as_str()).unwrap_or(""))
                    .time(m.created_at)
                    .time(m.updated_at)
                    .plain(urls::pass_url(&public_url, &pass))
                    .plain(urls::google_save_redirect_url(&public_url, &pass))
                    .end();
            }
            Ok(next)
        };
    Ok(csv_response(
        state.pool.clone(),
        "members.csv",
        MEMBER_COLUMNS,
        export_paging(paging),
        writer,
    ))
}

const CARD_COLUMNS: &[&str] = &[
    "id",
    "gan",
    "balance",
    "currency",
    "state",
    "template",
    "created_at",
    "updated_at",
    "apple_pass_url",
    "google_save_url",
];

/// The merchant's gift cards as CSV, with the gift-card list's filters and order (no PINs).
#[utoipa::path(operation_id = "exportGiftCards", tag = "exports", security(("bearer" = ["admin"])), params(CardListQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query,
    (status = 200, description = "The gift cards, one CSV row each, streamed", content_type = "text/csv")))]
#[get("/exports/gift-cards.csv")]
pub async fn gift_cards(
    caller: AdminCaller,
    state: web::Data<AppState>,
    query: web::Query<CardListQuery>,
) -> Result<HttpResponse, ApiError> {
    gift_cards_csv(&state, caller.0.tenant, &query)
}

/// The gift cards export of `tenant`: the API's answer, and the console's download.
pub fn gift_cards_csv(
    state: &web::Data<AppState>,
    tenant: crate::db::Tenant,
    query: &CardListQuery,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let Some((filter, paging)) = query.parse(&mut problems) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let public_url = state.settings.public_url.clone();
    let writer = move |conn: &mut diesel::PgConnection, paging: &Paging<_>, sheet: &mut Sheet| {
        let (rows, next) = page_of_cards(conn, &tenant, &filter, paging)?;
        for (card, pass) in rows {
            sheet
                .plain(card.id)
                .plain(&card.gan)
                .number(card.balance)
                .plain(card.currency.code())
                .plain(card.state.as_str())
                .text(&card.template_id)
                .time(card.created_at)
                .time(card.updated_at)
                .plain(urls::pass_url(&public_url, &pass))
                .plain(urls::google_save_redirect_url(&public_url, &pass))
                .end();
        }
        Ok(next)
    };
    Ok(csv_response(
        state.pool.clone(),
        "gift-cards.csv",
        CARD_COLUMNS,
        export_paging(paging),
        writer,
    ))
}

const ACTIVITY_COLUMNS: &[&str] = &[
    "id",
    "member_id",
    "card_number",
    "type",
    "points",
    "points_after",
    "reason",
    "purchase_id",
    "purchase_amount",
    "tier_after",
    "created_at",
];

/// A program's points ledger as CSV, oldest first (`since`, `type` as in the list).
#[utoipa::path(operation_id = "exportProgramActivities", tag = "exports", security(("bearer" = ["admin"])), params(ProgramParam, FeedQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query, crate::openapi::PathObject,
    (status = 200, description = "The activities, one CSV row each, streamed", content_type = "text/csv")))]
#[get("/exports/activities.csv")]
pub async fn program_activities(
    caller: AdminCaller,
    state: web::Data<AppState>,
    program: web::Query<ProgramParam>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let known = |t: &str| PointActivityType::parse(t).is_some();
    let parsed = query.parse(known, &mut problems);
    let tenant = caller.0.tenant;
    let program_id = program_of(&state, tenant, &program, problems).await?;
    let Some((filter, paging)) = parsed else {
        return Err(ApiError::internal("unreachable: problems were reported"));
    };
    let writer = move |conn: &mut diesel::PgConnection, paging: &Paging<i64>, sheet: &mut Sheet| {
        let (rows, next) = activities::page_of_program(conn, &tenant, program_id, &filter, paging)?;
        for a in rows {
            sheet
                .plain(a.id)
                .plain(a.member_id)
                .text(&a.card_number)
                .plain(a.kind.as_str())
                .number(a.points)
                .number(a.points_after)
                .opt_text(a.reason.as_deref())
                .plain(a.purchase_id.map(|p| p.to_string()).unwrap_or_default())
                .opt_number(a.purchase_amount)
                .opt_text(a.tier_after.as_deref())
                .time(a.created_at)
                .end();
        }
        Ok(next)
    };
    Ok(csv_response(
        state.pool.clone(),
        "activities.csv",
        ACTIVITY_COLUMNS,
        export_paging(paging),
        writer,
    ))
}

const CARD_ACTIVITY_COLUMNS: &[&str] = &[
    "id",
    "gan",
    "type",
    "amount",
    "balance_after",
    "refunds_activity_id",
    "reason",
    "created_at",
];

/// The merchant's gift-card ledger as CSV, oldest first (`since`, `type` as in the list).
#[utoipa::path(operation_id = "exportGiftCardActivities", tag = "exports", security(("bearer" = ["admin"])), params(FeedQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query,
    (status = 200, description = "The activities, one CSV row each, streamed", content_type = "text/csv")))]
#[get("/exports/gift-card-activities.csv")]
pub async fn gift_card_activities(
    caller: AdminCaller,
    state: web::Data<AppState>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let known = |t: &str| GiftCardActivityType::parse(t).is_some();
    let Some((filter, paging)) = query.parse(known, &mut problems) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let writer = move |conn: &mut diesel::PgConnection, paging: &Paging<i64>, sheet: &mut Sheet| {
        let (rows, next) = activities::page_of_cards(conn, &tenant, &filter, paging)?;
        for a in rows {
            sheet
                .plain(a.id)
                .plain(&a.gan)
                .plain(a.kind.as_str())
                .number(a.amount)
                .number(a.balance_after)
                .plain(
                    a.refunds_activity_id
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                )
                .opt_text(a.reason.as_deref())
                .time(a.created_at)
                .end();
        }
        Ok(next)
    };
    Ok(csv_response(
        state.pool.clone(),
        "gift-card-activities.csv",
        CARD_ACTIVITY_COLUMNS,
        export_paging(paging),
        writer,
    ))
}
