//! A program's analytics: `analytics::report` over the range and period a plain GET form
//! picks (the API's `from`, `to`, `interval`, parsed by the same `Range::parse`), as line
//! charts per period, every figure of the whole range in a table with its name, the signup
//! cohorts as a heat-map table and the NPS by segment. Beside each chart its CSV: the
//! periods' CSV is `report::csv`, byte for byte what `GET /api/v1/programs/{id}/analytics`
//! answers with `Accept: text/csv`; the cohorts' CSV is this page's own (the API has the
//! cohorts in JSON only).

use super::charts::{self, Frame, Series};
use super::error::PageError;
use super::format::{decimal, money, number};
use super::i18n::{name_in, InsightTexts, FIGURE_KEYS};
use super::insights_page::{self, failed, program_of, tabs};
use super::paging::q;
use super::session::{Section, StaffSession};
use crate::analytics::report::{self, AnalyticsQuery, Cohort, Figures, Range, Report};
use crate::app::AppState;
use crate::db;
use crate::domain::{Currency, Language};
use crate::models::Program;
use crate::problem::ApiError;
use crate::segments::{Group, Stage};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

/// The form's fields, as typed (empty: the API's default).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct RangeForm {
    from: String,
    to: String,
    interval: String,
}

impl RangeForm {
    fn query(&self) -> AnalyticsQuery {
        let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        AnalyticsQuery {
            from: given(&self.from),
            to: given(&self.to),
            interval: given(&self.interval),
            active_days: None,
        }
    }

    /// The same range as a query string, for the CSV links.
    fn query_string(&self) -> String {
        format!(
            "from={}&to={}&interval={}",
            q(self.from.trim()),
            q(self.to.trim()),
            q(self.interval.trim())
        )
    }
}

/// How a figure is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Count,
    Money,
    /// Already in percent (or a ratio): two decimals at most.
    Decimal,
}

fn kind_of(key: &str) -> Kind {
    match key {
        "revenue"
        | "aov"
        | "revenue_per_member"
        | "non_member_revenue"
        | "points_liability"
        | "gift_card_sales"
        | "gift_card_redeemed"
        | "gift_card_breakage"
        | "gift_card_liability" => Kind::Money,
        "crr_percent"
        | "churn_percent"
        | "repeat_purchase_rate_percent"
        | "purchase_frequency"
        | "sor_percent"
        | "nps"
        | "csi" => Kind::Decimal,
        _ => Kind::Count,
    }
}

/// A figure of a period as the report's JSON has it (null: no denominator).
fn value(figures: &serde_json::Value, key: &str) -> Option<f64> {
    figures.get(key).and_then(serde_json::Value::as_f64)
}

fn written(lang: Language, currency: Currency, key: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "—".into();
    };
    match kind_of(key) {
        Kind::Count => number(lang, v as i64),
        Kind::Money => money(lang, v as i64, currency),
        Kind::Decimal => decimal(lang, v, 2),
    }
}

struct Loaded {
    program: Program,
    report: Result<Report, ApiError>,
}

async fn load(
    session: &StaffSession,
    state: &AppState,
    raw: &str,
    form: &RangeForm,
) -> Result<Loaded, PageError> {
    let id = session.id_in_path(raw)?;
    let tenant = session.tenant;
    let now = state.clock.now();
    let query = form.query();
    db::run(&state.pool, move |conn| {
        let program = program_of(conn, &tenant, id)?;
        // A range the form got wrong is the page's to say, not a failure.
        let report = match Range::parse(&query, program.tz(), now) {
            Ok(range) => Ok(report::report(conn, &tenant, &program, &range)?),
            Err(e) => Err(e),
        };
        Ok(Loaded { program, report })
    })
    .await
    .map_err(|e| failed(session, e))
}

/// One chart over the periods: lines of `keys` (divided by `scale`: money in major units),
/// the CSV beside it and its figures as a table.
#[allow(clippy::too_many_arguments)]
fn period_chart(
    session: &StaffSession,
    currency: Currency,
    periods: &[serde_json::Value],
    labels: &[String],
    id: &str,
    title: &str,
    keys: &[&str],
    csv_href: &str,
) -> Markup {
    let lang = session.lang;
    let i = session.texts().insights();
    let money = keys.iter().any(|k| kind_of(k) == Kind::Money);
    let per = if money {
        currency.minor_per_major().max(1) as f64
    } else {
        1.0
    };
    let series: Vec<Series> = keys
        .iter()
        .map(|k| Series {
            name: i.figure(k).to_string(),
            values: periods
                .iter()
                .map(|p| value(p, k).map(|v| v / per))
                .collect(),
        })
        .collect();
    let title = if money {
        format!("{title}, {}", currency.code())
    } else {
        title.to_string()
    };
    let digits = if keys.iter().all(|k| kind_of(k) == Kind::Count) {
        0
    } else {
        1
    };
    let frame = Frame {
        id: &format!("chart-{id}"),
        title: &title,
        empty: i.no_data,
    };
    html! {
        section class="panel" aria-labelledby=(format!("chart-{id}-h")) id=(id) {
            h2 id=(format!("chart-{id}-h")) { (title) }
            (charts::lines(&frame, labels, &series, &|v| decimal(lang, v, if v.fract() == 0.0 { 0 } else { digits })))
            p { a href=(csv_href) class="csv" download { (i.download_csv) } }
            details {
                summary { (i.as_table) }
                div class="table-wrap" {
                    table data-chart=(id) {
                        thead { tr {
                            th scope="col" { (i.period) }
                            @for k in keys { th scope="col" { (i.figure(k)) } }
                        } }
                        tbody {
                            @for (p, label) in periods.iter().zip(labels) {
                                tr {
                                    th scope="row" { (label) }
                                    @for k in keys { td data-figure=(k) { (written(lang, currency, k, value(p, k))) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn range_form(
    session: &StaffSession,
    program: &Program,
    form: &RangeForm,
    problem: bool,
) -> Markup {
    let i = session.texts().insights();
    let chosen = form.interval.trim();
    let chosen = if chosen.is_empty() { "month" } else { chosen };
    html! {
        section class="panel" {
            @if problem {
                p class="errors" role="alert" id="range-error" { (i.bad_range) }
            }
            form class="search" method="get" action=(format!("/console/programs/{}/analytics", program.id)) id="range" {
                div {
                    label for="range-interval" { (i.interval) }
                    select id="range-interval" name="interval" {
                        @for (value, label) in [("day", i.day), ("week", i.week), ("month", i.month)] {
                            option value=(value) selected[chosen == value] { (label) }
                        }
                    }
                }
                div {
                    label for="range-from" { (i.from) }
                    input type="date" id="range-from" name="from" value=(form.from) maxlength="40";
                }
                div {
                    label for="range-to" { (i.to) }
                    input type="date" id="range-to" name="to" value=(form.to) maxlength="40";
                }
                button type="submit" id="range-submit" { (i.show) }
            }
        }
    }
}

/// A retention share's shade (a class of the stylesheet: no inline style under the CSP).
fn heat(percent: Option<f64>) -> &'static str {
    match percent {
        Some(p) if p >= 50.0 => "heat-4",
        Some(p) if p >= 25.0 => "heat-3",
        Some(p) if p >= 10.0 => "heat-2",
        Some(p) if p > 0.0 => "heat-1",
        _ => "heat-0",
    }
}

fn cohorts(
    session: &StaffSession,
    currency: Currency,
    cohorts: &[Cohort],
    csv_href: &str,
) -> Markup {
    let lang = session.lang;
    let i = session.texts().insights();
    let months = cohorts
        .iter()
        .map(|c| c.retention_percent.len())
        .max()
        .unwrap_or(0);
    html! {
        section class="panel" aria-labelledby="cohorts-title" id="cohorts" {
            h2 id="cohorts-title" { (i.cohorts_title) }
            p class="note" { (i.cohorts_note) }
            p { a href=(csv_href) class="csv" download { (i.download_csv) } }
            @if cohorts.is_empty() {
                p class="note" { (i.no_data) }
            } @else {
                div class="table-wrap" {
                    table class="heat" id="cohort-table" {
                        thead { tr {
                            th scope="col" { (i.cohort_month) }
                            th scope="col" { (i.members) }
                            @for k in 0..months { th scope="col" { (k) } }
                            th scope="col" { (i.revenue_per_member) }
                        } }
                        tbody {
                            @for c in cohorts {
                                tr data-cohort=(c.month) {
                                    th scope="row" { (c.month) }
                                    td { (number(lang, c.members)) }
                                    @for k in 0..months {
                                        @let p = c.retention_percent.get(k).copied().flatten();
                                        td class=(heat(p)) data-k=(k) {
                                            @match p { Some(p) => (decimal(lang, p, 1)), None => "" }
                                        }
                                    }
                                    td { @match c.revenue_per_member { Some(v) => (money(lang, v, currency)), None => "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn totals(session: &StaffSession, currency: Currency, total: &Figures, i: &InsightTexts) -> Markup {
    let lang = session.lang;
    let figures = serde_json::to_value(total).unwrap_or_default();
    html! {
        section class="panel" aria-labelledby="totals-title" id="totals" {
            h2 id="totals-title" { (i.totals_title) }
            div class="table-wrap" {
                table id="total-figures" {
                    thead { tr { th scope="col" { (i.figure) } th scope="col" { (i.value) } } }
                    tbody {
                        @for key in FIGURE_KEYS {
                            tr {
                                th scope="row" { (i.figure(key)) }
                                td data-figure=(key) { (written(lang, currency, key, value(&figures, key))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn nps_by_segment(session: &StaffSession, report: &Report, i: &InsightTexts) -> Markup {
    let lang = session.lang;
    let segment_name = |kind: &str, key: &str| -> String {
        let named = match kind {
            "group" => Group::parse(key).map(|g| name_in(lang, g.name_en(), g.name_ru())),
            _ => Stage::parse(key).map(|s| name_in(lang, s.name_en(), s.name_ru())),
        };
        named.unwrap_or(key).to_string()
    };
    html! {
        section class="panel" aria-labelledby="nps-title" id="nps" {
            h2 id="nps-title" { (i.nps_by_segment) }
            @if report.nps_by_segment.is_empty() {
                p class="note" { (i.no_data) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="nps-table" {
                        thead { tr {
                            th scope="col" { (i.segment) }
                            th scope="col" { (i.figure("survey_responses")) }
                            th scope="col" { (i.figure("promoters")) }
                            th scope="col" { (i.figure("detractors")) }
                            th scope="col" { (i.nps) }
                        } }
                        tbody {
                            @for s in &report.nps_by_segment {
                                tr {
                                    td data-label=(i.segment) {
                                        (if s.kind == "group" { i.kind_group } else { i.kind_stage }) ": " (segment_name(s.kind, &s.segment))
                                    }
                                    td data-label=(i.figure("survey_responses")) { (number(lang, s.score.survey_responses)) }
                                    td data-label=(i.figure("promoters")) { (number(lang, s.score.promoters)) }
                                    td data-label=(i.figure("detractors")) { (number(lang, s.score.detractors)) }
                                    td data-label=(i.nps) { @match s.score.nps { Some(v) => (decimal(lang, v, 1)), None => "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Query<RangeForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let Loaded { program, report } = load(&session, &state, &path, &form).await?;
    let i = session.texts().insights();
    let title = format!("{} · {}", i.analytics, program.name);
    let report = match report {
        Ok(r) => r,
        Err(_) => {
            let body = html! {
                (tabs(&session, &program, "analytics"))
                (range_form(&session, &program, &form, true))
            };
            return Ok(session.page_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                Section::Insights,
                &title,
                body,
            ));
        }
    };
    let currency = program.currency;
    let periods: Vec<serde_json::Value> = report
        .periods
        .iter()
        .map(|p| serde_json::to_value(p).unwrap_or_default())
        .collect();
    let labels: Vec<String> = report.periods.iter().map(|p| p.period.clone()).collect();
    let qs = form.query_string();
    let csv_href = format!("/console/programs/{}/analytics.csv?{qs}", program.id);
    let cohorts_href = format!("/console/programs/{}/cohorts.csv?{qs}", program.id);
    let chart = |id: &str, title: &str, keys: &[&str]| {
        period_chart(
            &session, currency, &periods, &labels, id, title, keys, &csv_href,
        )
    };
    let body = html! {
        (tabs(&session, &program, "analytics"))
        (range_form(&session, &program, &form, false))
        (chart("revenue", i.chart_revenue, &["revenue"]))
        (chart("active", i.chart_active, &["members_active", "members_new"]))
        (chart("repeat", i.chart_repeat, &["repeat_purchase_rate_percent"]))
        (chart("points", i.chart_points, &["points_earned", "points_spent", "points_expired"]))
        (chart("installs", i.chart_installs, &["apple_installs", "google_installs", "google_removals"]))
        (chart("nps-periods", i.chart_nps, &["nps"]))
        (totals(&session, currency, &report.total, i))
        (cohorts(&session, currency, &report.cohorts, &cohorts_href))
        (nps_by_segment(&session, &report, i))
    };
    Ok(session.page(Section::Insights, &title, body))
}

/// The cohorts as CSV, one row per cohort and month since signup:
/// `month,members,revenue,revenue_per_member,months_since_signup,active,retention_percent`.
pub fn cohorts_csv(report: &Report) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    out.write_record([
        "month",
        "members",
        "revenue",
        "revenue_per_member",
        "months_since_signup",
        "active",
        "retention_percent",
    ])
    .map_err(fail)?;
    for c in &report.cohorts {
        for (k, active) in c.active.iter().enumerate() {
            let retention = c
                .retention_percent
                .get(k)
                .copied()
                .flatten()
                .map_or(String::new(), |p| p.to_string());
            out.write_record([
                c.month.clone(),
                c.members.to_string(),
                c.revenue.to_string(),
                c.revenue_per_member
                    .map_or(String::new(), |v| v.to_string()),
                k.to_string(),
                active.to_string(),
                retention,
            ])
            .map_err(fail)?;
        }
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))
}

async fn report_for_download(
    session: &StaffSession,
    state: &AppState,
    raw: &str,
    form: &RangeForm,
) -> Result<(Program, Report), PageError> {
    let Loaded { program, report } = load(session, state, raw, form).await?;
    // A range the API would refuse is refused here the same way (422 page).
    let report = report.map_err(|e| session.failed(e))?;
    Ok((program, report))
}

pub async fn download(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Query<RangeForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let (program, report) = report_for_download(&session, &state, &path, &form).await?;
    let body = report::csv(&report).map_err(|e| session.failed(e))?;
    Ok(insights_page::csv(
        &format!("analytics-{}.csv", program.id),
        body,
    ))
}

pub async fn download_cohorts(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Query<RangeForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let (program, report) = report_for_download(&session, &state, &path, &form).await?;
    let body = cohorts_csv(&report).map_err(|e| session.failed(e))?;
    Ok(insights_page::csv(
        &format!("cohorts-{}.csv", program.id),
        body,
    ))
}
