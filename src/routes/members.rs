use crate::app::AppState;
use crate::auth::PosCaller;
use crate::db;
use crate::domain::cursor::{instant, Page};
use crate::domain::Scope;
use crate::domain::{BirthDate, CardNumber, PageCursor, PageLimit, Paging, Parsed, SearchTerm};
use crate::loyalty::enrollment::{self, Applicant};
use crate::loyalty::points::{Movement, PointsAdjustment, PointsChange, Purchase};
use crate::loyalty::program;
use crate::models::member::{Member, MemberOrder, Narrowing, SearchQuery};
use crate::models::{Pass, Program};
use crate::privacy::consents::{self, ConsentsInput};
use crate::problem::{ApiError, FieldProblem};
use crate::segments::{self, MemberSegment, Rfm, Stage};
use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::Connection;
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
    /// `YYYY-MM-DD`, or month and day alone as `--MM-DD` (or `MM-DD`); February 29 allowed.
    /// Birthday points (`birthday_points`) are granted on the day.
    #[schema(value_type = Option<String>, example = "--05-17")]
    pub birth_date: Option<Parsed<BirthDate>>,
    /// What the member agreed to, recorded with the time and the source (`api`, or `pos`
    /// for a pos key). Joining records the terms as accepted unless `terms` says otherwise.
    pub consents: Option<ConsentsInput>,
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
    /// Points a return should have taken back but the member had spent: taken from the
    /// member's next gains before they become spendable.
    pub points_owed: i64,
    pub tier: Option<String>,
    /// `YYYY-MM-DD`, or `--MM-DD` when only the month and day are known; null when unknown.
    #[schema(example = "1990-05-17")]
    pub birth_date: Option<String>,
    pub referral_code: String,
    pub referral_url: String,
    pub apple_pass_url: String,
    /// Null in member lists (`GET /programs/{id}/members`): a link is signed per card,
    /// which a list of 200 cannot afford; `GET /members/{id}` has it.
    pub google_save_url: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the member's points, tier or details last changed (what `updated_since` reads).
    pub updated_at: DateTime<Utc>,
    /// RFM scores over the program's window (as of the last recompute); null without a
    /// purchase in the window (docs/SEGMENTS.md).
    pub rfm: Option<Rfm>,
    pub lifecycle_stage: Stage,
    /// When the member's personal data was erased (`DELETE /members/{id}`): name, contacts,
    /// birth date and external id are then wiped and the card number is a new one. Null
    /// for a member.
    pub erased_at: Option<DateTime<Utc>>,
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
    segment: MemberSegment,
) -> MemberView {
    MemberView {
        birth_date: m.birth_date().map(|d| d.to_string()),
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
        points_owed: m.points_owed,
        tier: m.tier,
        referral_url: crate::urls::referral_url(public_url, &m.referral_code),
        referral_code: m.referral_code,
        apple_pass_url: crate::urls::pass_url(public_url, pass),
        google_save_url,
        created_at: m.created_at,
        updated_at: m.updated_at,
        rfm: segment.rfm,
        lifecycle_stage: segment.stage,
        erased_at: m.erased_at,
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
    let consents = input
        .consents
        .unwrap_or_default()
        .parse("/consents")
        .map_err(|p| vec![p]);
    let new = enrollment::parse(Applicant {
        name: input.name,
        email: input.email,
        phone: input.phone,
        external_id: input.external_id,
        birth_date: input.birth_date.map(|d| d.get()),
    });
    let (new, mut consents) = match (new, consents) {
        (Ok(new), Ok(consents)) => (new, consents),
        (new, consents) => {
            let mut problems = new.err().unwrap_or_default();
            problems.extend(consents.err().unwrap_or_default());
            return Err(ApiError::invalid_fields(problems));
        }
    };
    // Joining is accepting the program's terms, unless the caller says otherwise.
    if !consents
        .iter()
        .any(|(kind, _)| *kind == consents::Kind::Terms)
    {
        consents.insert(0, (consents::Kind::Terms, true));
    }
    let source = consents::Source::of_scope(caller.0.scope);
    let tenant = caller.0.tenant;
    let program_id = id.into_inner();
    let public_url = state.settings.public_url.clone();
    let app = state.clone();
    let (created, changed, google) = db::run(&state.pool, move |conn| {
        let now = app.clock.now();
        let joined = conn.transaction(|conn| {
            let joined = enrollment::join_with_code(
                conn,
                (app.channels, now),
                &tenant,
                program_id,
                new,
                referral_code.as_deref(),
            )?;
            for (kind, granted) in &consents {
                consents::record(
                    conn,
                    &tenant,
                    joined.member.id,
                    *kind,
                    *granted,
                    source,
                    now,
                )?;
            }
            Ok::<_, ApiError>(joined)
        })?;
        let changed = joined.changed_passes();
        let google = crate::pass_service::google_save_url(conn, &tenant, &joined.pass, &app)?;
        Ok((
            Enrolled {
                member: view(
                    joined.member,
                    &joined.pass,
                    &public_url,
                    None,
                    MemberSegment::default(),
                ),
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
    answer(caller.0, &state, id.into_inner(), Changes::default()).await
}

/// A member's details that may change after joining; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChange {
    /// `YYYY-MM-DD`, `--MM-DD` or `MM-DD`; null forgets it. Changing it does not grant a
    /// second birthday in a year: birthday points come once a year whatever the date says.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "1990-05-17")]
    pub birth_date: Option<Option<Parsed<BirthDate>>>,
    /// Consents given or withdrawn (`false`), recorded with the time and the source
    /// (`api`, or `pos` for a pos key).
    pub consents: Option<ConsentsInput>,
}

/// A field that is present, null or not: absent stays `None` through `default`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Change a member's details (the birth date) or consents; answers the member. An erased
/// member changes no more (410 `gone`).
#[utoipa::path(operation_id = "changeMember", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path)), request_body = MemberChange,
    responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::JsonBody, crate::openapi::MemberErased, (status = 200, body = MemberView)))]
#[patch("/members/{id}")]
pub async fn change(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<MemberChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let birth_date = match body.birth_date {
        Some(Some(parsed)) => Some(Some(parsed.get().map_err(|e| {
            ApiError::invalid_fields(vec![FieldProblem::new("/birth_date", e)])
        })?)),
        Some(None) => Some(None),
        None => None,
    };
    let consents = body
        .consents
        .unwrap_or_default()
        .parse("/consents")
        .map_err(|p| ApiError::invalid_fields(vec![p]))?;
    let changes = Changes {
        birth_date,
        consents,
    };
    answer(caller.0, &state, id.into_inner(), changes).await
}

/// What a PATCH changes.
#[derive(Default)]
struct Changes {
    birth_date: Option<Option<BirthDate>>,
    consents: Vec<(consents::Kind, bool)>,
}

/// The member as `GET /members/{id}` shows it, after the changes given.
async fn answer(
    caller: crate::auth::Caller,
    state: &web::Data<AppState>,
    id: Uuid,
    changes: Changes,
) -> Result<HttpResponse, ApiError> {
    let public_url = state.settings.public_url.clone();
    let app = state.clone();
    let tenant = caller.tenant;
    let source = consents::Source::of_scope(caller.scope);
    let (mut member, google) = db::run(&state.pool, move |conn| {
        if changes.birth_date.is_some() || !changes.consents.is_empty() {
            let now = app.clock.now();
            conn.transaction(|conn| {
                // Under the member's lock, as points move: an erasure running at the same
                // time is seen, not written over.
                crate::loyalty::ledger::lock_member(conn, &tenant, id)?;
                if let Some(date) = changes.birth_date {
                    Member::set_birth_date(conn, &tenant, id, date)?;
                }
                for (kind, granted) in &changes.consents {
                    consents::record(conn, &tenant, id, *kind, *granted, source, now)?;
                }
                Ok::<_, ApiError>(())
            })?;
        }
        let m = Member::find(conn, &tenant, id)?;
        let pass = Pass::of_member(conn, &tenant, m.id)?;
        let google = crate::pass_service::google_save_url(conn, &tenant, &pass, &app)?;
        let segment = segments::of_member(conn, &tenant, m.id)?;
        Ok((view(m, &pass, &public_url, None, segment), google))
    })
    .await?;
    member.google_save_url = crate::pass_service::finish_save_link(state, google).await;
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
                let segment = segments::of_member(conn, &tenant, m.id)?;
                Ok((view(m, &pass, &public_url, None, segment), google))
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Finds members by name (anywhere in it, any case and script, from 3 characters; the
    /// start of it below 3), by the start of their email (or with `@`, only by email), and
    /// by the start of their phone's digits or card number (digits, written any way:
    /// `+7 (912) 345`). Empty or absent: every member.
    #[param(max_length = 254)]
    pub q: Option<String>,
    /// How many members per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only the members of this RFM group (`champions`, ..., `no_purchases`).
    pub group: Option<String>,
    /// Only the members in this RFM cell, e.g. `311`.
    pub cell: Option<String>,
    /// Only the members at this lifecycle stage, e.g. `cooling`.
    pub stage: Option<String>,
    /// Only the members of this RFM group or at this lifecycle stage (the names differ).
    pub segment: Option<String>,
    /// Only the members at this tier (its name).
    #[param(max_length = 100)]
    pub tier: Option<String>,
    /// RFC 3339: only the members who joined since then. Without `q` or `updated_since`,
    /// the list is then ordered by joining time, then id.
    pub created_since: Option<String>,
    /// RFC 3339: only the members changed since then (points, tier, details). Without `q`,
    /// the list is then ordered by `updated_at`, then id: how a sync takes the changes.
    pub updated_since: Option<String>,
}

impl ListQuery {
    /// The query's filters and its page (limit and cursor, checked against the order);
    /// what is wrong is added to `problems`.
    pub fn parse(
        &self,
        program_id: Option<Uuid>,
        problems: &mut Vec<FieldProblem>,
    ) -> Option<(SearchQuery, Paging<String>)> {
        let term = SearchTerm::parse(self.q.as_deref())
            .map_err(|e| problems.push(FieldProblem::new("/q", e)))
            .ok();
        let limit = PageLimit::parse(self.limit.as_deref())
            .map_err(|e| problems.push(FieldProblem::new("/limit", e)))
            .ok();
        let after = self
            .cursor
            .as_deref()
            .map(PageCursor::decode)
            .transpose()
            .map_err(|e| problems.push(FieldProblem::new("/cursor", e)))
            .ok();
        let mut segment_conflict = false;
        let (group, stage) = match self.segment.as_deref() {
            Some(_) if self.group.is_some() || self.stage.is_some() || self.cell.is_some() => {
                problems.push(FieldProblem::new(
                    "/segment",
                    "one of segment, group, cell and stage at a time",
                ));
                segment_conflict = true;
                (None, None)
            }
            Some(s) if crate::segments::Group::parse(s).is_some() => (Some(s), None),
            Some(s) => (None, Some(s)),
            None => (self.group.as_deref(), self.stage.as_deref()),
        };
        let segment = segments::Filter::parse(group, self.cell.as_deref(), stage)
            .map_err(|mut e| {
                if self.segment.is_some() {
                    e.pointer = "/segment".into();
                    e.detail =
                        "an RFM group (champions, ...) or a lifecycle stage (registered, ...)"
                            .into();
                }
                problems.push(e)
            })
            .ok()
            .filter(|_| !segment_conflict);
        let tier = match self.tier.as_deref() {
            Some(t) if t.chars().count() > 100 || t.chars().any(char::is_control) => {
                problems.push(FieldProblem::new("/tier", "a tier's name"));
                None
            }
            t => Some(t.map(str::to_string)),
        };
        let created_since = instant("/created_since", self.created_since.as_deref(), problems);
        let updated_since = instant("/updated_since", self.updated_since.as_deref(), problems);
        let query = SearchQuery {
            program_id,
            term: term?,
            segment: segment?,
            narrow: Narrowing {
                tier: tier?,
                created_since: created_since?,
                updated_since: updated_since?,
            },
        };
        let after = after?;
        // A list ordered by time continues from an instant.
        if query.order() != MemberOrder::Key {
            if let Some(Err(e)) = after.as_ref().map(|c| c.typed::<DateTime<Utc>>()) {
                problems.push(FieldProblem::new("/cursor", e));
                return None;
            }
        }
        Some((
            query,
            Paging {
                limit: limit?,
                after: after.map(|c| (c.key, c.id)),
            },
        ))
    }
}

/// One page of a member list.
#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    /// Ordered by the text each member was found by (name, email, phone digits or card
    /// number; name for a plain list), case-blind, then by id; without `q`, by
    /// `updated_at` when `updated_since` is given, else by `created_at` when
    /// `created_since` is.
    pub members: Vec<MemberView>,
    /// Where the next page starts (`?cursor=`); null on the last page.
    pub next_cursor: Option<String>,
}

/// List or search a program's members, a page at a time.
#[utoipa::path(operation_id = "listMembers", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path, description = "program id"), ListQuery),
    responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Query, (status = 200, body = MemberPage)))]
#[get("/programs/{id}/members")]
pub async fn list(
    caller: PosCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let program_id = id.into_inner();
    let Some((search, paging)) = query.parse(Some(program_id), &mut problems) else {
        return Err(ApiError::invalid_fields(problems));
    };
    let tenant = caller.0.tenant;
    let public_url = state.settings.public_url.clone();
    let page = db::run(&state.pool, move |conn| {
        Program::find(conn, &tenant, program_id)?;
        let (found, next_cursor) = page_of_members(conn, &tenant, &search, &paging)?;
        let members = found
            .into_iter()
            .map(|(member, pass, segment)| view(member, &pass, &public_url, None, segment))
            .collect();
        Ok(MemberPage {
            members,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One page of a member list with each member's pass and segments, and the next page's
/// cursor: what the list answers and the export writes.
pub(crate) fn page_of_members(
    conn: &mut diesel::PgConnection,
    tenant: &crate::db::Tenant,
    search: &SearchQuery,
    paging: &Paging<String>,
) -> Result<Page<(Member, Pass, MemberSegment)>, ApiError> {
    let after = paging.after.as_ref().map(|(key, id)| PageCursor {
        key: key.clone(),
        id: *id,
    });
    let found = Member::search(conn, tenant, search, after.as_ref(), paging.fetch())?;
    let (found, next_cursor) = paging.finish(found, |f| (f.sort_key.clone(), f.member.id));
    let ids: Vec<Uuid> = found.iter().map(|f| f.member.id).collect();
    let mut segments = segments::of_members(conn, tenant, &ids)?;
    let mut passes: std::collections::HashMap<Uuid, Pass> = Pass::of_members(conn, tenant, &ids)?
        .into_iter()
        .filter_map(|p| Some((p.member_id?, p)))
        .collect();
    let members = found
        .into_iter()
        .filter_map(|f| {
            // Every member has a pass from the transaction that enrolled them.
            let pass = passes.remove(&f.member.id)?;
            let segment = segments.remove(&f.member.id).unwrap_or_default();
            Some((f.member, pass, segment))
        })
        .collect();
    Ok((members, next_cursor))
}

/// Record a purchase: points earned per the program's rules, tier moves. Needs `Idempotency-Key`.
#[utoipa::path(operation_id = "recordPurchase", tag = "members", security(("bearer" = ["pos"])), params(("id" = Uuid, Path), crate::openapi::IdempotencyKeyHeader),
    request_body = Purchase, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, crate::openapi::MemberErased, crate::openapi::PosLimit, (status = 200, body = PointsChange)))]
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
    request_body = PointsAdjustment, responses(crate::openapi::PosKey, crate::openapi::PathObject, crate::openapi::Idempotent, crate::openapi::JsonBody, crate::openapi::PointsRefusals, crate::openapi::MemberErased, crate::openapi::PosLimit, (status = 200, body = PointsChange)))]
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
    let clock = state.clock.clone();
    let clock_check = state.clock.clone();
    super::pos::mutation_fast_first(
        &req,
        &state,
        caller.0.tenant,
        body.into_inner(),
        StatusCode::OK,
        move |conn, tenant, (m, _, _): (&M, _, _)| {
            m.timed(clock_check.now(), !pos_key)?;
            if pos_key {
                m.allowed(&program::pos_limits_of_member(conn, tenant, id)?)?;
            }
            Ok(None)
        },
        move |conn, tenant, m: M| m.record(conn, (channels, clock.now()), tenant, id),
    )
    .await
}
