//! Automations: standing rules that put a campaign's kind of message (and optional bonus
//! points and offer) on one member's pass when something happens to them: entering a
//! lifecycle stage, a first or n-th purchase, a birthday. Each member is fired at most
//! once per rule per period; each firing draws its own holdout. Created and read here,
//! fired and sent by the worker (`firing`, `jobs::automations`), measured like campaigns
//! (`results`). The rules are in docs/CAMPAIGNS.md, "Automations".

use super::results::{self, Counts, GroupResult, Recipients};
use super::{check_content, to_json, ContentRequest, MessageText, Offer};
use crate::db::Tenant;
use crate::domain::Paging;
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use crate::schema::automations;
use crate::segments::Stage;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Days a member entering a stage is not fired again by the same rule, unless set.
pub const DEFAULT_STAGE_PERIOD_DAYS: i64 = 90;
/// ... and for birthdays: once a year, whatever the calendar does to the date.
pub const DEFAULT_BIRTHDAY_PERIOD_DAYS: i64 = 300;
/// The longest period and bonus lifetime one may set.
const MAX_DAYS: i64 = 3_650;

/// What fires a rule for a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// The member's lifecycle stage became `stage` (docs/SEGMENTS.md).
    StageEntered { stage: String },
    /// The member's first purchase (not returned in full).
    FirstPurchase,
    /// The member's `n`-th purchase (not returned in full), 2 to 1000.
    NthPurchase { n: i64 },
    /// The member's birthday, in the program's time zone.
    Birthday,
}

impl Trigger {
    fn kind(&self) -> &'static str {
        match self {
            Trigger::StageEntered { .. } => "stage_entered",
            Trigger::FirstPurchase => "first_purchase",
            Trigger::NthPurchase { .. } => "nth_purchase",
            Trigger::Birthday => "birthday",
        }
    }

    /// The period a rule of this trigger has when none is set (`None`: once per member).
    fn default_period(&self) -> Option<i64> {
        match self {
            Trigger::StageEntered { .. } => Some(DEFAULT_STAGE_PERIOD_DAYS),
            Trigger::Birthday => Some(DEFAULT_BIRTHDAY_PERIOD_DAYS),
            Trigger::FirstPurchase | Trigger::NthPurchase { .. } => None,
        }
    }
}

/// `POST /api/v1/programs/{id}/automations`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAutomation {
    /// For the merchant's lists, 1 to 100 characters; the trigger's kind when absent.
    #[serde(default)]
    pub name: Option<String>,
    pub trigger: Trigger,
    /// After a firing, the member is not fired again by this rule for this many days
    /// (1 to 3650); 90 for `stage_entered`, 300 for `birthday`, and never again for the
    /// purchase triggers when absent. `null`... is absent.
    #[serde(default)]
    pub period_days: Option<i64>,
    /// Percent of firings held out (sent nothing, measured), 0 to 50; 10 when absent.
    #[serde(default)]
    pub holdout_percent: Option<i64>,
    /// The message's body per language, 1 to 1000 characters, as a campaign's.
    pub message: BTreeMap<String, String>,
    /// The header per language of `message`, 1 to 100 characters; the program's name
    /// where absent.
    #[serde(default)]
    pub header: Option<BTreeMap<String, String>>,
    /// Points granted with each sent message (ledger type `campaign`), 0 to 1,000,000.
    #[serde(default)]
    pub bonus_points: Option<i64>,
    /// Days those points last (1 to 3650); the program's `points_expire_days` when absent.
    #[serde(default)]
    pub bonus_expire_days: Option<i64>,
    #[serde(default)]
    pub offer: Option<Offer>,
    /// Days after each firing in which the member's purchases count, 1 to 365; 14 when
    /// absent.
    #[serde(default)]
    pub attribution_days: Option<i64>,
    /// What one message costs the merchant, minor units, 0 to 100,000,000.
    #[serde(default)]
    pub cost_per_message: Option<i64>,
    /// false: created paused. true when absent.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /api/v1/automations/{id}`: pause or resume, rename. The message and the rule
/// stay as they were measured: for another message, create another automation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationChange {
    #[serde(default)]
    pub name: Option<String>,
    /// Resuming fires only for what happens from then on.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = automations)]
pub struct AutomationRow {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub program_id: Uuid,
    pub name: String,
    pub trigger_kind: String,
    pub trigger_stage: Option<String>,
    pub trigger_count: Option<i32>,
    pub period_days: Option<i32>,
    pub holdout_percent: i16,
    pub message: serde_json::Value,
    pub bonus_points: i64,
    pub bonus_expire_days: Option<i32>,
    pub offer: Option<serde_json::Value>,
    pub attribution_days: i32,
    pub cost_per_message: i64,
    pub enabled: bool,
    pub active_since: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AutomationRow {
    fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> Result<Self, ApiError> {
        automations::table
            .filter(automations::merchant_id.eq(tenant.merchant_id()))
            .filter(automations::id.eq(id))
            .select(AutomationRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::not_found("no such automation"))
    }

    /// The trigger as stored (the table's checks keep the columns consistent).
    pub fn trigger(&self) -> Trigger {
        match self.trigger_kind.as_str() {
            "stage_entered" => Trigger::StageEntered {
                stage: self.trigger_stage.clone().unwrap_or_default(),
            },
            "nth_purchase" => Trigger::NthPurchase {
                n: i64::from(self.trigger_count.unwrap_or(1)),
            },
            "birthday" => Trigger::Birthday,
            _ => Trigger::FirstPurchase,
        }
    }

    pub fn texts(&self) -> BTreeMap<String, MessageText> {
        super::stored_texts(&self.message)
    }

    pub fn offer_parsed(&self) -> Option<Offer> {
        super::stored_offer(self.offer.as_ref())
    }
}

/// Sent firings against held-out ones, each over its own attribution window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AutomationResults {
    /// Sent firings: members count once per firing.
    pub sent: GroupResult,
    pub holdout: GroupResult,
    #[serde(flatten)]
    pub uplift: results::Uplift,
}

/// An automation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AutomationView {
    pub id: Uuid,
    pub program_id: Uuid,
    pub name: String,
    pub trigger: Trigger,
    /// Days before the same member can be fired again; null: never again.
    pub period_days: Option<i32>,
    pub holdout_percent: i16,
    pub message: BTreeMap<String, MessageText>,
    pub bonus_points: i64,
    pub bonus_expire_days: Option<i32>,
    pub offer: Option<Offer>,
    pub attribution_days: i32,
    pub cost_per_message: i64,
    pub enabled: bool,
    /// Events from this instant on fire (creation, or the last resume).
    pub active_since: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Firings so far: `targeted` counts firings (a member fired in two periods twice).
    #[serde(flatten)]
    pub counts: Counts,
    /// Null in lists.
    pub results: Option<AutomationResults>,
}

impl AutomationView {
    fn of(row: AutomationRow, counts: Counts, results: Option<AutomationResults>) -> Self {
        AutomationView {
            trigger: row.trigger(),
            message: row.texts(),
            offer: row.offer_parsed(),
            id: row.id,
            program_id: row.program_id,
            name: row.name,
            period_days: row.period_days,
            holdout_percent: row.holdout_percent,
            bonus_points: row.bonus_points,
            bonus_expire_days: row.bonus_expire_days,
            attribution_days: row.attribution_days,
            cost_per_message: row.cost_per_message,
            enabled: row.enabled,
            active_since: row.active_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
            counts,
            results,
        }
    }
}

fn check_name(problems: &mut Vec<FieldProblem>, name: Option<&String>) -> Option<String> {
    let name = name?.trim();
    let n = name.chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) {
        problems.push(FieldProblem::new(
            "/name",
            "1 to 100 characters, no control characters",
        ));
    }
    Some(name.to_string())
}

fn check_days(problems: &mut Vec<FieldProblem>, pointer: &str, days: Option<i64>) {
    if let Some(d) = days {
        problems.extend(crate::domain::ranges::check(
            pointer,
            d,
            1..=MAX_DAYS,
            false,
        ));
    }
}

/// Creates an automation of a program as of `now`: it fires for what happens from now on.
pub fn create(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    req: &NewAutomation,
    now: DateTime<Utc>,
) -> Result<AutomationView, ApiError> {
    let program = Program::find(conn, tenant, program_id)
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such program"))?;
    let mut problems = Vec::new();
    let name = check_name(&mut problems, req.name.as_ref());
    let (stage, count) = match &req.trigger {
        Trigger::StageEntered { stage } => {
            if Stage::parse(stage).is_none() {
                problems.push(FieldProblem::new(
                    "/trigger/stage",
                    "a lifecycle stage, e.g. cooling",
                ));
            }
            (Some(stage.clone()), None)
        }
        Trigger::NthPurchase { n } => {
            problems.extend(crate::domain::ranges::check(
                "/trigger/n",
                *n,
                2..=1000,
                false,
            ));
            (None, Some((*n).clamp(2, 1000) as i32))
        }
        Trigger::FirstPurchase | Trigger::Birthday => (None, None),
    };
    check_days(&mut problems, "/period_days", req.period_days);
    check_days(&mut problems, "/bonus_expire_days", req.bonus_expire_days);
    let content = check_content(
        &mut problems,
        &program,
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
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    let period = req.period_days.or(req.trigger.default_period());
    let row: AutomationRow = diesel::insert_into(automations::table)
        .values((
            automations::id.eq(Uuid::new_v4()),
            automations::merchant_id.eq(tenant.merchant_id()),
            automations::program_id.eq(program.id),
            automations::name.eq(name.unwrap_or_else(|| req.trigger.kind().to_string())),
            automations::trigger_kind.eq(req.trigger.kind()),
            automations::trigger_stage.eq(stage),
            automations::trigger_count.eq(count),
            automations::period_days.eq(period.map(|p| p as i32)),
            automations::holdout_percent.eq(content.holdout_percent),
            automations::message.eq(to_json(&content.message)),
            automations::bonus_points.eq(content.bonus_points),
            automations::bonus_expire_days.eq(req.bonus_expire_days.map(|d| d as i32)),
            automations::offer.eq(content.offer.as_ref().map(to_json)),
            automations::attribution_days.eq(content.attribution_days),
            automations::cost_per_message.eq(content.cost_per_message),
            automations::enabled.eq(req.enabled.unwrap_or(true)),
            automations::active_since.eq(now),
            automations::created_at.eq(now),
            automations::updated_at.eq(now),
        ))
        .returning(AutomationRow::as_returning())
        .get_result(conn)?;
    Ok(AutomationView::of(row, Counts::default(), None))
}

/// The counts of these automations' firings.
fn counts(
    conn: &mut PgConnection,
    tenant: &Tenant,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Counts>> {
    results::counts_of(conn, tenant, results::Table::Automations, ids)
}

/// One automation with its counts and its results as of now.
pub fn get(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> Result<AutomationView, ApiError> {
    let row = AutomationRow::find(conn, tenant, id)?;
    let c = counts(conn, tenant, &[row.id])?
        .remove(&row.id)
        .unwrap_or_default();
    let point_value = Program::find(conn, tenant, row.program_id)?.point_value();
    let recipients = Recipients::Automation {
        id: row.id,
        attribution_days: row.attribution_days,
    };
    let (sent, holdout) = results::groups(conn, tenant, &recipients)?;
    let cost = results::Cost::of(row.bonus_points, row.cost_per_message, c.sent, point_value);
    let uplift = results::uplift(&sent, &holdout, cost);
    let results = AutomationResults {
        sent,
        holdout,
        uplift,
    };
    Ok(AutomationView::of(row, c, Some(results)))
}

/// Pauses, resumes or renames an automation (the same change again answers the same).
pub fn change(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: Uuid,
    req: &AutomationChange,
    now: DateTime<Utc>,
) -> Result<AutomationView, ApiError> {
    let mut problems = Vec::new();
    let name = check_name(&mut problems, req.name.as_ref());
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    conn.transaction(|conn| {
        // The worker holds the row while it fires: a pause waits for that run to end.
        let row: AutomationRow = automations::table
            .filter(automations::merchant_id.eq(tenant.merchant_id()))
            .filter(automations::id.eq(id))
            .for_update()
            .select(AutomationRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::not_found("no such automation"))?;
        let resumed = req.enabled == Some(true) && !row.enabled;
        let enabled = req.enabled.unwrap_or(row.enabled);
        let name = name.unwrap_or(row.name.clone());
        if enabled != row.enabled || name != row.name {
            diesel::update(automations::table.find(row.id))
                .filter(automations::merchant_id.eq(tenant.merchant_id()))
                .set((
                    automations::enabled.eq(enabled),
                    automations::name.eq(&name),
                    automations::updated_at.eq(now),
                    // What happened while paused is not caught up on.
                    automations::active_since.eq(if resumed { now } else { row.active_since }),
                ))
                .execute(conn)?;
        }
        get(conn, tenant, id)
    })
}

/// A page of a program's automations, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AutomationPage {
    pub automations: Vec<AutomationView>,
    pub next_cursor: Option<String>,
}

/// The automations of a program, newest first, with their counts.
pub fn list(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    paging: &Paging<DateTime<Utc>>,
) -> Result<AutomationPage, ApiError> {
    Program::find(conn, tenant, program_id)
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such program"))?;
    let mut q = automations::table
        .filter(automations::merchant_id.eq(tenant.merchant_id()))
        .filter(automations::program_id.eq(program_id))
        .into_boxed();
    if let Some((at, id)) = paging.after {
        q = q.filter(
            automations::created_at
                .lt(at)
                .or(automations::created_at.eq(at).and(automations::id.lt(id))),
        );
    }
    let rows: Vec<AutomationRow> = q
        .order((automations::created_at.desc(), automations::id.desc()))
        .limit(paging.fetch())
        .select(AutomationRow::as_select())
        .load(conn)?;
    let (rows, next_cursor) = paging.finish(rows, |r| (r.created_at, r.id));
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut counts = counts(conn, tenant, &ids)?;
    let automations = rows
        .into_iter()
        .map(|r| {
            let c = counts.remove(&r.id).unwrap_or_default();
            AutomationView::of(r, c, None)
        })
        .collect();
    Ok(AutomationPage {
        automations,
        next_cursor,
    })
}
