//! NPS surveys: a program's rule picks purchases (a delay after each, a share of them, at
//! most one invitation per member in N days); each chosen purchase gets an invitation whose
//! secret link goes onto the member's pass as a message (back field and lock screen); the
//! public survey page takes one answer per invitation. NPS figures are in the analytics
//! report (docs/ANALYTICS.md).

use crate::db::Tenant;
use crate::models::Program;
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use crate::schema::{survey_answers, survey_invitations, survey_rules};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Timestamptz, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Purchases whose invitation fell due longer ago than this are not surveyed any more (a
/// worker stopped for a week does not send a week of old surveys).
const LATE_DAYS: i32 = 2;
/// Invitations made per run, at most.
const BATCH: i64 = 1000;
/// Length of a survey link's secret (alphanumeric, about 190 bits).
const TOKEN_LEN: usize = 32;
/// Longest comment kept.
pub const MAX_COMMENT: usize = 1000;

/// A program's survey rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Minutes after a purchase the invitation goes; default 120.
    #[serde(default = "default_delay")]
    #[schema(minimum = 0, maximum = 43200)]
    pub delay_minutes: i32,
    /// Percent of purchases that invite; default 100.
    #[serde(default = "default_share")]
    #[schema(minimum = 1, maximum = 100)]
    pub share_percent: i16,
    /// At most one invitation per member in this many days; default 90.
    #[serde(default = "default_every")]
    #[schema(minimum = 1, maximum = 3650)]
    pub every_days: i32,
}

fn default_delay() -> i32 {
    120
}
fn default_share() -> i16 {
    100
}
fn default_every() -> i32 {
    90
}

impl Rule {
    fn problems(&self) -> Vec<FieldProblem> {
        let mut p = Vec::new();
        if !(0..=43200).contains(&self.delay_minutes) {
            p.push(FieldProblem::new(
                "/delay_minutes",
                "a whole number from 0 to 43200",
            ));
        }
        if !(1..=100).contains(&self.share_percent) {
            p.push(FieldProblem::new(
                "/share_percent",
                "a whole number from 1 to 100",
            ));
        }
        if !(1..=3650).contains(&self.every_days) {
            p.push(FieldProblem::new(
                "/every_days",
                "a whole number from 1 to 3650",
            ));
        }
        p
    }
}

/// Sets (or replaces) a program's rule as of `now`: purchases from `now` on are surveyed.
pub fn set_rule(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Result<Rule, ApiError> {
    let problems = rule.problems();
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    Program::find(conn, tenant, program_id)?;
    diesel::insert_into(survey_rules::table)
        .values((
            survey_rules::program_id.eq(program_id),
            survey_rules::merchant_id.eq(tenant.merchant_id()),
            survey_rules::delay_minutes.eq(rule.delay_minutes),
            survey_rules::share_percent.eq(rule.share_percent),
            survey_rules::every_days.eq(rule.every_days),
            survey_rules::since.eq(now),
            survey_rules::updated_at.eq(now),
        ))
        .on_conflict(survey_rules::program_id)
        .do_update()
        .set((
            survey_rules::delay_minutes.eq(rule.delay_minutes),
            survey_rules::share_percent.eq(rule.share_percent),
            survey_rules::every_days.eq(rule.every_days),
            survey_rules::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(rule.clone())
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = SqlUuid)]
    merchant_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    program_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    purchase_id: Uuid,
}

/// The survey page of a link's secret.
pub fn survey_path(token: &str) -> String {
    format!("/s/{token}")
}

/// The invitation's header on the pass (the body carries the link).
const HEADER: &str = "How was your visit? / Как вам у нас?";

/// Invites the members whose purchases are due as of `now`, one transaction for the
/// batch; returns how many were invited. Runs under a transaction-wide advisory lock, so
/// two workers never judge "once per N days" on the same member at the same time.
pub fn invite_due(
    conn: &mut PgConnection,
    channels: Channels,
    public_url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    conn.transaction(|conn| {
        // First key "sv" (0x7376): the survey job, one at a time.
        diesel::sql_query("SELECT pg_advisory_xact_lock(29558, 0)").execute(conn)?;
        // A purchase is chosen when the first 28 bits of md5(its id) fall in the share:
        // stable across runs, independent of order. One per member (the earliest), and
        // none for a member invited within `every_days` before it.
        let due: Vec<Due> = diesel::sql_query(
            "SELECT DISTINCT ON (x.member_id) r.merchant_id, r.program_id, x.member_id,
                    x.id AS purchase_id
               FROM survey_rules r
               JOIN members m ON m.program_id = r.program_id AND m.merchant_id = r.merchant_id
                                AND m.erased_at IS NULL
               JOIN purchases x ON x.member_id = m.id AND x.merchant_id = r.merchant_id
              WHERE x.purchased_at >= r.since
                AND x.purchased_at <= $1 - make_interval(mins => r.delay_minutes)
                AND x.purchased_at > $1 - make_interval(mins => r.delay_minutes)
                                        - make_interval(days => $2)
                AND x.refunded_amount < x.amount
                AND EXISTS (SELECT 1 FROM passes s
                             WHERE s.member_id = x.member_id AND s.merchant_id = r.merchant_id)
                AND ('x' || substr(md5(x.id::text), 1, 7))::bit(28)::int % 100
                    < r.share_percent
                AND NOT EXISTS (SELECT 1 FROM survey_invitations i
                                 WHERE i.member_id = x.member_id
                                   AND i.invited_at > $1 - make_interval(days => r.every_days))
              ORDER BY x.member_id, x.purchased_at, x.id
              LIMIT $3",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<Integer, _>(LATE_DAYS)
        .bind::<diesel::sql_types::BigInt, _>(BATCH)
        .load(conn)?;
        // The members locked in id order, as tills and the other jobs take them: an
        // erasure under way is waited for and its member left out.
        let mut due = due;
        due.sort_by_key(|d| d.member_id);
        let mut messages = crate::pass_events::Messages::default();
        for d in due {
            let tenant = Tenant::of_authenticated(d.merchant_id);
            match crate::loyalty::ledger::lock_member(conn, &tenant, d.member_id) {
                Ok(()) => {}
                Err(e) if e.kind == crate::problem::ProblemKind::Gone => continue,
                Err(e) => return Err(anyhow::anyhow!("survey invitation: {}", e.detail)),
            }
            let token = crate::domain::tokens::secret(TOKEN_LEN);
            let fresh = diesel::insert_into(survey_invitations::table)
                .values((
                    survey_invitations::id.eq(Uuid::new_v4()),
                    survey_invitations::merchant_id.eq(d.merchant_id),
                    survey_invitations::program_id.eq(d.program_id),
                    survey_invitations::member_id.eq(d.member_id),
                    survey_invitations::purchase_id.eq(d.purchase_id),
                    survey_invitations::token_hash.eq(crate::staff::secret_hash(&token)),
                    survey_invitations::invited_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            if fresh == 0 {
                continue;
            }
            let url = format!("{public_url}{}", survey_path(&token));
            messages.push(
                d.merchant_id,
                d.member_id,
                HEADER.to_string(),
                format!("Rate us from 0 to 10 / Оцените нас от 0 до 10: {url}"),
            );
        }
        // The messages in one statement: each pass's back field and its change message
        // on the lock screen (members without a pass were not chosen above).
        let invited = if messages.is_empty() {
            0
        } else {
            crate::pass_events::messages_posted(conn, &messages, now, "message", channels.all())?
                .len()
        };
        Ok(invited)
    })
}

/// An invitation found by its link's secret, and whether it was answered.
pub struct Found {
    pub invitation_id: Uuid,
    pub merchant_id: Uuid,
    pub program_id: Uuid,
    pub answered: bool,
}

pub fn find(conn: &mut PgConnection, token: &str) -> QueryResult<Option<Found>> {
    if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let row: Option<(Uuid, Uuid, Uuid)> = survey_invitations::table
        .filter(survey_invitations::token_hash.eq(crate::staff::secret_hash(token)))
        .select((
            survey_invitations::id,
            survey_invitations::merchant_id,
            survey_invitations::program_id,
        ))
        .first(conn)
        .optional()?;
    let Some((invitation_id, merchant_id, program_id)) = row else {
        return Ok(None);
    };
    let answered = survey_answers::table
        .find(invitation_id)
        .count()
        .get_result::<i64>(conn)?
        > 0;
    Ok(Some(Found {
        invitation_id,
        merchant_id,
        program_id,
        answered,
    }))
}

/// Records the one answer of an invitation; false when it had one already.
pub fn answer(
    conn: &mut PgConnection,
    found: &Found,
    score: i16,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let comment = comment
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(MAX_COMMENT).collect::<String>());
    let n = diesel::insert_into(survey_answers::table)
        .values((
            survey_answers::invitation_id.eq(found.invitation_id),
            survey_answers::merchant_id.eq(found.merchant_id),
            survey_answers::program_id.eq(found.program_id),
            survey_answers::score.eq(score.clamp(0, 10)),
            survey_answers::comment.eq(comment),
            survey_answers::answered_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(n == 1)
}

/// A comment a member left, for the merchant.
#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct Comment {
    pub score: i16,
    pub comment: Option<String>,
    pub answered_at: DateTime<Utc>,
}

/// The program's latest answers with a comment (at most 100).
pub fn comments(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
) -> QueryResult<Vec<Comment>> {
    survey_answers::table
        .filter(survey_answers::merchant_id.eq(tenant.merchant_id()))
        .filter(survey_answers::program_id.eq(program_id))
        .filter(survey_answers::comment.is_not_null())
        .order(survey_answers::answered_at.desc())
        .limit(100)
        .select((
            survey_answers::score,
            survey_answers::comment,
            survey_answers::answered_at,
        ))
        .load(conn)
}
