//! Segments: who the customers are by what they bought. Each member's RFM scores
//! ([`rfm`]) and lifecycle stage ([`stages`]) are computed from the purchases (net of
//! returns) and kept in `member_segments`: for one member in the transaction of each
//! purchase and return ([`member_changed`]), and for everyone by the full recompute
//! ([`recompute`], the `segments` job and `POST /programs/{id}/segments/recompute`), which
//! alone sets a program's RFM cut points and moves stages that change with time alone.
//!
//! Both paths run the same SQL ([`member_statement`]), so an incremental answer is what a
//! full run as of the same instant would give, against the same cut points. Every stage
//! change is appended to `member_stage_changes`.

pub mod rfm;
pub mod stages;

use crate::db::Tenant;
use crate::problem::{ApiError, FieldProblem};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
pub use rfm::{Group, Thresholds};
use serde::{Deserialize, Serialize};
pub use stages::Stage;
use std::collections::HashMap;
use uuid::Uuid;

/// A program's segment settings (`programs.segments`), every one optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// No `deny_unknown_fields`: a program's answer flattens this beside its other fields, and
// utoipa would document that as `additionalProperties: false`, refusing those fields.
pub struct Settings {
    /// Days of purchases RFM looks at, up to now; 365 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub rfm_window_days: Option<i64>,
    /// The merchant's RFM cut points; tertiles of the program's buyers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rfm_thresholds: Option<Thresholds>,
    /// Days without a purchase after which a member with fewer than 3 purchases is
    /// `cooling`; 60 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub cooling_days: Option<i64>,
    /// ... and `lapsed`; 180 when absent. More than `cooling_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 2, maximum = 3650)]
    pub lapsed_days: Option<i64>,
}

impl Settings {
    pub fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        for (key, v) in [
            ("rfm_window_days", self.rfm_window_days),
            ("cooling_days", self.cooling_days),
            ("lapsed_days", self.lapsed_days),
        ] {
            if let Some(v) = v {
                out.extend(crate::domain::ranges::check(
                    &format!("/{key}"),
                    v,
                    1..=3650,
                    false,
                ));
            }
        }
        let cooling = self.cooling_days.unwrap_or(stages::DEFAULT_COOLING_DAYS);
        let lapsed = self.lapsed_days.unwrap_or(stages::DEFAULT_LAPSED_DAYS);
        if out.is_empty() && lapsed <= cooling {
            out.push(FieldProblem::new(
                "/lapsed_days",
                format!("more days than cooling_days ({cooling})"),
            ));
        }
        if let Some(t) = &self.rfm_thresholds {
            out.extend(t.problems());
        }
        out
    }

    /// As stored; a row written before the check reads as no settings.
    pub fn of(stored: &serde_json::Value) -> Settings {
        serde_json::from_value(stored.clone()).unwrap_or_default()
    }
}

/// A member's RFM scores, as every member answer carries them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rfm {
    /// Recency 1-3, 3 the most recent.
    pub r: i16,
    /// Frequency 1-3, 3 the most purchases.
    pub f: i16,
    /// Money 1-3, 3 the most spent.
    pub m: i16,
    /// The three digits, e.g. "311".
    #[schema(example = "311")]
    pub cell: String,
    pub group: Group,
}

/// What a member answer says of the member's segments.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSegment {
    pub rfm: Option<Rfm>,
    pub stage: Stage,
}

impl Default for MemberSegment {
    /// A member without any purchase.
    fn default() -> Self {
        MemberSegment {
            rfm: None,
            stage: Stage::Registered,
        }
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Nullable<SmallInt>)]
    r: Option<i16>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    f: Option<i16>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    m: Option<i16>,
    #[diesel(sql_type = Text)]
    rfm_group: String,
    #[diesel(sql_type = Text)]
    stage: String,
}

impl Row {
    fn segment(self) -> MemberSegment {
        let rfm = match (self.r, self.f, self.m) {
            (Some(r), Some(f), Some(m)) => Some(Rfm {
                r,
                f,
                m,
                cell: format!("{r}{f}{m}"),
                group: Group::parse(&self.rfm_group).unwrap_or(Group::NoPurchases),
            }),
            _ => None,
        };
        MemberSegment {
            rfm,
            stage: Stage::parse(&self.stage).unwrap_or(Stage::Registered),
        }
    }
}

/// The segments of these members (a member without a row has never bought).
pub fn of_members(
    conn: &mut PgConnection,
    tenant: &Tenant,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, MemberSegment>> {
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT member_id, r, f, m, rfm_group, stage FROM member_segments
          WHERE merchant_id = $1 AND member_id = ANY($2)",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.member_id, r.segment()))
        .collect())
}

/// One member's segments.
pub fn of_member(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<MemberSegment> {
    Ok(of_members(conn, tenant, &[id])?
        .remove(&id)
        .unwrap_or_default())
}

/// The raw values of the members `filter` (a condition on `members m`) selects, as of $1:
/// `raw` has one row per member with a purchase not returned in full made by then.
fn raw_cte(filter: &str) -> String {
    format!(
        "live AS (
             SELECT m.id AS member_id, m.merchant_id, m.program_id, pu.id, pu.purchased_at AS t,
                    pu.amount - pu.refunded_amount AS net,
                    pu.purchased_at > $1 - make_interval(days =>
                        coalesce((pr.segments->>'rfm_window_days')::int, {window})) AS in_window
               FROM purchases pu
               JOIN members m ON m.id = pu.member_id AND m.merchant_id = pu.merchant_id
               JOIN programs pr ON pr.id = m.program_id
              WHERE pu.refunded_amount < pu.amount AND pu.purchased_at <= $1 AND {filter}),
         seq AS (
             SELECT l.*, extract(epoch FROM l.t - lag(l.t) OVER w)::float8 AS gap,
                    row_number() OVER w AS k, count(*) OVER (PARTITION BY l.member_id) AS n
               FROM live l WINDOW w AS (PARTITION BY l.member_id ORDER BY l.t, l.id)),
         raw AS (
             SELECT member_id, merchant_id, program_id, max(n) AS n, max(t) AS last_at,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) FILTER (WHERE k > 1) AS med,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY gap)
                        FILTER (WHERE k > 1 AND k < n) AS med_before,
                    max(gap) FILTER (WHERE k = n AND k > 1) AS last_gap,
                    count(*) FILTER (WHERE in_window) AS wf,
                    coalesce(sum(net) FILTER (WHERE in_window), 0)::bigint AS wm,
                    max(t) FILTER (WHERE in_window) AS wlast
               FROM seq GROUP BY member_id, merchant_id, program_id)",
        window = rfm::DEFAULT_WINDOW_DAYS,
    )
}

/// Sets the RFM cut points of the programs `programs` (a condition on `programs pr`) from
/// their buyers selected by `members`, as of $1: the merchant's thresholds when set, else
/// tertiles by percent rank (docs/SEGMENTS.md), in integers so that no rounding decides a
/// border. `overwrite: false` only fills in a program that has none yet.
fn thresholds_statement(members: &str, programs: &str, overwrite: bool) -> String {
    let on_conflict = if overwrite {
        "DO UPDATE SET source = EXCLUDED.source, window_days = EXCLUDED.window_days,
             buyers = EXCLUDED.buyers, r3_days = EXCLUDED.r3_days, r2_days = EXCLUDED.r2_days,
             f3 = EXCLUDED.f3, f2 = EXCLUDED.f2, m3 = EXCLUDED.m3, m2 = EXCLUDED.m2,
             computed_at = EXCLUDED.computed_at"
    } else {
        "DO NOTHING"
    };
    format!(
        "WITH {raw},
         buyers AS (
             SELECT program_id, floor(extract(epoch FROM $1 - wlast) / 86400)::int AS d, wf, wm
               FROM raw WHERE wf > 0),
         ranked AS (
             SELECT b.*, count(*) OVER (PARTITION BY program_id) - 1 AS n1,
                    rank() OVER (PARTITION BY program_id ORDER BY d DESC) - 1 AS rr,
                    rank() OVER (PARTITION BY program_id ORDER BY wf) - 1 AS rf,
                    rank() OVER (PARTITION BY program_id ORDER BY wm) - 1 AS rm
               FROM buyers b),
         tert AS (
             SELECT program_id, count(*) AS buyers,
                    max(d) FILTER (WHERE n1 > 0 AND 3 * rr >= 2 * n1) AS r3,
                    max(d) FILTER (WHERE n1 > 0 AND 3 * rr >= n1) AS r2,
                    min(wf) FILTER (WHERE n1 > 0 AND 3 * rf >= 2 * n1) AS f3,
                    min(wf) FILTER (WHERE n1 > 0 AND 3 * rf >= n1) AS f2,
                    min(wm) FILTER (WHERE n1 > 0 AND 3 * rm >= 2 * n1) AS m3,
                    min(wm) FILTER (WHERE n1 > 0 AND 3 * rm >= n1) AS m2
               FROM ranked GROUP BY program_id),
         cut AS (
             SELECT pr.id, pr.merchant_id, pr.segments->'rfm_thresholds' AS own,
                    coalesce((pr.segments->>'rfm_window_days')::int, {window}) AS window_days,
                    coalesce(t.buyers, 0) AS buyers, t.r3, t.r2, t.f3, t.f2, t.m3, t.m2
               FROM programs pr LEFT JOIN tert t ON t.program_id = pr.id WHERE {programs})
         INSERT INTO program_rfm (program_id, merchant_id, source, window_days, buyers,
                                  r3_days, r2_days, f3, f2, m3, m2, computed_at)
         SELECT id, merchant_id, CASE WHEN own IS NULL THEN 'tertiles' ELSE 'merchant' END,
                window_days, buyers,
                CASE WHEN own IS NULL THEN r3 ELSE (own #>> '{{recency_days,0}}')::int END,
                CASE WHEN own IS NULL THEN r2 ELSE (own #>> '{{recency_days,1}}')::int END,
                CASE WHEN own IS NULL THEN f3 ELSE (own #>> '{{frequency,0}}')::bigint END,
                CASE WHEN own IS NULL THEN f2 ELSE (own #>> '{{frequency,1}}')::bigint END,
                CASE WHEN own IS NULL THEN m3 ELSE (own #>> '{{monetary,0}}')::bigint END,
                CASE WHEN own IS NULL THEN m2 ELSE (own #>> '{{monetary,1}}')::bigint END,
                $1
           FROM cut
         ON CONFLICT (program_id) {on_conflict}",
        raw = raw_cte(members),
        window = rfm::DEFAULT_WINDOW_DAYS,
    )
}

/// Recomputes the members `filter` (a condition on `members m`) selects as of $1: their
/// raw values, scores against the stored cut points, group and stage. A row is written
/// only when something changed and no other write touched it since this statement read
/// it (`version`); a stage that changed is appended to `member_stage_changes`. Answers
/// the rows written and the stage changes.
fn member_statement(filter: &str) -> String {
    format!(
        "WITH {raw},
         cur AS (
             SELECT s.member_id, s.merchant_id, s.program_id, s.version, s.stage, s.stage_at
               FROM member_segments s JOIN members m ON m.id = s.member_id WHERE {filter}),
         calc AS (
             SELECT coalesce(r.member_id, c.member_id) AS member_id,
                    coalesce(r.merchant_id, c.merchant_id) AS merchant_id,
                    coalesce(r.program_id, c.program_id) AS program_id,
                    coalesce(r.n, 0) AS n, r.last_at, r.med, r.med_before, r.last_gap,
                    coalesce(r.wf, 0) AS wf, coalesce(r.wm, 0) AS wm, r.wlast,
                    coalesce(c.version, 0) AS seen_version,
                    coalesce(c.stage, 'registered') AS seen_stage, c.stage_at AS seen_stage_at
               FROM raw r FULL JOIN cur c ON c.member_id = r.member_id),
         timed AS (
             SELECT c.*, th.r3_days, th.r2_days, th.f3, th.f2, th.m3, th.m2,
                    CASE WHEN c.n >= 3 THEN greatest(1.5 * c.med, 86400)
                         ELSE 86400.0 * coalesce((pr.segments->>'cooling_days')::int, {cooling})
                    END AS cool,
                    CASE WHEN c.n >= 3 THEN greatest(3 * c.med, 86400)
                         ELSE 86400.0 * coalesce((pr.segments->>'lapsed_days')::int, {lapsed})
                    END AS lapse,
                    CASE WHEN c.n >= 4 THEN greatest(3 * c.med_before, 86400)
                         ELSE 86400.0 * coalesce((pr.segments->>'lapsed_days')::int, {lapsed})
                    END AS lapse_before,
                    extract(epoch FROM $1 - c.last_at)::float8 AS silence,
                    floor(extract(epoch FROM $1 - c.wlast) / 86400)::int AS d
               FROM calc c JOIN programs pr ON pr.id = c.program_id
               LEFT JOIN program_rfm th ON th.program_id = c.program_id),
         judged AS (
             SELECT t.*,
                    CASE WHEN t.n = 0 THEN 'registered'
                         WHEN t.silence > t.lapse THEN 'lapsed'
                         WHEN t.silence > t.cool THEN 'cooling'
                         WHEN t.n = 1 THEN 'first_purchase'
                         WHEN t.last_gap > t.lapse_before THEN 'reactivated'
                         ELSE 'repeat' END AS stage,
                    (CASE WHEN t.wf = 0 THEN NULL WHEN t.d <= t.r3_days THEN 3
                          WHEN t.d <= t.r2_days THEN 2 ELSE 1 END)::smallint AS r,
                    (CASE WHEN t.wf = 0 THEN NULL WHEN t.wf >= t.f3 THEN 3
                          WHEN t.wf >= t.f2 THEN 2 ELSE 1 END)::smallint AS f,
                    (CASE WHEN t.wf = 0 THEN NULL WHEN t.wm >= t.m3 THEN 3
                          WHEN t.wm >= t.m2 THEN 2 ELSE 1 END)::smallint AS m
               FROM timed t),
         final AS (
             SELECT j.*, {group} AS rfm_group,
                    CASE WHEN j.stage = j.seen_stage AND j.seen_stage_at IS NOT NULL THEN j.seen_stage_at
                         WHEN j.stage = 'lapsed' THEN j.last_at + make_interval(secs => j.lapse)
                         WHEN j.stage = 'cooling' THEN j.last_at + make_interval(secs => j.cool)
                         WHEN j.stage = 'registered' THEN $1
                         ELSE j.last_at END AS stage_at
               FROM judged j),
         up AS (
             INSERT INTO member_segments AS s (member_id, merchant_id, program_id, purchases,
                    last_purchase_at, window_purchases, window_money, window_last_at, r, f, m,
                    rfm_group, stage, stage_at, version, computed_at)
             SELECT member_id, merchant_id, program_id, n, last_at, wf, wm, wlast, r, f, m,
                    rfm_group, stage, stage_at, seen_version + 1, $1
               FROM final
             ON CONFLICT (member_id) DO UPDATE SET purchases = EXCLUDED.purchases,
                    last_purchase_at = EXCLUDED.last_purchase_at,
                    window_purchases = EXCLUDED.window_purchases,
                    window_money = EXCLUDED.window_money,
                    window_last_at = EXCLUDED.window_last_at, r = EXCLUDED.r, f = EXCLUDED.f,
                    m = EXCLUDED.m, rfm_group = EXCLUDED.rfm_group, stage = EXCLUDED.stage,
                    stage_at = EXCLUDED.stage_at, version = s.version + 1,
                    computed_at = EXCLUDED.computed_at
              WHERE s.version = EXCLUDED.version - 1
                AND (s.purchases, s.last_purchase_at, s.window_purchases, s.window_money,
                     s.window_last_at, s.r, s.f, s.m, s.rfm_group, s.stage, s.stage_at)
                    IS DISTINCT FROM
                    (EXCLUDED.purchases, EXCLUDED.last_purchase_at, EXCLUDED.window_purchases,
                     EXCLUDED.window_money, EXCLUDED.window_last_at, EXCLUDED.r, EXCLUDED.f,
                     EXCLUDED.m, EXCLUDED.rfm_group, EXCLUDED.stage, EXCLUDED.stage_at)
             RETURNING s.member_id, s.merchant_id, s.program_id, s.stage, s.stage_at),
         changed AS (
             INSERT INTO member_stage_changes (merchant_id, program_id, member_id, from_stage,
                                               to_stage, at, recorded_at)
             SELECT u.merchant_id, u.program_id, u.member_id, f.seen_stage, u.stage, u.stage_at, $1
               FROM up u JOIN final f ON f.member_id = u.member_id
              WHERE f.seen_stage <> u.stage
             RETURNING 1)
         SELECT (SELECT count(*) FROM up) AS written, (SELECT count(*) FROM changed) AS changes",
        raw = raw_cte(filter),
        cooling = stages::DEFAULT_COOLING_DAYS,
        lapsed = stages::DEFAULT_LAPSED_DAYS,
        group = rfm::group_case_sql("j.r::text || j.f::text || j.m::text"),
    )
}

#[derive(
    QueryableByName, Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema,
)]
pub struct Recomputed {
    /// Members whose scores, group or stage changed.
    #[diesel(sql_type = BigInt)]
    pub written: i64,
    /// Stage changes recorded.
    #[diesel(sql_type = BigInt)]
    pub changes: i64,
}

impl std::ops::AddAssign for Recomputed {
    fn add_assign(&mut self, o: Self) {
        self.written += o.written;
        self.changes += o.changes;
    }
}

/// Brings one member's segments up to date as of `now`, in the caller's transaction (a
/// purchase's or a return's, which holds the member's lock). The program's cut points are
/// the last full run's; a program that has none yet gets them first.
pub fn member_changed(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    #[derive(QueryableByName)]
    struct Missing {
        #[diesel(sql_type = SqlUuid)]
        program_id: Uuid,
    }
    let missing: Option<Missing> = diesel::sql_query(
        "SELECT m.program_id FROM members m
          WHERE m.id = $1 AND m.merchant_id = $2
            AND NOT EXISTS (SELECT 1 FROM program_rfm t WHERE t.program_id = m.program_id)",
    )
    .bind::<SqlUuid, _>(member_id)
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .get_result(conn)
    .optional()?;
    if let Some(Missing { program_id }) = missing {
        diesel::sql_query(thresholds_statement(
            "m.program_id = $2 AND m.merchant_id = $3",
            "pr.id = $2 AND pr.merchant_id = $3",
            false,
        ))
        .bind::<Timestamptz, _>(now)
        .bind::<SqlUuid, _>(program_id)
        .bind::<SqlUuid, _>(tenant.merchant_id())
        .execute(conn)?;
    }
    diesel::sql_query(member_statement("m.id = $2 AND m.merchant_id = $3"))
        .bind::<Timestamptz, _>(now)
        .bind::<SqlUuid, _>(member_id)
        .bind::<SqlUuid, _>(tenant.merchant_id())
        .get_result::<Recomputed>(conn)?;
    Ok(())
}

/// Members recomputed per transaction by the full run.
pub const BATCH: i64 = 20_000;
/// The advisory lock a full run's transactions take (any fixed number of ours): two
/// workers take turns instead of racing through the same rows.
const LOCK: i64 = 0x7061_7373_7365_6731; // "passseg1"

/// Which programs a full run covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    All,
    Program(Uuid, Uuid),
}

/// The full recompute as of `now`: each program's cut points from its buyers (or its
/// merchant's thresholds), then every member in batches of [`BATCH`], one transaction
/// each (a purchase waits for at most one batch). Idempotent at an instant.
pub fn recompute(
    conn: &mut PgConnection,
    scope: Scope,
    now: DateTime<Utc>,
) -> QueryResult<Recomputed> {
    // Long statements are the job's nature here; the pool's timeout is for requests.
    let unbounded = "SET LOCAL statement_timeout = 0";
    conn.transaction(|conn| {
        diesel::sql_query(unbounded).execute(conn)?;
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(LOCK)
            .execute(conn)?;
        match scope {
            Scope::All => diesel::sql_query(thresholds_statement("TRUE", "TRUE", true))
                .bind::<Timestamptz, _>(now)
                .execute(conn),
            Scope::Program(merchant, program) => diesel::sql_query(thresholds_statement(
                "m.program_id = $2 AND m.merchant_id = $3",
                "pr.id = $2 AND pr.merchant_id = $3",
                true,
            ))
            .bind::<Timestamptz, _>(now)
            .bind::<SqlUuid, _>(program)
            .bind::<SqlUuid, _>(merchant)
            .execute(conn),
        }
    })?;
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let mut after = Uuid::nil();
    let mut done = Recomputed::default();
    loop {
        let (program, merchant) = match scope {
            Scope::All => (None, None),
            Scope::Program(merchant, program) => (Some(program), Some(merchant)),
        };
        let ids: Vec<Id> = diesel::sql_query(
            "SELECT id FROM members
              WHERE id > $1 AND ($2::uuid IS NULL OR (program_id = $2 AND merchant_id = $3))
              ORDER BY id LIMIT $4",
        )
        .bind::<SqlUuid, _>(after)
        .bind::<Nullable<SqlUuid>, _>(program)
        .bind::<Nullable<SqlUuid>, _>(merchant)
        .bind::<BigInt, _>(BATCH)
        .load(conn)?;
        let Some(last) = ids.last() else {
            break;
        };
        after = last.id;
        let ids: Vec<Uuid> = ids.into_iter().map(|i| i.id).collect();
        let n = conn.transaction(|conn| {
            diesel::sql_query(unbounded).execute(conn)?;
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(LOCK)
                .execute(conn)?;
            diesel::sql_query(member_statement("m.id = ANY($2)"))
                .bind::<Timestamptz, _>(now)
                .bind::<Array<SqlUuid>, _>(&ids)
                .get_result::<Recomputed>(conn)
        })?;
        done += n;
        if (ids.len() as i64) < BATCH {
            break;
        }
    }
    Ok(done)
}

/// What a member list may be narrowed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Group(Group),
    Cell(String),
    Stage(Stage),
}

impl Filter {
    /// From the list's `group`, `cell` and `stage` parameters (at most one).
    pub fn parse(
        group: Option<&str>,
        cell: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<Filter>, FieldProblem> {
        let given = [group, cell, stage].iter().filter(|p| p.is_some()).count();
        if given > 1 {
            return Err(FieldProblem::new(
                "/group",
                "one of group, cell and stage at a time",
            ));
        }
        if let Some(g) = group {
            return Group::parse(g)
                .map(|g| Some(Filter::Group(g)))
                .ok_or_else(|| {
                    FieldProblem::new(
                        "/group",
                        format!("one of {}", Group::ALL.map(Group::as_str).join(", ")),
                    )
                });
        }
        if let Some(c) = cell {
            return if rfm::is_cell(c) {
                Ok(Some(Filter::Cell(c.to_string())))
            } else {
                Err(FieldProblem::new(
                    "/cell",
                    "three digits 1-3: recency, frequency, money (e.g. 311)",
                ))
            };
        }
        if let Some(s) = stage {
            return Stage::parse(s)
                .map(|s| Some(Filter::Stage(s)))
                .ok_or_else(|| {
                    FieldProblem::new(
                        "/stage",
                        format!("one of {}", Stage::ALL.map(Stage::as_str).join(", ")),
                    )
                });
        }
        Ok(None)
    }

    /// The condition on `members m` (the value bound at `placeholder`), and the value.
    pub fn sql(&self, placeholder: &str) -> (String, String) {
        let of = |column: &str, default: &str| {
            format!(
                "coalesce((SELECT s.{column} FROM member_segments s WHERE s.member_id = m.id), \
                 '{default}') = {placeholder}"
            )
        };
        match self {
            Filter::Group(g) => (of("rfm_group", "no_purchases"), g.as_str().to_string()),
            Filter::Cell(c) => (of("cell", ""), c.clone()),
            Filter::Stage(s) => (of("stage", "registered"), s.as_str().to_string()),
        }
    }
}

/// A count of members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CellSize {
    #[schema(example = "311")]
    pub cell: String,
    pub group: Group,
    pub members: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupSize {
    pub group: Group,
    pub name_en: &'static str,
    pub name_ru: &'static str,
    pub members: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StageSize {
    pub stage: Stage,
    pub name_en: &'static str,
    pub name_ru: &'static str,
    pub members: i64,
}

/// The cut points in force (the last full run's).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CutPoints {
    /// `tertiles` of the buyers, or the `merchant`'s thresholds.
    pub source: String,
    pub window_days: i32,
    /// Members who bought in the window when they were set.
    pub buyers: i64,
    /// Days since the last purchase at most which R is 3, and 2 (null: nobody).
    pub recency_days: [Option<i32>; 2],
    /// Purchases from which F is 3, and 2.
    pub frequency: [Option<i64>; 2],
    /// Money (minor units) from which M is 3, and 2.
    pub monetary: [Option<i64>; 2],
    pub computed_at: DateTime<Utc>,
}

/// A program's segment sizes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sizes {
    pub program_id: Uuid,
    pub members: i64,
    /// Null until the program's first recompute.
    pub cut_points: Option<CutPoints>,
    /// All 27 cells, "333" first (members without purchases in the window are in none).
    pub cells: Vec<CellSize>,
    pub groups: Vec<GroupSize>,
    pub stages: Vec<StageSize>,
}

/// Sizes of a program's cells, groups and stages.
pub fn sizes(conn: &mut PgConnection, tenant: &Tenant, program_id: Uuid) -> QueryResult<Sizes> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = Nullable<Text>)]
        cell: Option<String>,
        #[diesel(sql_type = Text)]
        rfm_group: String,
        #[diesel(sql_type = Text)]
        stage: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct Cut {
        #[diesel(sql_type = Text)]
        source: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        window_days: i32,
        #[diesel(sql_type = BigInt)]
        buyers: i64,
        #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
        r3_days: Option<i32>,
        #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
        r2_days: Option<i32>,
        #[diesel(sql_type = Nullable<BigInt>)]
        f3: Option<i64>,
        #[diesel(sql_type = Nullable<BigInt>)]
        f2: Option<i64>,
        #[diesel(sql_type = Nullable<BigInt>)]
        m3: Option<i64>,
        #[diesel(sql_type = Nullable<BigInt>)]
        m2: Option<i64>,
        #[diesel(sql_type = Timestamptz)]
        computed_at: DateTime<Utc>,
    }
    let counts: Vec<Count> = diesel::sql_query(
        "SELECT s.cell, coalesce(s.rfm_group, 'no_purchases') AS rfm_group,
                coalesce(s.stage, 'registered') AS stage, count(*) AS n
           FROM members m LEFT JOIN member_segments s ON s.member_id = m.id
          WHERE m.merchant_id = $1 AND m.program_id = $2
          GROUP BY 1, 2, 3",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(program_id)
    .load(conn)?;
    let cut: Option<Cut> = diesel::sql_query(
        "SELECT source, window_days, buyers, r3_days, r2_days, f3, f2, m3, m2, computed_at
           FROM program_rfm WHERE merchant_id = $1 AND program_id = $2",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(program_id)
    .get_result(conn)
    .optional()?;
    let mut cells: HashMap<String, i64> = HashMap::new();
    let mut groups: HashMap<String, i64> = HashMap::new();
    let mut stages: HashMap<String, i64> = HashMap::new();
    let mut members = 0;
    for c in counts {
        members += c.n;
        if let Some(cell) = c.cell {
            *cells.entry(cell).or_default() += c.n;
        }
        *groups.entry(c.rfm_group).or_default() += c.n;
        *stages.entry(c.stage).or_default() += c.n;
    }
    Ok(Sizes {
        program_id,
        members,
        cut_points: cut.map(|c| CutPoints {
            source: c.source,
            window_days: c.window_days,
            buyers: c.buyers,
            recency_days: [c.r3_days, c.r2_days],
            frequency: [c.f3, c.f2],
            monetary: [c.m3, c.m2],
            computed_at: c.computed_at,
        }),
        cells: rfm::cells()
            .map(|(cell, group)| CellSize {
                cell: cell.to_string(),
                group,
                members: cells.get(cell).copied().unwrap_or(0),
            })
            .collect(),
        groups: Group::ALL
            .into_iter()
            .map(|g| GroupSize {
                group: g,
                name_en: g.name_en(),
                name_ru: g.name_ru(),
                members: groups.get(g.as_str()).copied().unwrap_or(0),
            })
            .collect(),
        stages: Stage::ALL
            .into_iter()
            .map(|s| StageSize {
                stage: s,
                name_en: s.name_en(),
                name_ru: s.name_ru(),
                members: stages.get(s.as_str()).copied().unwrap_or(0),
            })
            .collect(),
    })
}
