//! The ledgers as feeds: a program's points activities and the merchant's gift-card
//! activities, oldest first, a page at a time (`since`, `type`, `limit`, `cursor`).

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::cursor::{instant, Page};
use crate::domain::{GiftCardActivityType, Paging, PointActivityType};
use crate::giftcard::activity::CardActivity;
use crate::models::point_activity::{ActivityFilter, ProgramActivity};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// RFC 3339: only activities at or after this instant.
    pub since: Option<String>,
    /// Only activities of these types, comma-separated (e.g. `redeem,refund`).
    #[serde(rename = "type")]
    pub types: Option<String>,
    /// Page size, 1 to 200 (50 when absent).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl FeedQuery {
    /// The filters (types checked by `known`) and the page; problems added to `problems`.
    pub fn parse(
        &self,
        known: impl Fn(&str) -> bool,
        problems: &mut Vec<FieldProblem>,
    ) -> Option<(ActivityFilter, Paging<i64>)> {
        let since = instant("/since", self.since.as_deref(), problems);
        let types: Vec<String> = self
            .types
            .as_deref()
            .map(|t| t.split(',').map(|t| t.trim().to_string()).collect())
            .unwrap_or_default();
        let bad_type = types.iter().any(|t| !known(t));
        if bad_type {
            problems.push(FieldProblem::new(
                "/type",
                "activity types, comma-separated",
            ));
        }
        let paging = Paging::parse(self.limit.as_deref(), self.cursor.as_deref(), problems);
        (!bad_type).then_some(())?;
        Some((
            ActivityFilter {
                since: since?,
                types,
            },
            paging?,
        ))
    }
}

#[derive(Serialize, ToSchema)]
pub struct CardActivityPage {
    /// Oldest first (in the order they were recorded).
    pub activities: Vec<CardActivity>,
    pub next_cursor: Option<String>,
}

/// Every gift-card activity of the merchant, oldest first, a page at a time.
#[utoipa::path(operation_id = "listAllGiftCardActivities", tag = "gift cards", security(("bearer" = ["admin"])), params(FeedQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query, (status = 200, body = CardActivityPage)))]
#[get("/gift-card-activities")]
pub async fn of_gift_cards(
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
    let page = db::run(&state.pool, move |conn| {
        let (activities, next_cursor) = page_of_cards(conn, &tenant, &filter, &paging)?;
        Ok(CardActivityPage {
            activities,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Serialize, ToSchema)]
pub struct ProgramActivityPage {
    /// Oldest first (in the order they were recorded).
    pub activities: Vec<ProgramActivity>,
    pub next_cursor: Option<String>,
}

/// Every points activity of a program's members, oldest first, a page at a time.
#[utoipa::path(operation_id = "listProgramActivities", tag = "members", security(("bearer" = ["admin"])), params(("id" = Uuid, Path, description = "program id"), FeedQuery),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query, (status = 200, body = ProgramActivityPage)))]
#[get("/programs/{id}/activities")]
pub async fn of_program(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let known = |t: &str| PointActivityType::parse(t).is_some();
    let Some((filter, paging)) = query.parse(known, &mut problems) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let (tenant, program_id) = (caller.0.tenant, id.into_inner());
    let page = db::run(&state.pool, move |conn| {
        Program::find(conn, &tenant, program_id)?;
        let (activities, next_cursor) =
            page_of_program(conn, &tenant, program_id, &filter, &paging)?;
        Ok(ProgramActivityPage {
            activities,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One page of a program's ledger and the next page's cursor (the list and the export).
pub(crate) fn page_of_program(
    conn: &mut diesel::PgConnection,
    tenant: &crate::db::Tenant,
    program_id: Uuid,
    filter: &ActivityFilter,
    paging: &Paging<i64>,
) -> Result<Page<ProgramActivity>, ApiError> {
    let after = paging.after.map(|(seq, _)| seq);
    let rows =
        ProgramActivity::page_of_program(conn, tenant, program_id, filter, after, paging.fetch())?;
    Ok(paging.finish(rows, |a| (a.seq, a.id)))
}

/// One page of the merchant's gift-card ledger and the next page's cursor.
pub(crate) fn page_of_cards(
    conn: &mut diesel::PgConnection,
    tenant: &crate::db::Tenant,
    filter: &ActivityFilter,
    paging: &Paging<i64>,
) -> Result<Page<CardActivity>, ApiError> {
    let after = paging.after.map(|(seq, _)| seq);
    let rows = CardActivity::page_of_merchant(conn, tenant, filter, after, paging.fetch())?;
    Ok(paging.finish(rows, |a| (a.seq, a.id)))
}
