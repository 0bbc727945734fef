//! A program's segments: the sizes `segments::sizes` gives (the same as `GET
//! /api/v1/programs/{id}/segments`) by named group and lifecycle stage, as bar charts and
//! tables, and the 27 RFM cells as three R × F tables, one per money score. Every count
//! links to the members page narrowed to that segment; the sizes download as CSV.

use super::charts::{self, Bar, Frame};
use super::error::PageError;
use super::format::{number, percent_of, when};
use super::i18n::{fill, name_in, InsightTexts};
use super::insights_page::{self, failed, program_of, tabs};
use super::session::{Section, StaffSession};
use crate::app::AppState;
use crate::db;
use crate::models::Program;
use crate::problem::ApiError;
use crate::segments::{self, Group, Sizes};
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use uuid::Uuid;

async fn load(
    session: &StaffSession,
    state: &AppState,
    raw: &str,
) -> Result<(Program, Sizes), PageError> {
    let id = session.id_in_path(raw)?;
    let tenant = session.tenant;
    db::run(&state.pool, move |conn| {
        let program = program_of(conn, &tenant, id)?;
        let sizes = segments::sizes(conn, &tenant, id)?;
        Ok((program, sizes))
    })
    .await
    .map_err(|e| failed(session, e))
}

fn members_link(program: Uuid, filter: &str, value: &str) -> String {
    format!("/console/members?program={program}&{filter}={value}")
}

/// Bars and a table of (key, name, members) for one kind of segment.
fn sized(
    session: &StaffSession,
    id: &str,
    title: &str,
    rows: &[(String, &'static str, i64, String)],
    total: i64,
    csv: &str,
) -> Markup {
    let lang = session.lang;
    let i = session.texts().insights();
    let bars: Vec<Bar> = rows
        .iter()
        .map(|(_, name, members, _)| Bar {
            label: (*name).to_string(),
            value: *members as f64,
        })
        .collect();
    let frame = Frame {
        id: &format!("chart-{id}"),
        title,
        empty: i.no_data,
    };
    html! {
        section class="panel" aria-labelledby=(format!("{id}-title")) id=(id) {
            h2 id=(format!("{id}-title")) { (title) }
            (charts::bars(&frame, &bars, &|v| number(lang, v as i64)))
            p { a href=(csv) class="csv" download { (i.download_csv) } }
            div class="table-wrap" {
                table class="cards" {
                    thead { tr {
                        th scope="col" { (i.segment) }
                        th scope="col" { (i.members) }
                        th scope="col" { (i.share) }
                    } }
                    tbody {
                        @for (key, name, members, href) in rows {
                            tr data-segment=(key) {
                                td data-label=(i.segment) { (name) }
                                td data-label=(i.members) { a href=(href) data-count=(members) { (number(lang, *members)) } }
                                td data-label=(i.share) {
                                    @if total > 0 { (percent_of(lang, *members as f64 / total as f64, 1)) } @else { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The 27 cells: a table of R (rows) by F (columns) for each money score, 3 first.
fn cells(session: &StaffSession, program: Uuid, sizes: &Sizes) -> Markup {
    let lang = session.lang;
    let i = session.texts().insights();
    let count = |cell: &str| {
        sizes
            .cells
            .iter()
            .find(|c| c.cell == cell)
            .map_or(0, |c| c.members)
    };
    html! {
        section class="panel" aria-labelledby="cells-title" id="cells" {
            h2 id="cells-title" { (i.cells_title) }
            p class="note" { (i.cells_note) }
            div class="rfm-grids" {
                @for m in ['3', '2', '1'] {
                    div class="table-wrap" {
                        table class="rfm" data-m=(m) {
                            caption { (fill(i.money_score, "m", &m.to_string())) }
                            thead { tr {
                                th scope="col" { (i.recency) " \\ " (i.frequency) }
                                @for f in ['3', '2', '1'] { th scope="col" { (i.frequency) " " (f) } }
                            } }
                            tbody {
                                @for r in ['3', '2', '1'] {
                                    tr {
                                        th scope="row" { (i.recency) " " (r) }
                                        @for f in ['3', '2', '1'] {
                                            @let cell = format!("{r}{f}{m}");
                                            @let group = segments::rfm::group_of(&cell).unwrap_or(Group::NoPurchases);
                                            td data-cell=(cell) {
                                                a href=(members_link(program, "cell", &cell)) title=(name_in(lang, group.name_en(), group.name_ru())) {
                                                    (number(lang, count(&cell)))
                                                }
                                                span class="cell-group" { (name_in(lang, group.name_en(), group.name_ru())) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn cut_points(session: &StaffSession, sizes: &Sizes, i: &InsightTexts) -> Markup {
    let lang = session.lang;
    let w = session.texts().pages();
    html! {
        section class="panel" aria-labelledby="segments-summary" {
            h2 id="segments-summary" class="visually-hidden" { (i.segments) }
            dl class="figure-list" {
                div { dt { (w.members) } dd id="segment-members" data-count=(sizes.members) { (number(lang, sizes.members)) } }
            }
            @match &sizes.cut_points {
                Some(c) => p class="note" id="cut-points" { (fill(i.computed_at, "time", &when(c.computed_at))) },
                None => p class="note" id="not-recomputed" { (i.not_recomputed) },
            }
        }
    }
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let (program, sizes) = load(&session, &state, &path).await?;
    let lang = session.lang;
    let i = session.texts().insights();
    let base = format!("/console/programs/{}/segments.csv", program.id);
    let groups: Vec<_> = sizes
        .groups
        .iter()
        .map(|g| {
            (
                g.group.as_str().to_string(),
                name_in(lang, g.name_en, g.name_ru),
                g.members,
                members_link(program.id, "group", g.group.as_str()),
            )
        })
        .collect();
    let stages: Vec<_> = sizes
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.as_str().to_string(),
                name_in(lang, s.name_en, s.name_ru),
                s.members,
                members_link(program.id, "stage", s.stage.as_str()),
            )
        })
        .collect();
    let body = html! {
        (tabs(&session, &program, "segments"))
        (cut_points(&session, &sizes, i))
        (sized(&session, "groups", i.chart_groups, &groups, sizes.members, &base))
        (sized(&session, "stages", i.chart_stages, &stages, sizes.members, &base))
        (cells(&session, program.id, &sizes))
    };
    let title = format!("{} · {}", i.segments, program.name);
    Ok(session.page(Section::Insights, &title, body))
}

/// The sizes as CSV: `kind,segment,name_en,name_ru,members`, the groups, the stages and
/// the 27 cells (a cell named by its group), as the API's JSON has them.
pub fn sizes_csv(sizes: &Sizes) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    out.write_record(["kind", "segment", "name_en", "name_ru", "members"])
        .map_err(fail)?;
    for g in &sizes.groups {
        let n = g.members.to_string();
        out.write_record(["group", g.group.as_str(), g.name_en, g.name_ru, &n])
            .map_err(fail)?;
    }
    for s in &sizes.stages {
        let n = s.members.to_string();
        out.write_record(["stage", s.stage.as_str(), s.name_en, s.name_ru, &n])
            .map_err(fail)?;
    }
    for c in &sizes.cells {
        let n = c.members.to_string();
        out.write_record(["cell", &c.cell, c.group.name_en(), c.group.name_ru(), &n])
            .map_err(fail)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))
}

pub async fn download(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Insights)?;
    let (program, sizes) = load(&session, &state, &path).await?;
    let body = sizes_csv(&sizes).map_err(|e| session.failed(e))?;
    Ok(insights_page::csv(
        &format!("segments-{}.csv", program.id),
        body,
    ))
}
