//! `GET /api/v1/programs/{id}/analytics`: a program's loyalty figures per period of a range
//! (day, week or month in the program's time zone) and for the whole range, and a signup
//! cohort retention table. Every formula is in docs/ANALYTICS.md.
//!
//! Each table is read once per request, grouped by period in SQL: the period boundaries are
//! computed here (time zone and DST are chrono-tz's business) and handed to PostgreSQL as
//! one array, and `width_bucket(time, boundaries)` puts every row in its period. The cost
//! follows the rows of the range (and, for points and gift cards, what came after or before
//! it), never the number of periods.

use crate::db::Tenant;
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Most periods one answer holds (a day interval over almost three years).
pub const MAX_PERIODS: usize = 1000;
/// Boundaries (periods + 1) up to which active customers are found with a bitmask per
/// member: bit j + 1 of a bigint is boundary j, the top bit is kept clear.
const MASK_BOUNDARIES: usize = 61;
/// Default trailing window that makes a member an "active customer" at an instant.
pub const DEFAULT_ACTIVE_DAYS: i32 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// Start of the range (included): a date (midnight in the program's time zone) or an
    /// RFC 3339 time. Default: one year before `to`.
    pub from: Option<String>,
    /// End of the range (excluded), as `from`. Default: the start of tomorrow in the
    /// program's time zone.
    pub to: Option<String>,
    /// `day`, `week` (ISO weeks, from Monday) or `month` (default).
    #[param(value_type = Option<String>)]
    pub interval: Option<String>,
    /// Days of the trailing window in which a purchase makes a member an active customer
    /// (for retention and churn); 1 to 3650, default 90.
    pub active_days: Option<i32>,
}

/// The range and periods a request asks for.
#[derive(Debug, Clone)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Interval,
    pub active_days: i32,
    /// `from`, each period's start after it, and `to`.
    pub bounds: Vec<DateTime<Utc>>,
}

impl Range {
    pub fn parse(q: &AnalyticsQuery, tz: Tz, now: DateTime<Utc>) -> Result<Range, ApiError> {
        let mut problems = Vec::new();
        let interval = match q.interval.as_deref().map(str::trim) {
            None | Some("month") => Some(Interval::Month),
            Some("week") => Some(Interval::Week),
            Some("day") => Some(Interval::Day),
            Some(_) => {
                problems.push(FieldProblem::new("/interval", "one of day, week, month"));
                None
            }
        };
        let active_days = q.active_days.unwrap_or(DEFAULT_ACTIVE_DAYS);
        if !(1..=3650).contains(&active_days) {
            problems.push(FieldProblem::new(
                "/active_days",
                "a whole number from 1 to 3650",
            ));
        }
        let to = match q.to.as_deref() {
            None => Some(local(
                tz,
                now.with_timezone(&tz)
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    + Duration::days(1),
            )),
            Some(raw) => instant(raw, tz).or_else(|| {
                problems.push(FieldProblem::new("/to", TIME_FORMAT));
                None
            }),
        };
        let from = match (q.from.as_deref(), to) {
            (None, Some(to)) => {
                let day = to.with_timezone(&tz).naive_local();
                Some(local(
                    tz,
                    day.with_year(day.year() - 1)
                        .unwrap_or(day - Duration::days(365)),
                ))
            }
            (None, None) => None,
            (Some(raw), _) => instant(raw, tz).or_else(|| {
                problems.push(FieldProblem::new("/from", TIME_FORMAT));
                None
            }),
        };
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                problems.push(FieldProblem::new("/to", "after `from`"));
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::invalid_fields(problems));
        }
        let (Some(from), Some(to), Some(interval)) = (from, to, interval) else {
            return Err(ApiError::validation("the range is not readable"));
        };
        let bounds = bounds(from, to, interval, tz).ok_or_else(|| {
            ApiError::invalid_fields(vec![FieldProblem::new(
                "/interval",
                format!("at most {MAX_PERIODS} periods: a longer interval or a shorter range"),
            )])
        })?;
        Ok(Range {
            from,
            to,
            interval,
            active_days,
            bounds,
        })
    }
}

const TIME_FORMAT: &str =
    "a date (2026-01-31) or an RFC 3339 time (2026-01-31T00:00:00+03:00), years 1900 to 9999";

/// A local wall time of `tz` as an instant: the earlier one when clocks go back, the first
/// instant after the gap when they go forward.
fn local(tz: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = at;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&at)
}

/// A date or an RFC 3339 time, in years PostgreSQL and chrono both hold with room to spare
/// (a range reaches `active_days` before `from`).
fn instant(raw: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    let t = match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(day) => day.and_hms_opt(0, 0, 0).map(|d| local(tz, d))?,
        Err(_) => DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc),
    };
    (1900..=9999).contains(&t.year()).then_some(t)
}

/// The start of the period after the one holding `at` (local wall time).
fn next_start(at: NaiveDateTime, interval: Interval) -> Option<NaiveDateTime> {
    let day = at.date();
    let next = match interval {
        Interval::Day => day.succ_opt()?,
        Interval::Week => day + Duration::days(7 - i64::from(day.weekday().num_days_from_monday())),
        Interval::Month => {
            let (y, m) = if day.month() == 12 {
                (day.year() + 1, 1)
            } else {
                (day.year(), day.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1)?
        }
    };
    next.and_hms_opt(0, 0, 0)
}

/// `from`, every period start strictly between, and `to`; None beyond [`MAX_PERIODS`].
fn bounds(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    tz: Tz,
) -> Option<Vec<DateTime<Utc>>> {
    let mut out = vec![from];
    let mut at = from;
    loop {
        let next = local(
            tz,
            next_start(at.with_timezone(&tz).naive_local(), interval)?,
        );
        // A period start that local time reaches twice (never at midnight in practice).
        let next = if next <= at {
            at + Duration::hours(1)
        } else {
            next
        };
        if next >= to {
            break;
        }
        out.push(next);
        if out.len() > MAX_PERIODS {
            return None;
        }
        at = next;
    }
    out.push(to);
    Some(out)
}

/// One period's figures (or the whole range's). Money in minor units of `currency`;
/// percentages and ratios rounded half away from zero to 2 decimals; null where the
/// denominator is 0.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Figures {
    /// The period's first day (local), or `total`.
    pub period: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Members who had joined by the period's end.
    pub members_total: i64,
    /// Members who joined in the period.
    pub members_new: i64,
    /// Members with at least one purchase (not returned in full) in the period.
    pub members_active: i64,
    /// Active customers at the start (S): a purchase in the `active_days` before it.
    pub active_customers_start: i64,
    /// Active customers at the end (E).
    pub active_customers_end: i64,
    /// Active at the end but not at the start (N): new and returning customers.
    pub active_customers_new: i64,
    /// ((E - N) / S) x 100: active at the start and still at the end.
    pub crr_percent: Option<f64>,
    /// 100 - CRR: active at the start, not at the end.
    pub churn_percent: Option<f64>,
    /// Purchases in the period, not counting those returned in full.
    pub purchases: i64,
    /// Members who bought at least twice in the period.
    pub repeat_customers: i64,
    /// repeat_customers / members_active x 100.
    pub repeat_purchase_rate_percent: Option<f64>,
    /// purchases / members_active.
    pub purchase_frequency: Option<f64>,
    /// Members' purchases less what was returned of them (net revenue).
    pub revenue: i64,
    /// revenue / purchases, rounded to a minor unit.
    pub aov: Option<i64>,
    /// revenue / members_total, rounded to a minor unit.
    pub revenue_per_member: Option<i64>,
    /// Receipts of customers who are not members, and their sum.
    pub non_member_receipts: i64,
    pub non_member_revenue: i64,
    /// Share of revenue: revenue / (revenue + non_member_revenue) x 100.
    pub sor_percent: Option<f64>,
    /// Points credited (every positive movement).
    pub points_earned: i64,
    /// Points paid with.
    pub points_spent: i64,
    pub points_expired: i64,
    /// Other debits: taken back by returns, negative adjustments.
    pub points_taken_back: i64,
    /// Points held by members at the period's end.
    pub points_outstanding: i64,
    /// points_outstanding x point_value (null without a point value).
    pub points_liability: Option<i64>,
    /// Gift cards (of the merchant, in the program's currency) issued in the period.
    pub gift_cards_sold: i64,
    /// Money put on gift cards: initial balances and loads.
    pub gift_card_sales: i64,
    /// Money spent from gift cards, less redemptions refunded back onto cards.
    pub gift_card_redeemed: i64,
    /// Balances of cards deactivated in the period: never to be spent.
    pub gift_card_breakage: i64,
    /// What live (pending or active) cards hold at the period's end.
    pub gift_card_liability: i64,
    /// Passes registered on their first Apple device in the period (still registered).
    pub apple_installs: i64,
    /// Google Wallet objects whose last callback in the period was a save / a delete.
    pub google_installs: i64,
    pub google_removals: i64,
    /// Members who joined through a referral in the period.
    pub referral_joins: i64,
    /// Referred members whose first purchase fell in the period.
    pub referral_conversions: i64,
    /// Survey answers given in the period.
    pub survey_responses: i64,
    /// Answers scoring 9 or 10.
    pub promoters: i64,
    /// Answers scoring 0 to 6.
    pub detractors: i64,
    /// Net promoter score: (promoters - detractors) / survey_responses x 100.
    pub nps: Option<f64>,
    /// Sum of the answers' scores (0 to 10 each).
    pub score_total: i64,
    /// Customer satisfaction index: the mean score as a share of the best,
    /// score_total / (10 x survey_responses) x 100; null without answers.
    pub csi: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cohort {
    /// Signup month (program time zone), `YYYY-MM`.
    pub month: String,
    /// Members who joined that month.
    pub members: i64,
    /// For months since signup 0, 1, ...: members of the cohort who bought in that month.
    pub active: Vec<i64>,
    /// The same as a share of the cohort, percent.
    pub retention_percent: Vec<Option<f64>>,
    /// Net revenue of the cohort since signup, up to the range's end.
    pub revenue: i64,
    /// revenue / members: lifetime value so far, rounded to a minor unit.
    pub revenue_per_member: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    pub program_id: Uuid,
    pub currency: String,
    pub timezone: String,
    pub interval: Interval,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub active_days: i32,
    /// Money value of a point (minor units), if the program sets one.
    pub point_value: Option<i64>,
    pub periods: Vec<Figures>,
    pub total: Figures,
    /// Members who joined in the range, by signup month.
    pub cohorts: Vec<Cohort>,
    /// Survey answers of the range by the answering member's segment **now** (RFM group,
    /// then lifecycle stage), largest first.
    pub nps_by_segment: Vec<SegmentNps>,
}

/// NPS of the answers of one segment's members.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentNps {
    /// `group` (RFM named group) or `stage` (lifecycle stage).
    pub kind: &'static str,
    /// The group's or stage's name, as in `GET /programs/{id}/segments`.
    pub segment: String,
    #[serde(flatten)]
    pub score: Nps,
}

/// Survey answers and the net promoter score they give.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Nps {
    pub survey_responses: i64,
    /// Answers scoring 9 or 10.
    pub promoters: i64,
    /// Answers scoring 0 to 6.
    pub detractors: i64,
    /// (promoters - detractors) / survey_responses x 100; null without answers.
    pub nps: Option<f64>,
    /// Sum of the answers' scores.
    pub score_total: i64,
    /// Customer satisfaction index: score_total / (10 x survey_responses) x 100; null
    /// without answers.
    pub csi: Option<f64>,
}

impl Nps {
    /// The scores of `survey_responses` answers, of which `promoters` scored 9-10 and
    /// `detractors` 0-6, their scores adding up to `score_total`.
    pub fn of(survey_responses: i64, promoters: i64, detractors: i64, score_total: i64) -> Nps {
        Nps {
            survey_responses,
            promoters,
            detractors,
            nps: percent(promoters - detractors, survey_responses),
            score_total,
            csi: csi(score_total, survey_responses),
        }
    }
}

/// The customer satisfaction index of answers scored 0-10: their mean as a percentage of
/// 10.
pub fn csi(score_total: i64, answers: i64) -> Option<f64> {
    percent(score_total, answers.saturating_mul(10))
}

#[derive(QueryableByName)]
struct SegmentAnswers {
    #[diesel(sql_type = Text)]
    rfm_group: String,
    #[diesel(sql_type = Text)]
    stage: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    x: i64,
    #[diesel(sql_type = BigInt)]
    y: i64,
    #[diesel(sql_type = BigInt)]
    t: i64,
}

/// NPS of the range's answers by the members' current group and stage. A member never
/// segmented yet counts as `no_purchases` / `registered`, as a fresh member is.
fn nps_by_segment(
    conn: &mut PgConnection,
    merchant: Uuid,
    program: &Program,
    range: &Range,
) -> QueryResult<Vec<SegmentNps>> {
    let rows: Vec<SegmentAnswers> = diesel::sql_query(
        "SELECT coalesce(s.rfm_group, 'no_purchases') AS rfm_group,
                coalesce(s.stage, 'registered') AS stage,
                count(*) AS n, count(*) FILTER (WHERE a.score >= 9) AS x,
                count(*) FILTER (WHERE a.score <= 6) AS y,
                coalesce(sum(a.score), 0)::bigint AS t
           FROM survey_answers a
           JOIN survey_invitations i ON i.id = a.invitation_id
           LEFT JOIN member_segments s ON s.member_id = i.member_id
          WHERE a.merchant_id = $1 AND a.program_id = $2
            AND a.answered_at >= $3 AND a.answered_at < $4
          GROUP BY 1, 2",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    let mut sums: std::collections::BTreeMap<(&'static str, String), (i64, i64, i64, i64)> =
        Default::default();
    for r in rows {
        for key in [("group", r.rfm_group.clone()), ("stage", r.stage.clone())] {
            let e = sums.entry(key).or_default();
            (e.0, e.1, e.2, e.3) = (e.0 + r.n, e.1 + r.x, e.2 + r.y, e.3 + r.t);
        }
    }
    let mut out: Vec<SegmentNps> = sums
        .into_iter()
        .map(|((kind, segment), (n, x, y, t))| SegmentNps {
            kind,
            segment,
            score: Nps::of(n, x, y, t),
        })
        .collect();
    out.sort_by(|a, b| {
        (
            a.kind,
            std::cmp::Reverse(a.score.survey_responses),
            &a.segment,
        )
            .cmp(&(
                b.kind,
                std::cmp::Reverse(b.score.survey_responses),
                &b.segment,
            ))
    });
    Ok(out)
}

/// `num / den x 100`, 2 decimals, half away from zero; None when `den` is 0.
pub fn percent(num: i64, den: i64) -> Option<f64> {
    ratio(i128::from(num) * 100, i128::from(den))
}

/// `num / den`, 2 decimals, half away from zero; None when `den` is 0.
pub fn ratio(num: i128, den: i128) -> Option<f64> {
    let hundredths = div_round(num * 100, den)?;
    Some(hundredths as f64 / 100.0)
}

/// `num / den` rounded half away from zero to a whole number; None when `den` is 0.
pub fn div_round(num: i128, den: i128) -> Option<i128> {
    if den == 0 {
        return None;
    }
    let (n, d) = (num.abs(), den.abs());
    let q = (2 * n + d) / (2 * d);
    Some(if (num < 0) != (den < 0) { -q } else { q })
}

fn money_per(num: i64, den: i64) -> Option<i64> {
    div_round(i128::from(num), i128::from(den)).and_then(|v| i64::try_from(v).ok())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Buying {
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = BigInt)]
    purchases: i64,
    #[diesel(sql_type = BigInt)]
    buyers: i64,
    #[diesel(sql_type = BigInt)]
    repeaters: i64,
    #[diesel(sql_type = BigInt)]
    revenue: i64,
}

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Integer)]
    j: i32,
    #[diesel(sql_type = BigInt)]
    active: i64,
    #[diesel(sql_type = BigInt)]
    kept_next: i64,
    #[diesel(sql_type = BigInt)]
    kept_to_end: i64,
}

#[derive(QueryableByName)]
struct PointsMoved {
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = BigInt)]
    earned: i64,
    #[diesel(sql_type = BigInt)]
    spent: i64,
    #[diesel(sql_type = BigInt)]
    expired: i64,
    #[diesel(sql_type = BigInt)]
    taken_back: i64,
    #[diesel(sql_type = BigInt)]
    net: i64,
}

#[derive(QueryableByName)]
struct CardsMoved {
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = BigInt)]
    sold: i64,
    #[diesel(sql_type = BigInt)]
    sales: i64,
    #[diesel(sql_type = BigInt)]
    redeemed: i64,
    #[diesel(sql_type = BigInt)]
    breakage: i64,
    #[diesel(sql_type = BigInt)]
    change: i64,
}

#[derive(QueryableByName)]
struct Pair {
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = BigInt)]
    x: i64,
    #[diesel(sql_type = BigInt)]
    y: i64,
}

#[derive(QueryableByName)]
struct Tally {
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = BigInt)]
    x: i64,
    #[diesel(sql_type = BigInt)]
    y: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct CohortRow {
    #[diesel(sql_type = Integer)]
    sm: i32,
    #[diesel(sql_type = Integer)]
    k: i32,
    #[diesel(sql_type = BigInt)]
    active: i64,
    #[diesel(sql_type = BigInt)]
    revenue: i64,
}

/// Which member rows are the program's: joined in every per-member query.
const PROGRAM_MEMBERS: &str =
    "JOIN members m ON m.id = x.member_id AND m.merchant_id = $1 AND m.program_id = $2";

/// The report of `program` over `range`, from one snapshot (every query sees the same
/// data), with memory enough that the per-member groupings stay off disk.
pub fn report(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program: &Program,
    range: &Range,
) -> QueryResult<Report> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            diesel::sql_query("SET LOCAL work_mem = '64MB'").execute(conn)?;
            compute(conn, tenant, program, range)
        })
}

fn compute(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program: &Program,
    range: &Range,
) -> QueryResult<Report> {
    let tz = program.tz();
    let merchant = tenant.merchant_id();
    let b = &range.bounds;
    let n = b.len() - 1;
    // Index i (0-based) of a period is width_bucket's i + 1; 0 is before `from`, n + 1 at
    // or after `to`.
    let slot = |wb: i32| -> Option<usize> {
        let i = usize::try_from(wb).ok()?;
        (1..=n).contains(&i).then(|| i - 1)
    };
    let mut periods: Vec<Figures> = (0..n)
        .map(|i| Figures {
            period: label(b[i], tz),
            start: b[i],
            end: b[i + 1],
            ..Figures::default()
        })
        .collect();
    let mut total = Figures {
        period: "total".into(),
        start: range.from,
        end: range.to,
        ..Figures::default()
    };

    // Members: joined before the range (bucket 0) and per period.
    let joined: Vec<Count> = diesel::sql_query(
        "SELECT width_bucket(created_at, $3) AS b, count(*) AS n
           FROM members WHERE merchant_id = $1 AND program_id = $2 AND created_at < $4
          GROUP BY 1",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    let mut before = 0;
    for c in &joined {
        match slot(c.b) {
            Some(i) => periods[i].members_new += c.n,
            None => before += c.n,
        }
    }
    let mut running = before;
    for f in periods.iter_mut() {
        running += f.members_new;
        f.members_total = running;
    }
    total.members_new = running - before;
    total.members_total = running;

    // Purchases: per member and period, then per period; bucket 0 is the whole range.
    let buying: Vec<Buying> = diesel::sql_query(format!(
        "WITH pm AS (
             SELECT width_bucket(x.purchased_at, $3) AS b, x.member_id,
                    count(*) FILTER (WHERE x.refunded_amount < x.amount) AS n,
                    sum(x.amount - x.refunded_amount) AS revenue
               FROM purchases x {PROGRAM_MEMBERS}
              WHERE x.merchant_id = $1 AND x.purchased_at >= $4 AND x.purchased_at < $5
              GROUP BY 1, 2),
         whole AS (SELECT 0 AS b, member_id, sum(n)::bigint AS n, sum(revenue) AS revenue
                     FROM pm GROUP BY member_id)
         SELECT b, coalesce(sum(n), 0)::bigint AS purchases,
                count(*) FILTER (WHERE n >= 1) AS buyers,
                count(*) FILTER (WHERE n >= 2) AS repeaters,
                coalesce(sum(revenue), 0)::bigint AS revenue
           FROM (SELECT * FROM pm UNION ALL SELECT * FROM whole) y GROUP BY b"
    ))
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    for r in &buying {
        let f = if r.b == 0 {
            &mut total
        } else if let Some(i) = slot(r.b) {
            &mut periods[i]
        } else {
            continue;
        };
        f.purchases = r.purchases;
        f.members_active = r.buyers;
        f.repeat_customers = r.repeaters;
        f.revenue = r.revenue;
    }

    // Active customers at each boundary j (1-based): a purchase in [B[j] - W, B[j]), that
    // is B[j] in (p, p + W]: boundaries width_bucket(p) + 1 ..= width_bucket(p + W).
    let activity: Vec<Activity> = if n < MASK_BOUNDARIES {
        // Few boundaries (a year by month): one bit per boundary, OR'd per member, so the
        // purchases are grouped by member only and nothing is joined to itself.
        diesel::sql_query(format!(
            "WITH masks AS (
                 SELECT bit_or((1::bigint << (width_bucket(x.purchased_at + make_interval(days => $6), $3) + 1))
                               - (1::bigint << (width_bucket(x.purchased_at, $3) + 1))) AS mask
                   FROM purchases x {PROGRAM_MEMBERS}
                  WHERE x.merchant_id = $1 AND x.refunded_amount < x.amount
                    AND x.purchased_at >= $4 - make_interval(days => $6) AND x.purchased_at < $5
                  GROUP BY x.member_id)
             SELECT j, count(*) FILTER (WHERE mask & (1::bigint << j) <> 0) AS active,
                    count(*) FILTER (WHERE mask & (3::bigint << j) = (3::bigint << j)) AS kept_next,
                    count(*) FILTER (WHERE j = 1 AND mask & (1::bigint << 1) <> 0
                                     AND mask & (1::bigint << $7) <> 0) AS kept_to_end
               FROM masks, generate_series(1, $7) j
              GROUP BY j"
        ))
    } else {
        diesel::sql_query(format!(
            "WITH act AS (
                 SELECT DISTINCT x.member_id, j
                   FROM purchases x {PROGRAM_MEMBERS},
                        LATERAL generate_series(width_bucket(x.purchased_at, $3) + 1,
                            width_bucket(x.purchased_at + make_interval(days => $6), $3)) AS j
                  WHERE x.merchant_id = $1 AND x.refunded_amount < x.amount
                    AND x.purchased_at >= $4 - make_interval(days => $6) AND x.purchased_at < $5)
             SELECT a.j, count(*) AS active, count(nx.member_id) AS kept_next,
                    count(l.member_id) AS kept_to_end
               FROM act a
               LEFT JOIN act nx ON nx.member_id = a.member_id AND nx.j = a.j + 1
               LEFT JOIN act l ON a.j = 1 AND l.member_id = a.member_id AND l.j = $7
              GROUP BY a.j"
        ))
    }
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .bind::<Integer, _>(range.active_days)
    .bind::<Integer, _>(i32::try_from(n + 1).unwrap_or(i32::MAX))
    .load(conn)?;
    let mut active = vec![0i64; n + 1];
    let mut kept_next = vec![0i64; n + 1];
    let mut kept_to_end = 0;
    for a in &activity {
        let Some(j) = usize::try_from(a.j)
            .ok()
            .filter(|j| (1..=n + 1).contains(j))
        else {
            continue;
        };
        active[j - 1] = a.active;
        kept_next[j - 1] = a.kept_next;
        if j == 1 {
            kept_to_end = a.kept_to_end;
        }
    }
    let retention = |f: &mut Figures, s: i64, e: i64, kept: i64| {
        f.active_customers_start = s;
        f.active_customers_end = e;
        f.active_customers_new = e - kept;
        f.crr_percent = percent(kept, s);
        f.churn_percent = percent(s - kept, s);
    };
    for (i, f) in periods.iter_mut().enumerate() {
        retention(f, active[i], active[i + 1], kept_next[i]);
    }
    retention(&mut total, active[0], active[n], kept_to_end);

    // Non-member receipts.
    let receipts: Vec<Pair> = diesel::sql_query(
        "SELECT width_bucket(purchased_at, $3) AS b, count(*) AS x,
                coalesce(sum(amount), 0)::bigint AS y
           FROM non_member_receipts
          WHERE merchant_id = $1 AND program_id = $2 AND currency = $6
            AND purchased_at >= $4 AND purchased_at < $5
          GROUP BY 1",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .bind::<Text, _>(program.currency.code())
    .load(conn)?;
    for r in &receipts {
        if let Some(i) = slot(r.b) {
            periods[i].non_member_receipts = r.x;
            periods[i].non_member_revenue = r.y;
            total.non_member_receipts += r.x;
            total.non_member_revenue += r.y;
        }
    }

    // Points: what moved from `from` on (after `to` too), and what members hold now; what
    // they held at B[j] is now's sum less everything moved at or after B[j].
    let moved: Vec<PointsMoved> = diesel::sql_query(format!(
        "SELECT width_bucket(x.created_at, $3) AS b,
                coalesce(sum(x.delta) FILTER (WHERE x.delta > 0), 0)::bigint AS earned,
                coalesce(-sum(x.delta) FILTER (WHERE x.type = 'spend'), 0)::bigint AS spent,
                coalesce(-sum(x.delta) FILTER (WHERE x.type = 'expire'), 0)::bigint AS expired,
                coalesce(-sum(x.delta) FILTER (
                    WHERE x.delta < 0 AND x.type NOT IN ('spend', 'expire')), 0)::bigint AS taken_back,
                coalesce(sum(x.delta), 0)::bigint AS net
           FROM point_activities x {PROGRAM_MEMBERS}
          WHERE x.merchant_id = $1 AND x.created_at >= $4
          GROUP BY 1"
    ))
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .load(conn)?;
    let held_now: i64 = diesel::sql_query(
        "SELECT 0 AS b, coalesce(sum(points), 0)::bigint AS n
           FROM members WHERE merchant_id = $1 AND program_id = $2",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .get_result::<Count>(conn)?
    .n;
    // net_from[j]: points moved at or after B[j] (j 0-based over the n + 1 boundaries).
    let mut net_in = vec![0i64; n + 2];
    for r in &moved {
        if let Some(i) = slot(r.b) {
            let f = &mut periods[i];
            f.points_earned = r.earned;
            f.points_spent = r.spent;
            f.points_expired = r.expired;
            f.points_taken_back = r.taken_back;
            total.points_earned += r.earned;
            total.points_spent += r.spent;
            total.points_expired += r.expired;
            total.points_taken_back += r.taken_back;
        }
        if let Some(k) = usize::try_from(r.b)
            .ok()
            .filter(|k| (1..=n + 1).contains(k))
        {
            net_in[k] += r.net;
        }
    }
    let point_value = program.point_value();
    let mut after = 0i64;
    let mut held_at = vec![0i64; n + 1];
    for j in (0..=n).rev() {
        after += net_in[j + 1];
        held_at[j] = held_now - after;
    }
    for (i, f) in periods.iter_mut().enumerate() {
        f.points_outstanding = held_at[i + 1];
    }
    total.points_outstanding = held_at[n];
    for f in periods.iter_mut().chain(std::iter::once(&mut total)) {
        f.points_liability = point_value.and_then(|v| f.points_outstanding.checked_mul(v));
    }

    // Gift cards: every movement's change to what live cards owe (a deactivation removes
    // the card's balance), summed up to each boundary.
    let cards: Vec<CardsMoved> = diesel::sql_query(
        "WITH d AS (
             SELECT a.created_at, a.type,
                    CASE WHEN a.type = 'deactivate'
                         THEN -coalesce(lag(a.balance_after) OVER w, 0)
                         ELSE a.balance_after - coalesce(lag(a.balance_after) OVER w, 0)
                    END AS change
               FROM gift_card_activities a
               JOIN gift_cards c ON c.id = a.gift_card_id AND c.merchant_id = $1
              WHERE a.merchant_id = $1 AND c.currency = $4 AND a.created_at < $3
             WINDOW w AS (PARTITION BY a.gift_card_id ORDER BY a.seq))
         SELECT width_bucket(created_at, $2) AS b,
                count(*) FILTER (WHERE type = 'activate') AS sold,
                coalesce(sum(change) FILTER (WHERE type IN ('activate', 'load')), 0)::bigint AS sales,
                (coalesce(-sum(change) FILTER (WHERE type = 'redeem'), 0)
                 - coalesce(sum(change) FILTER (WHERE type = 'refund' AND change > 0), 0))::bigint
                    AS redeemed,
                coalesce(-sum(change) FILTER (WHERE type = 'deactivate'), 0)::bigint AS breakage,
                coalesce(sum(change), 0)::bigint AS change
           FROM d GROUP BY 1",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.to)
    .bind::<Text, _>(program.currency.code())
    .load(conn)?;
    let mut change_in = vec![0i64; n + 1];
    for r in &cards {
        match slot(r.b) {
            Some(i) => {
                let f = &mut periods[i];
                f.gift_cards_sold = r.sold;
                f.gift_card_sales = r.sales;
                f.gift_card_redeemed = r.redeemed;
                f.gift_card_breakage = r.breakage;
                total.gift_cards_sold += r.sold;
                total.gift_card_sales += r.sales;
                total.gift_card_redeemed += r.redeemed;
                total.gift_card_breakage += r.breakage;
                change_in[i + 1] += r.change;
            }
            None => change_in[0] += r.change,
        }
    }
    let mut owed = change_in[0];
    for (i, f) in periods.iter_mut().enumerate() {
        owed += change_in[i + 1];
        f.gift_card_liability = owed;
    }
    total.gift_card_liability = owed;

    // Installs: Apple passes by their first registration still held; Google objects by
    // their last callback.
    let installs: Vec<Pair> = diesel::sql_query(
        "SELECT b, sum(apple)::bigint AS x, 0::bigint AS y FROM (
             SELECT width_bucket(min(r.created_at), $3) AS b, 1 AS apple
               FROM registrations r
               JOIN passes s ON s.id = r.pass_id AND s.merchant_id = $1
               JOIN members m ON m.id = s.member_id AND m.merchant_id = $1 AND m.program_id = $2
              WHERE r.merchant_id = $1
              GROUP BY r.pass_id) f
          GROUP BY b
         UNION ALL
         SELECT -width_bucket(g.updated_at, $3) AS b,
                count(*) FILTER (WHERE g.saved) AS x, count(*) FILTER (WHERE NOT g.saved) AS y
           FROM google_installs g
           JOIN passes s ON s.id = g.pass_id AND s.merchant_id = $1
           JOIN members m ON m.id = s.member_id AND m.merchant_id = $1 AND m.program_id = $2
          WHERE g.merchant_id = $1 AND g.updated_at >= $4 AND g.updated_at < $5
          GROUP BY 1",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    for r in &installs {
        // Google's rows come with the bucket negated, Apple's as is.
        if r.b < 0 {
            if let Some(i) = slot(-r.b) {
                periods[i].google_installs = r.x;
                periods[i].google_removals = r.y;
                total.google_installs += r.x;
                total.google_removals += r.y;
            }
        } else if let Some(i) = slot(r.b) {
            periods[i].apple_installs = r.x;
            total.apple_installs += r.x;
        }
    }

    // Referrals: joins by when the referral was made, conversions by the first purchase.
    let referrals: Vec<Pair> = diesel::sql_query(
        "SELECT b, sum(j)::bigint AS x, sum(c)::bigint AS y FROM (
             SELECT width_bucket(created_at, $3) AS b, 1 AS j, 0 AS c
               FROM referrals WHERE merchant_id = $1 AND program_id = $2
                AND created_at >= $4 AND created_at < $5
             UNION ALL
             SELECT width_bucket(first_purchase_at, $3), 0, 1
               FROM referrals WHERE merchant_id = $1 AND program_id = $2
                AND first_purchase_at >= $4 AND first_purchase_at < $5) r
          GROUP BY b",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    for r in &referrals {
        if let Some(i) = slot(r.b) {
            periods[i].referral_joins = r.x;
            periods[i].referral_conversions = r.y;
            total.referral_joins += r.x;
            total.referral_conversions += r.y;
        }
    }

    // Survey answers by when they were given.
    #[derive(QueryableByName)]
    struct Answers {
        #[diesel(embed)]
        tally: Tally,
        #[diesel(sql_type = BigInt)]
        t: i64,
    }
    let answers: Vec<Answers> = diesel::sql_query(
        "SELECT width_bucket(answered_at, $3) AS b, count(*) FILTER (WHERE score >= 9) AS x,
                count(*) FILTER (WHERE score <= 6) AS y, count(*) AS n,
                coalesce(sum(score), 0)::bigint AS t
           FROM survey_answers
          WHERE merchant_id = $1 AND program_id = $2 AND answered_at >= $4 AND answered_at < $5
          GROUP BY 1",
    )
    .bind::<SqlUuid, _>(merchant)
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(b)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    for Answers { tally: r, t } in &answers {
        if let Some(i) = slot(r.b) {
            periods[i].promoters = r.x;
            periods[i].detractors = r.y;
            periods[i].survey_responses = r.n;
            periods[i].score_total = *t;
            total.promoters += r.x;
            total.detractors += r.y;
            total.survey_responses += r.n;
            total.score_total += t;
        }
    }

    for f in periods.iter_mut().chain(std::iter::once(&mut total)) {
        f.nps = percent(f.promoters - f.detractors, f.survey_responses);
        f.csi = csi(f.score_total, f.survey_responses);
        f.repeat_purchase_rate_percent = percent(f.repeat_customers, f.members_active);
        f.purchase_frequency = ratio(i128::from(f.purchases), i128::from(f.members_active));
        f.aov = money_per(f.revenue, f.purchases);
        f.revenue_per_member = money_per(f.revenue, f.members_total);
        f.sor_percent = percent(f.revenue, f.revenue + f.non_member_revenue);
    }

    let cohorts = cohorts(conn, tenant, program, range)?;
    let nps_by_segment = nps_by_segment(conn, merchant, program, range)?;
    Ok(Report {
        nps_by_segment,
        program_id: program.id,
        currency: program.currency.code().to_string(),
        timezone: tz.name().to_string(),
        interval: range.interval,
        from: range.from,
        to: range.to,
        active_days: range.active_days,
        point_value,
        periods,
        total,
        cohorts,
    })
}

/// Members who joined in the range by signup month, and who of them bought in each month
/// since (program time zone), up to the range's end.
fn cohorts(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program: &Program,
    range: &Range,
) -> QueryResult<Vec<Cohort>> {
    let tz = program.tz();
    // Local month starts from the one holding `from` to the first at or after `to`:
    // width_bucket against them numbers months 1, 2, ... for signups and purchases alike.
    let mut months = vec![local(
        tz,
        range
            .from
            .with_timezone(&tz)
            .date_naive()
            .with_day(1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
    )];
    while months.last().is_some_and(|m| *m < range.to) && months.len() <= MAX_PERIODS + 1 {
        let last = months[months.len() - 1];
        match next_start(last.with_timezone(&tz).naive_local(), Interval::Month) {
            Some(next) => months.push(local(tz, next)),
            None => break,
        }
    }
    let sizes: Vec<Count> = diesel::sql_query(
        "SELECT width_bucket(created_at, $3) AS b, count(*) AS n
           FROM members WHERE merchant_id = $1 AND program_id = $2
            AND created_at >= $4 AND created_at < $5
          GROUP BY 1",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(&months)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    // Per member and month first, so that counting members needs no DISTINCT.
    let rows: Vec<CohortRow> = diesel::sql_query(format!(
        "SELECT sm, mb - sm AS k, count(*) FILTER (WHERE n > 0) AS active,
                coalesce(sum(revenue), 0)::bigint AS revenue
           FROM (SELECT width_bucket(m.created_at, $3) AS sm,
                        width_bucket(x.purchased_at, $3) AS mb,
                        count(*) FILTER (WHERE x.refunded_amount < x.amount) AS n,
                        sum(x.amount - x.refunded_amount) AS revenue
                   FROM purchases x {PROGRAM_MEMBERS}
                        AND m.created_at >= $4 AND m.created_at < $5
                  WHERE x.merchant_id = $1 AND x.purchased_at >= $4 AND x.purchased_at < $5
                  GROUP BY 1, 2, x.member_id) y
          WHERE mb >= sm
          GROUP BY 1, 2"
    ))
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(program.id)
    .bind::<Array<Timestamptz>, _>(&months)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .load(conn)?;
    // Months that have begun before `to`: the buckets 1 ..= months.len() - 1.
    let begun = months.len().saturating_sub(1);
    let mut out: Vec<Cohort> = sizes
        .iter()
        .filter_map(|s| {
            let sm = usize::try_from(s.b)
                .ok()
                .filter(|b| (1..=begun).contains(b))?;
            let mut active = vec![0i64; begun + 1 - sm];
            let mut revenue = 0;
            for r in rows.iter().filter(|r| r.sm == s.b) {
                if let Some(slot) = usize::try_from(r.k).ok().and_then(|k| active.get_mut(k)) {
                    *slot = r.active;
                }
                revenue += r.revenue;
            }
            Some(Cohort {
                month: months[sm - 1]
                    .with_timezone(&tz)
                    .format("%Y-%m")
                    .to_string(),
                members: s.n,
                retention_percent: active.iter().map(|a| percent(*a, s.n)).collect(),
                revenue_per_member: money_per(revenue, s.n),
                active,
                revenue,
            })
        })
        .collect();
    out.sort_by(|a, b| a.month.cmp(&b.month));
    Ok(out)
}

/// A period's name: its first local day (`2026-01-01`).
fn label(start: DateTime<Utc>, tz: Tz) -> String {
    start.with_timezone(&tz).format("%Y-%m-%d").to_string()
}

/// The periods and the total as CSV, one row each, the same figures as the JSON.
pub fn csv(report: &Report) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    for f in report.periods.iter().chain(std::iter::once(&report.total)) {
        out.serialize(f)
            .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn days_across_a_dst_change_are_local_days() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let from = instant("2026-03-28", tz).unwrap();
        let to = instant("2026-03-31", tz).unwrap();
        let b = bounds(from, to, Interval::Day, tz).unwrap();
        // 29 March has 23 hours in Berlin.
        assert_eq!(
            b,
            vec![
                at("2026-03-27T23:00:00Z"),
                at("2026-03-28T23:00:00Z"),
                at("2026-03-29T22:00:00Z"),
                at("2026-03-30T22:00:00Z"),
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_the_ends_may_be_partial() {
        let tz = chrono_tz::UTC;
        // Thursday 1 January 2026 to Wednesday 14 January.
        let b = bounds(
            at("2026-01-01T00:00:00Z"),
            at("2026-01-14T00:00:00Z"),
            Interval::Week,
            tz,
        )
        .unwrap();
        assert_eq!(
            b,
            vec![
                at("2026-01-01T00:00:00Z"),
                at("2026-01-05T00:00:00Z"),
                at("2026-01-12T00:00:00Z"),
                at("2026-01-14T00:00:00Z"),
            ]
        );
    }

    #[test]
    fn months_in_a_zone_east_of_utc() {
        let tz: Tz = "Europe/Moscow".parse().unwrap();
        let from = instant("2026-01-15", tz).unwrap();
        let to = instant("2026-03-01", tz).unwrap();
        let b = bounds(from, to, Interval::Month, tz).unwrap();
        assert_eq!(
            b,
            vec![
                at("2026-01-14T21:00:00Z"),
                at("2026-01-31T21:00:00Z"),
                at("2026-02-28T21:00:00Z"),
            ]
        );
    }

    #[test]
    fn too_many_periods_are_refused() {
        let tz = chrono_tz::UTC;
        assert!(bounds(
            at("2020-01-01T00:00:00Z"),
            at("2026-01-01T00:00:00Z"),
            Interval::Day,
            tz
        )
        .is_none());
        assert!(bounds(
            at("2020-01-01T00:00:00Z"),
            at("2022-09-01T00:00:00Z"),
            Interval::Day,
            tz
        )
        .is_some());
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(percent(1, 3), Some(33.33));
        assert_eq!(percent(2, 3), Some(66.67));
        assert_eq!(percent(1, 8), Some(12.5));
        assert_eq!(percent(1, 0), None);
        assert_eq!(div_round(5, 2), Some(3));
        assert_eq!(div_round(-5, 2), Some(-3));
        assert_eq!(div_round(7, 3), Some(2));
        assert_eq!(ratio(1, 200), Some(0.01));
        assert_eq!(ratio(1, 201), Some(0.0));
    }
}
