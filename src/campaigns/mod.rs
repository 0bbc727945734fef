//! Campaigns: a message (and optional bonus points and offer) to the passes of a segment,
//! with a random holdout kept for measuring. Created through the API ([`create`]), sent
//! by the worker ([`sending`], `jobs::campaigns`), measured on read ([`results`]). What
//! the deliveries became is recorded by the outbox's channels ([`delivery`]). The rules
//! are in docs/CAMPAIGNS.md.

pub mod automations;
pub mod delivery;
pub mod firing;
pub mod results;
pub mod sending;

use crate::db::Tenant;
use crate::domain::Paging;
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::schema::campaigns;
use crate::segments::{Group, Stage};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Holdout share when the request gives none, in percent.
pub const DEFAULT_HOLDOUT_PERCENT: i64 = 10;
/// Days after the send in which purchases count for the results, unless set.
pub const DEFAULT_ATTRIBUTION_DAYS: i64 = 14;
/// Explicit member ids one campaign may name.
const MAX_MEMBER_IDS: usize = 10_000;
/// Values one audience kind may list (groups, cells, stages, tiers).
const MAX_VALUES: usize = 100;

/// Who a campaign goes to. Values within a kind are alternatives (OR), the kinds given
/// must all hold (AND), and `member_ids` are added to whoever that selects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Named RFM groups, e.g. `champions`, `no_purchases`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// RFM cells, e.g. `"311"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<String>>,
    /// Lifecycle stages, e.g. `cooling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
    /// Tier names of the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<String>>,
    /// Members of the program, added to the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_ids: Option<Vec<Uuid>>,
}

/// An offer shown with the message on the pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// 1 to 300 characters.
    pub text: String,
    /// 1 to 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
    /// The last day the offer holds (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<NaiveDate>,
}

/// `POST /api/v1/programs/{id}/campaigns`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    pub audience: Audience,
    /// Percent of the audience held out (sent nothing, measured), 0 to 50; 10 when absent.
    #[serde(default)]
    pub holdout_percent: Option<i64>,
    /// The message's body per language (`{"en": ..., "ru": ...}`), 1 to 1000 characters.
    /// Each card gets its template's language, else English, else the first given.
    pub message: BTreeMap<String, String>,
    /// The message's header per language, 1 to 100 characters; the program's name when
    /// absent for a language.
    #[serde(default)]
    pub header: Option<BTreeMap<String, String>>,
    /// Points granted to every member of the sent group (ledger type `campaign`).
    #[serde(default)]
    pub bonus_points: Option<i64>,
    #[serde(default)]
    pub offer: Option<Offer>,
    /// When to send (RFC 3339); now when absent. Outside 09:00-21:00 in the program's
    /// time zone it moves to the next 09:00.
    #[serde(default)]
    pub send_at: Option<String>,
    /// Days after the send in which purchases count for the results, 1 to 365; 14 when
    /// absent.
    #[serde(default)]
    pub attribution_days: Option<i64>,
    /// What one message costs the merchant, minor units of the program's currency, 0 to
    /// 100,000,000; 0 when absent. With the bonus points it is the cost in the ROMI.
    #[serde(default)]
    pub cost_per_message: Option<i64>,
}

/// One language's message as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageText {
    pub header: String,
    pub body: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = campaigns)]
pub struct CampaignRow {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub program_id: Uuid,
    pub state: String,
    pub audience: serde_json::Value,
    pub holdout_percent: i16,
    pub message: serde_json::Value,
    pub bonus_points: i64,
    pub offer: Option<serde_json::Value>,
    pub attribution_days: i32,
    pub requested_send_at: Option<DateTime<Utc>>,
    pub send_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cost_per_message: i64,
}

impl CampaignRow {
    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> Result<Self, ApiError> {
        campaigns::table
            .filter(campaigns::merchant_id.eq(tenant.merchant_id()))
            .filter(campaigns::id.eq(id))
            .select(CampaignRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::not_found("no such campaign"))
    }

    /// The message per language, as stored.
    pub fn texts(&self) -> BTreeMap<String, MessageText> {
        stored_texts(&self.message)
    }

    /// The offer, as stored.
    pub fn offer_parsed(&self) -> Option<Offer> {
        stored_offer(self.offer.as_ref())
    }
}

/// A stored message (a campaign's or an automation's), written from a checked map.
pub(crate) fn stored_texts(message: &serde_json::Value) -> BTreeMap<String, MessageText> {
    serde_json::from_value(message.clone()).unwrap_or_default()
}

/// A stored offer, written from a checked one.
pub(crate) fn stored_offer(offer: Option<&serde_json::Value>) -> Option<Offer> {
    offer.and_then(|o| serde_json::from_value(o.clone()).ok())
}

/// A campaign as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    pub program_id: Uuid,
    /// `scheduled`, `sending`, `sent` or `cancelled`.
    pub state: String,
    pub audience: Audience,
    pub holdout_percent: i16,
    pub message: BTreeMap<String, MessageText>,
    pub bonus_points: i64,
    pub offer: Option<Offer>,
    pub attribution_days: i32,
    /// Minor units of the program's currency a message.
    pub cost_per_message: i64,
    /// As the request asked (null: now).
    pub requested_send_at: Option<DateTime<Utc>>,
    /// When it goes (or went): never outside sending hours.
    pub send_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// When the audience was fixed and the holdout drawn.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last recipient's pass got the message.
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub counts: results::Counts,
    /// Null until the campaign is sent (and in lists).
    pub results: Option<results::Results>,
}

impl CampaignView {
    fn of(row: CampaignRow, counts: results::Counts, results: Option<results::Results>) -> Self {
        let (texts, offer) = (row.texts(), row.offer_parsed());
        CampaignView {
            id: row.id,
            program_id: row.program_id,
            state: row.state,
            audience: serde_json::from_value(row.audience).unwrap_or_default(),
            holdout_percent: row.holdout_percent,
            message: texts,
            bonus_points: row.bonus_points,
            offer,
            attribution_days: row.attribution_days,
            cost_per_message: row.cost_per_message,
            requested_send_at: row.requested_send_at,
            send_at: row.send_at,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            cancelled_at: row.cancelled_at,
            counts,
            results,
        }
    }
}

fn chars_within(text: &str, max: usize) -> bool {
    let n = text.chars().count();
    n >= 1 && n <= max
}

/// A language tag as the message keys take it: `en`, `ru`, `pt-BR`.
fn is_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Checks a list of one audience kind; `valid` judges each value.
fn check_values(
    problems: &mut Vec<FieldProblem>,
    kind: &str,
    values: &Option<Vec<String>>,
    valid: impl Fn(&str) -> bool,
    expected: &str,
) {
    let Some(values) = values else { return };
    if values.is_empty() || values.len() > MAX_VALUES {
        problems.push(FieldProblem::new(
            format!("/audience/{kind}"),
            format!("1 to {MAX_VALUES} values, or leave it out"),
        ));
    }
    for (i, v) in values.iter().enumerate().take(MAX_VALUES) {
        if !valid(v) {
            problems.push(FieldProblem::new(
                format!("/audience/{kind}/{i}"),
                expected.to_string(),
            ));
        }
    }
}

/// The parts a campaign and an automation share, as a request gives them.
pub(crate) struct ContentRequest<'a> {
    pub message: &'a BTreeMap<String, String>,
    pub header: Option<&'a BTreeMap<String, String>>,
    pub offer: Option<&'a Offer>,
    pub holdout_percent: Option<i64>,
    pub bonus_points: Option<i64>,
    pub attribution_days: Option<i64>,
    pub cost_per_message: Option<i64>,
}

/// Those parts checked (meaningful only when no problem was added).
pub(crate) struct Content {
    pub holdout_percent: i16,
    pub message: BTreeMap<String, MessageText>,
    pub bonus_points: i64,
    pub offer: Option<Offer>,
    pub attribution_days: i32,
    pub cost_per_message: i64,
}

/// Checks the shared parts, adding what is wrong to `problems`; the headers default to the
/// program's name.
pub(crate) fn check_content(
    problems: &mut Vec<FieldProblem>,
    program: &Program,
    req: ContentRequest<'_>,
) -> Content {
    let holdout = req.holdout_percent.unwrap_or(DEFAULT_HOLDOUT_PERCENT);
    problems.extend(crate::domain::ranges::check(
        "/holdout_percent",
        holdout,
        0..=50,
        false,
    ));
    let bonus = req.bonus_points.unwrap_or(0);
    problems.extend(crate::domain::ranges::check(
        "/bonus_points",
        bonus,
        0..=1_000_000,
        false,
    ));
    let cost_per_message = req.cost_per_message.unwrap_or(0);
    problems.extend(crate::domain::ranges::check(
        "/cost_per_message",
        cost_per_message,
        0..=100_000_000,
        false,
    ));
    let days = req.attribution_days.unwrap_or(DEFAULT_ATTRIBUTION_DAYS);
    problems.extend(crate::domain::ranges::check(
        "/attribution_days",
        days,
        1..=365,
        false,
    ));
    if req.message.is_empty() || req.message.len() > 20 {
        problems.push(FieldProblem::new("/message", "1 to 20 languages"));
    }
    let headers = req.header.cloned().unwrap_or_default();
    for (lang, header) in &headers {
        if !req.message.contains_key(lang) {
            problems.push(FieldProblem::new(
                format!("/header/{lang}"),
                "a language the message has",
            ));
        } else if !chars_within(header.trim(), 100) {
            problems.push(FieldProblem::new(
                format!("/header/{lang}"),
                "1 to 100 characters",
            ));
        }
    }
    let mut message = BTreeMap::new();
    for (lang, body) in req.message.iter().take(20) {
        if !is_language(lang) {
            problems.push(FieldProblem::new(
                format!("/message/{lang}"),
                "keys are language codes, e.g. en, ru",
            ));
            continue;
        }
        if !chars_within(body.trim(), 1000) {
            problems.push(FieldProblem::new(
                format!("/message/{lang}"),
                "1 to 1000 characters",
            ));
            continue;
        }
        let header = headers
            .get(lang)
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|| program.name.chars().take(100).collect());
        message.insert(
            lang.clone(),
            MessageText {
                header,
                body: body.trim().to_string(),
            },
        );
    }
    if let Some(offer) = req.offer {
        if !chars_within(offer.text.trim(), 300) {
            problems.push(FieldProblem::new("/offer/text", "1 to 300 characters"));
        }
        if let Some(code) = &offer.coupon_code {
            if !chars_within(code.trim(), 64) {
                problems.push(FieldProblem::new(
                    "/offer/coupon_code",
                    "1 to 64 characters",
                ));
            }
        }
    }
    Content {
        holdout_percent: holdout.clamp(0, 50) as i16,
        message,
        bonus_points: bonus,
        offer: req.offer.map(|o| Offer {
            text: o.text.trim().to_string(),
            coupon_code: o.coupon_code.as_ref().map(|c| c.trim().to_string()),
            valid_until: o.valid_until,
        }),
        attribution_days: days.clamp(1, 365) as i32,
        cost_per_message,
    }
}

/// What a request asks, checked: the row to insert.
struct Checked {
    audience: Audience,
    content: Content,
    requested_send_at: Option<DateTime<Utc>>,
}

fn check(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program: &Program,
    req: &NewCampaign,
) -> Result<Checked, ApiError> {
    let mut problems = Vec::new();
    let a = &req.audience;
    check_values(
        &mut problems,
        "groups",
        &a.groups,
        |g| Group::parse(g).is_some(),
        "a named group (docs/SEGMENTS.md), e.g. champions",
    );
    check_values(
        &mut problems,
        "cells",
        &a.cells,
        |c| c.len() == 3 && c.chars().all(|d| ('1'..='3').contains(&d)),
        "three digits 1-3, e.g. \"311\"",
    );
    check_values(
        &mut problems,
        "stages",
        &a.stages,
        |s| Stage::parse(s).is_some(),
        "a lifecycle stage, e.g. cooling",
    );
    let tiers: Vec<String> = crate::loyalty::program::rules(program)
        .map(|r| r.tiers.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default();
    check_values(
        &mut problems,
        "tiers",
        &a.tiers,
        |t| tiers.iter().any(|n| n == t),
        "a tier of the program",
    );
    if let Some(ids) = &a.member_ids {
        if ids.len() > MAX_MEMBER_IDS {
            problems.push(FieldProblem::new(
                "/audience/member_ids",
                format!("at most {MAX_MEMBER_IDS}"),
            ));
        } else if !ids.is_empty() {
            let known: Vec<Uuid> = crate::schema::members::table
                .filter(crate::schema::members::merchant_id.eq(tenant.merchant_id()))
                .filter(crate::schema::members::program_id.eq(program.id))
                .filter(crate::schema::members::id.eq_any(ids))
                .select(crate::schema::members::id)
                .load(conn)?;
            if let Some((i, _)) = ids.iter().enumerate().find(|(_, id)| !known.contains(id)) {
                problems.push(FieldProblem::new(
                    format!("/audience/member_ids/{i}"),
                    "not a member of this program",
                ));
            }
        }
    }
    let kinds = [&a.groups, &a.cells, &a.stages, &a.tiers];
    if kinds.iter().all(|k| k.is_none()) && a.member_ids.as_ref().is_none_or(|i| i.is_empty()) {
        problems.push(FieldProblem::new(
            "/audience",
            "at least one of groups, cells, stages, tiers, member_ids",
        ));
    }
    let content = check_content(
        &mut problems,
        program,
        ContentRequest {
            message: &req.message,
            header: req.header.as_ref(),
            offer: req.offer.as_ref(),
            holdout_percent: req.holdout_percent,
            bonus_points: req.bonus_points,
            attribution_days: req.attribution_days,
            cost_per_message: req.cost_per_message,
        },
    );
    let requested = match &req.send_at {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                problems.push(FieldProblem::new(
                    "/send_at",
                    "an RFC 3339 instant, e.g. 2026-12-24T10:00:00+03:00",
                ));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    Ok(Checked {
        audience: a.clone(),
        content,
        requested_send_at: requested,
    })
}

/// Creates a campaign of a program as of `now`: scheduled for `send_at` (or now), moved
/// out of the night in the program's time zone.
pub fn create(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    req: &NewCampaign,
    now: DateTime<Utc>,
) -> Result<CampaignView, ApiError> {
    let program = Program::find(conn, tenant, program_id)
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such program"))?;
    let Checked {
        audience,
        content: c,
        requested_send_at,
    } = check(conn, tenant, &program, req)?;
    let wanted = requested_send_at.map_or(now, |at| at.max(now));
    let send_at = crate::loyalty::sending_hours::next_sending_instant(wanted, program.tz());
    let row: CampaignRow = diesel::insert_into(campaigns::table)
        .values((
            campaigns::id.eq(Uuid::new_v4()),
            campaigns::merchant_id.eq(tenant.merchant_id()),
            campaigns::program_id.eq(program.id),
            campaigns::state.eq("scheduled"),
            campaigns::audience.eq(to_json(&audience)),
            campaigns::holdout_percent.eq(c.holdout_percent),
            campaigns::message.eq(to_json(&c.message)),
            campaigns::bonus_points.eq(c.bonus_points),
            campaigns::offer.eq(c.offer.as_ref().map(to_json)),
            campaigns::attribution_days.eq(c.attribution_days),
            campaigns::cost_per_message.eq(c.cost_per_message),
            campaigns::requested_send_at.eq(requested_send_at),
            campaigns::send_at.eq(send_at),
            campaigns::created_at.eq(now),
        ))
        .returning(CampaignRow::as_returning())
        .get_result(conn)?;
    Ok(CampaignView::of(row, results::Counts::default(), None))
}

/// A stored JSON column; these types always serialize.
pub(crate) fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// One campaign with its counts and, once sent, its results as of now.
pub fn get(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<CampaignView, ApiError> {
    let row = CampaignRow::find(conn, tenant, id)?;
    let counts = results::counts(conn, tenant, &[row.id])?
        .remove(&row.id)
        .unwrap_or_default();
    let point_value = Program::find(conn, tenant, row.program_id)?.point_value();
    let results = results::results(conn, tenant, &row, &counts, point_value, now)?;
    Ok(CampaignView::of(row, counts, results))
}

/// Cancels a campaign not sent yet (cancelling it again answers the same); 409 once its
/// audience is fixed.
pub fn cancel(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<CampaignView, ApiError> {
    conn.transaction(|conn| {
        // Waits for a worker fixing the audience: then it is `sending`, and refused.
        let row: CampaignRow = campaigns::table
            .filter(campaigns::merchant_id.eq(tenant.merchant_id()))
            .filter(campaigns::id.eq(id))
            .for_update()
            .select(CampaignRow::as_select())
            .first(conn)
            .optional()
            .map_err(|e| match e {
                e if crate::db::is_lock_timeout(&e) => ApiError::new(
                    ProblemKind::Conflict,
                    "the campaign is being sent and can no longer be cancelled",
                ),
                e => e.into(),
            })?
            .ok_or_else(|| ApiError::not_found("no such campaign"))?;
        match row.state.as_str() {
            "scheduled" => {
                diesel::update(campaigns::table.find(row.id))
                    .filter(campaigns::merchant_id.eq(tenant.merchant_id()))
                    .set((
                        campaigns::state.eq("cancelled"),
                        campaigns::cancelled_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            "cancelled" => {}
            state => {
                return Err(ApiError::new(
                    ProblemKind::Conflict,
                    format!("the campaign is {state}: only a scheduled one can be cancelled"),
                )
                .with_extra("state", state.into()));
            }
        }
        get(conn, tenant, id, now)
    })
}

/// A page of a program's campaigns, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignPage {
    pub campaigns: Vec<CampaignView>,
    pub next_cursor: Option<String>,
}

/// The campaigns of a program, newest first, `limit` at a time after `cursor`.
pub fn list(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    paging: &Paging<DateTime<Utc>>,
) -> Result<CampaignPage, ApiError> {
    Program::find(conn, tenant, program_id)
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such program"))?;
    let mut q = campaigns::table
        .filter(campaigns::merchant_id.eq(tenant.merchant_id()))
        .filter(campaigns::program_id.eq(program_id))
        .into_boxed();
    if let Some((at, id)) = paging.after {
        q = q.filter(
            campaigns::created_at
                .lt(at)
                .or(campaigns::created_at.eq(at).and(campaigns::id.lt(id))),
        );
    }
    let rows: Vec<CampaignRow> = q
        .order((campaigns::created_at.desc(), campaigns::id.desc()))
        .limit(paging.fetch())
        .select(CampaignRow::as_select())
        .load(conn)?;
    let (rows, next_cursor) = paging.finish(rows, |r| (r.created_at, r.id));
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut counts = results::counts(conn, tenant, &ids)?;
    let campaigns = rows
        .into_iter()
        .map(|r| {
            let c = counts.remove(&r.id).unwrap_or_default();
            CampaignView::of(r, c, None)
        })
        .collect();
    Ok(CampaignPage {
        campaigns,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "ru", "pt-BR", "zh-Hant"] {
            assert!(is_language(ok), "{ok}");
        }
        for bad in ["", "EN", "e", "english", "en-", "en_US", "ру"] {
            assert!(!is_language(bad), "{bad}");
        }
    }
}
