//! Members: a search (name, email, phone or card number; the API's `Member::search`, a
//! page at a time by cursor, "Next" and back to the first page; narrowed to a program's
//! RFM group, cell or lifecycle stage as the API's list is, which is where the segments
//! page's counts lead), a member's page (points,
//! tier, ledger, installed cards, referrals made), and the owner's "Adjust points" form,
//! which moves points through `loyalty::points::adjust` under the API's idempotency, with
//! the key a hidden field made when the form was rendered: a double submit moves once.

use super::error::PageError;
use super::format::{delta, number, when};
use super::i18n::PageTexts;
use super::paging::{cut, pager, parse_time_cursor, q, time_cursor, PAGE};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::db;
use crate::domain::{PageCursor, PointActivityType, ReferralStatus, SearchTerm};
use crate::idempotency::{self, IdempotencyKey};
use crate::loyalty::points::{self, PointsAdjustment};
use crate::loyalty::referral::{self, ReferralEntry};
use crate::models::member::{Member, SearchQuery};
use crate::models::point_activity::PointActivity;
use crate::models::{Pass, Program};
use crate::privacy::erasure;
use crate::problem::{ApiError, ProblemKind};
use crate::segments;
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SearchForm {
    q: String,
    cursor: Option<String>,
    /// A program and one of its segments (the segments page's links), as the API's list
    /// narrows: `group`, `cell` or `stage`.
    program: Option<String>,
    group: Option<String>,
    cell: Option<String>,
    stage: Option<String>,
}

impl SearchForm {
    /// The program and segment fields given, by name: what the page carries along.
    fn given(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("program", &self.program),
            ("group", &self.group),
            ("cell", &self.cell),
            ("stage", &self.stage),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            Some((name, value.as_deref().filter(|v| !v.trim().is_empty())?))
        })
    }

    /// The narrowing as a query string to carry to the next page ("" for none).
    fn narrowing(&self) -> String {
        self.given()
            .map(|(name, v)| format!("&{name}={}", q(v)))
            .collect()
    }

    /// The program and segment asked for; `Err` for what is no program id or no segment.
    fn segment(&self) -> Result<(Option<Uuid>, Option<segments::Filter>), ()> {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let program = match given(&self.program) {
            Some(p) => Some(Uuid::parse_str(&p).map_err(|_| ())?),
            None => None,
        };
        let (group, cell, stage) = (given(&self.group), given(&self.cell), given(&self.stage));
        let filter = segments::Filter::parse(group.as_deref(), cell.as_deref(), stage.as_deref())
            .map_err(|_| ())?;
        Ok((program, filter))
    }
}

/// A segment's name in the staff member's language.
fn segment_name(lang: crate::domain::Language, filter: &segments::Filter) -> String {
    use super::i18n::name_in;
    match filter {
        segments::Filter::Group(g) => name_in(lang, g.name_en(), g.name_ru()).to_string(),
        segments::Filter::Stage(s) => name_in(lang, s.name_en(), s.name_ru()).to_string(),
        segments::Filter::Cell(c) => {
            let group = segments::rfm::group_of(c)
                .map(|g| name_in(lang, g.name_en(), g.name_ru()))
                .unwrap_or("");
            format!("RFM {c} ({group})")
        }
    }
}

pub async fn search(
    session: StaffSession,
    state: web::Data<AppState>,
    form: web::Query<SearchForm>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Members)?;
    let t = session.texts();
    let w = t.pages();
    let lang = session.lang;
    let narrowed = form.segment();
    let term = match narrowed {
        Ok(_) => SearchTerm::parse(Some(&form.q)),
        Err(()) => Err(String::new()),
    };
    let (program_id, segment) = narrowed.unwrap_or_default();
    let narrowing = form.narrowing();
    let after = match form.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(PageCursor::decode(c).map_err(|_| PageError::NotFound(lang))?),
        None => None,
    };
    let (found, next) = match term {
        Ok(term) => {
            let tenant = session.tenant;
            let query = SearchQuery {
                program_id,
                term,
                segment: segment.clone(),
                narrow: Default::default(),
            };
            let rows = db::run(&state.pool, move |conn| {
                Ok(Member::search(
                    conn,
                    &tenant,
                    &query,
                    after.as_ref(),
                    PAGE + 1,
                )?)
            })
            .await
            .map_err(|e| session.failed(e))?;
            let (rows, more) = cut(rows);
            let next = more.then(|| rows.last()).flatten().map(|last| {
                let cursor = PageCursor {
                    key: last.sort_key.clone(),
                    id: last.member.id,
                }
                .encode();
                format!(
                    "/console/members?q={}{narrowing}&cursor={}",
                    q(&form.q),
                    cursor
                )
            });
            (Some(rows), next)
        }
        Err(_) => (None, None),
    };
    let first = form
        .cursor
        .is_some()
        .then(|| format!("/console/members?q={}{narrowing}", q(&form.q)));
    let i = t.insights();
    let tenant = session.tenant;
    let programs = db::run(&state.pool, move |conn| {
        Ok(Program::page(conn, &tenant, None, PAGE)?)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let body = html! {
        section class="panel" {
            @if let Some(filter) = &segment {
                p class="notice" id="segment-filter" {
                    (super::i18n::fill(i.only_segment, "segment", &segment_name(lang, filter)))
                    " · " a href="/console/members" { (i.all_members) }
                }
            }
            form class="search" method="get" action="/console/members" role="search" {
                @for (name, v) in form.given() {
                    input type="hidden" name=(name) value=(v);
                }
                div {
                    label for="member-q" { (w.search_label) }
                    input type="search" id="member-q" name="q" value=(form.q) maxlength="254";
                }
                button type="submit" id="member-search" { (w.search_button) }
            }
        }
        section class="panel" aria-label=(w.members) {
            @match &found {
                None => p class="errors" role="alert" id="search-error" { (w.bad_search) },
                Some(rows) if rows.is_empty() => p class="note" id="no-members" { (w.no_members) },
                Some(rows) => {
                    div class="table-wrap" {
                        table class="cards" id="member-results" {
                            thead { tr {
                                th scope="col" { (w.name) }
                                th scope="col" { (w.card_number) }
                                th scope="col" { (t.email) }
                                th scope="col" { (w.phone) }
                                th scope="col" { (w.points) }
                                th scope="col" { (w.tier) }
                            } }
                            tbody {
                                @for f in rows {
                                    tr data-member=(f.member.id) {
                                        td data-label=(w.name) {
                                            a href=(format!("/console/members/{}", f.member.id)) { (f.member.name) }
                                        }
                                        td data-label=(w.card_number) { (f.member.card_number) }
                                        td data-label=(t.email) { (f.member.email.as_deref().unwrap_or("")) }
                                        td data-label=(w.phone) { (f.member.phone.as_deref().unwrap_or("")) }
                                        td data-label=(w.points) { (number(lang, f.member.points)) }
                                        td data-label=(w.tier) { (f.member.tier.as_deref().unwrap_or("")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "member-pager", next, first))
        }
        (downloads(&session, &programs, &form))
    };
    Ok(session.page(Section::Members, w.members, body))
}

/// "Download CSV": the export of `GET /api/v1/exports/members.csv`, with the search's
/// words and segment, for the program searched in or else for each program.
fn downloads(session: &StaffSession, programs: &[Program], form: &SearchForm) -> Markup {
    let p = session.texts().privacy();
    // The export names its program in the path; the search's words and segment go along.
    let filters: String = std::iter::once(("q", form.q.as_str()))
        .chain(form.given().filter(|(name, _)| *name != "program"))
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(name, v)| format!("&{name}={}", q(v.trim())))
        .collect();
    let wanted = form.program.as_deref().filter(|p| !p.is_empty());
    let shown: Vec<&Program> = programs
        .iter()
        .filter(|p| wanted.is_none_or(|w| w == p.id.to_string()))
        .collect();
    html! {
        @if !shown.is_empty() {
            section class="panel" aria-labelledby="download-title" id="downloads" {
                h2 id="download-title" { (p.download_title) }
                p class="note" { (p.download_members_note) }
                ul {
                    @for program in shown {
                        li { a href=(format!("/console/members.csv?program_id={}{filters}", program.id)) download data-program=(program.id) {
                            (super::i18n::fill(p.download_program, "program", &program.name))
                        } }
                    }
                }
            }
        }
    }
}

fn kind_text(w: &PageTexts, kind: PointActivityType) -> &'static str {
    match kind {
        PointActivityType::Welcome => w.kind_welcome,
        PointActivityType::Earn => w.kind_purchase,
        PointActivityType::Adjust => w.kind_adjust,
        PointActivityType::Referral => w.kind_referral,
        PointActivityType::Tier => w.kind_tier,
        PointActivityType::Spend => w.kind_spend,
        PointActivityType::Expire => w.kind_expire,
        PointActivityType::Refund => w.kind_refund,
        PointActivityType::Birthday => w.kind_birthday,
        PointActivityType::Campaign => w.kind_campaign,
        PointActivityType::Import => w.kind_import,
    }
}

fn status_text(w: &PageTexts, status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Pending => w.referral_pending,
        ReferralStatus::Rewarded => w.referral_rewarded,
        ReferralStatus::Capped => w.referral_capped,
        ReferralStatus::NoRule => w.referral_no_rule,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MemberQuery {
    /// The ledger's cursor: the `seq` of the last row shown.
    before: Option<String>,
    /// The referrals' cursor.
    referrals: Option<String>,
    adjusted: Option<String>,
    erased: Option<String>,
}

/// What the member's page shows.
struct MemberData {
    member: Member,
    program: Program,
    apple: i64,
    google: bool,
    ledger: Vec<PointActivity>,
    more_ledger: bool,
    referrals: Vec<ReferralEntry>,
    more_referrals: bool,
    /// The next expiry: points and the program's local day.
    expiry: Option<(i64, chrono::NaiveDate)>,
    /// Points a return should have taken but were spent, owed from future gains.
    owed: i64,
    /// Whether this is not the first page of the ledger or the referrals.
    later_pages: bool,
}

async fn load(
    session: &StaffSession,
    state: &AppState,
    id: Uuid,
    query: &MemberQuery,
) -> Result<MemberData, PageError> {
    let lang = session.lang;
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(b.parse::<i64>().map_err(|_| PageError::NotFound(lang))?),
        None => None,
    };
    let referrals_before = match query.referrals.as_deref().filter(|b| !b.is_empty()) {
        Some(c) => Some(parse_time_cursor(c).ok_or(PageError::NotFound(lang))?),
        None => None,
    };
    let tenant = session.tenant;
    let found = db::run(&state.pool, move |conn| {
        let member = Member::find(conn, &tenant, id)?;
        let program = Program::find(conn, &tenant, member.program_id)?;
        let pass = Pass::of_member(conn, &tenant, id)?;
        let (apple, google) = Pass::installs(conn, &tenant, pass.id)?;
        let ledger = PointActivity::page_of_member(conn, &tenant, id, before, PAGE + 1)?;
        let referrals =
            referral::of_referrer_page(conn, &tenant, &member, referrals_before, PAGE + 1)?;
        let (ledger, more_ledger) = cut(ledger);
        let (referrals, more_referrals) = cut(referrals);
        let expiry =
            crate::loyalty::lots::next_expiry(conn, tenant.merchant_id(), id, program.tz())?;
        let owed = member.points_owed;
        Ok(MemberData {
            expiry,
            owed,
            member,
            program,
            apple,
            google,
            ledger,
            more_ledger,
            referrals,
            more_referrals,
            later_pages: before.is_some() || referrals_before.is_some(),
        })
    })
    .await;
    match found {
        Ok(data) => Ok(data),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(lang)),
        Err(e) => Err(session.failed(e)),
    }
}

/// The adjust form, with a fresh idempotency key each time it is rendered.
fn adjust_form(session: &StaffSession, member: Uuid, problem: Option<&str>) -> Markup {
    let w = session.texts().pages();
    html! {
        section class="panel" aria-labelledby="adjust-title" {
            h2 id="adjust-title" { (w.adjust_title) }
            @if let Some(problem) = problem {
                p class="errors" role="alert" id="adjust-error" { (problem) }
            }
            form class="stack" id="adjust" method="post" action=(format!("/console/members/{member}/points")) {
                (session.csrf_field())
                input type="hidden" name="idempotency_key" value=(Uuid::new_v4());
                div {
                    label for="adjust-delta" { (w.delta) }
                    input type="text" inputmode="numeric" id="adjust-delta" name="delta" required
                        pattern="-?[0-9]+" maxlength="11" autocomplete="off";
                }
                div {
                    label for="adjust-reason" { (w.reason) }
                    input type="text" id="adjust-reason" name="reason" required maxlength="200" autocomplete="off";
                }
                button type="submit" id="adjust-submit" { (w.adjust_button) }
            }
        }
    }
}

/// The member's page; `notice` is (its id, its words); `problem` is the adjust form's,
/// `erase_problem` the erase form's.
fn render(
    session: &StaffSession,
    status: StatusCode,
    data: MemberData,
    notice: Option<(&str, &str)>,
    problem: Option<&str>,
    erase_problem: Option<&str>,
) -> HttpResponse {
    let t = session.texts();
    let w = t.pages();
    let lang = session.lang;
    let m = &data.member;
    let base = format!("/console/members/{}", m.id);
    let ledger_next = data
        .more_ledger
        .then(|| data.ledger.last())
        .flatten()
        .map(|last| format!("{base}?before={}#ledger-title", last.seq));
    let referrals_next = data
        .more_referrals
        .then(|| data.referrals.last())
        .flatten()
        .map(|last| {
            format!(
                "{base}?referrals={}#referrals-title",
                time_cursor(last.joined_at, last.referral_id)
            )
        });
    let body = html! {
        @if let Some(notice) = notice {
            p class="notice" role="status" id=(notice.0) { (notice.1) }
        }
        section class="panel" aria-label=(m.name) {
            dl class="figure-list" id="member-figures" {
                div { dt { (w.program) } dd { (data.program.name) } }
                div { dt { (w.card_number) } dd id="member-card-number" { (m.card_number) } }
                div { dt { (w.points) } dd id="member-points" data-points=(m.points) { (number(lang, m.points)) } }
                div { dt { (w.lifetime_points) } dd id="member-lifetime" { (number(lang, m.lifetime_points)) } }
                div { dt { (w.tier) } dd id="member-tier" { (m.tier.as_deref().unwrap_or(w.no_tier)) } }
                @if let Some((points, day)) = data.expiry {
                    div { dt { (w.kind_expire) } dd id="member-expiry" { (crate::messages::expiry_text(lang.as_str(), points, day).1) } }
                }
                @if data.owed > 0 {
                    div { dt { (w.points_owed) } dd id="member-owed" { (number(lang, data.owed)) } }
                }
                @if let Some(email) = &m.email { div { dt { (t.email) } dd { (email) } } }
                @if let Some(phone) = &m.phone { div { dt { (w.phone) } dd { (phone) } } }
                @if let Some(at) = m.erased_at {
                    div { dt { (session.texts().privacy().erased_at) } dd id="member-erased" { (when(at)) } }
                }
            }
        }
        // An erased member's points can no longer move (the API answers 410): no forms.
        @if Section::CardChanges.allows(session.role) && m.erased_at.is_none() {
            (adjust_form(session, m.id, problem))
        }
        section class="panel" aria-labelledby="devices-title" {
            h2 id="devices-title" { (w.devices_title) }
            dl class="figure-list" {
                div { dt { (w.apple_devices) } dd id="apple-devices" { (number(lang, data.apple)) } }
                div { dt { (w.google_saved) } dd id="google-saved" { (if data.google { w.yes } else { w.no }) } }
            }
        }
        section class="panel" aria-labelledby="ledger-title" {
            h2 id="ledger-title" { (w.ledger_title) }
            @if data.ledger.is_empty() {
                p class="note" { (w.no_ledger) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="ledger" {
                        thead { tr {
                            th scope="col" { (t.when) }
                            th scope="col" { (w.kind) }
                            th scope="col" { (w.change) }
                            th scope="col" { (w.balance_after) }
                            th scope="col" { (w.reason) }
                        } }
                        tbody {
                            @for a in &data.ledger {
                                tr data-kind=(a.kind.as_str()) {
                                    td data-label=(t.when) { (when(a.created_at)) }
                                    td data-label=(w.kind) {
                                        (kind_text(w, a.kind))
                                        @if let Some(tier) = &a.tier_after { " → " (tier) }
                                    }
                                    td data-label=(w.change) class="delta" { (delta(lang, a.delta)) }
                                    td data-label=(w.balance_after) { (number(lang, a.points_after)) }
                                    td data-label=(w.reason) { (a.reason.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "ledger-pager", ledger_next, data.later_pages.then(|| base.clone())))
        }
        section class="panel" aria-labelledby="referrals-title" {
            h2 id="referrals-title" { (w.referrals_title) }
            @if data.referrals.is_empty() {
                p class="note" { (w.no_referrals) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="referrals" {
                        thead { tr {
                            th scope="col" { (t.when) }
                            th scope="col" { (w.referee) }
                            th scope="col" { (w.status) }
                            th scope="col" { (w.reward) }
                        } }
                        tbody {
                            @for r in &data.referrals {
                                tr {
                                    td data-label=(t.when) { (when(r.joined_at)) }
                                    td data-label=(w.referee) {
                                        a href=(format!("/console/members/{}", r.referee_id)) { (r.referee_name) }
                                    }
                                    td data-label=(w.status) { (status_text(w, r.status)) }
                                    td data-label=(w.reward) { (delta(lang, r.reward)) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "referrals-pager", referrals_next, data.later_pages.then(|| base.clone())))
        }
        @if Section::CardChanges.allows(session.role) && m.erased_at.is_none() {
            (erase_form(session, m.id, erase_problem))
        }
    };
    session.page_with_status(status, Section::Members, &m.name, body)
}

/// The owner's erasure: a checkbox to confirm, checked on the server too.
fn erase_form(session: &StaffSession, member: Uuid, problem: Option<&str>) -> Markup {
    let p = session.texts().privacy();
    html! {
        section class="panel" aria-labelledby="erase-title" {
            h2 id="erase-title" { (p.erase_title) }
            p class="note" { (p.erase_note) }
            @if let Some(problem) = problem {
                p class="errors" role="alert" id="erase-error" { (problem) }
            }
            form class="stack" id="erase" method="post" action=(format!("/console/members/{member}/erase")) {
                (session.csrf_field())
                label class="check" {
                    input type="checkbox" name="confirm" value="yes" id="erase-confirm" required;
                    (p.erase_confirm)
                }
                button type="submit" class="danger" id="erase-submit" { (p.erase_button) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EraseForm {
    confirm: String,
}

/// Erases the member's personal data through `privacy::erasure::erase` (the code of
/// `DELETE /api/v1/members/{id}`), with the audit line `member_erase` in the same
/// transaction when it erased anything (a second erasure changes nothing and writes
/// nothing); then the member's page, erased.
pub async fn erase(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<EraseForm>,
) -> Result<HttpResponse, PageError> {
    // Refused on the server for cashiers, whatever the page showed them.
    session.require(Section::CardChanges)?;
    let id = session.id_in_path(&path)?;
    if form.confirm != "yes" {
        let data = load(&session, &state, id, &MemberQuery::default()).await?;
        let problem = session.texts().privacy().erase_unconfirmed;
        return Ok(render(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            data,
            None,
            None,
            Some(problem),
        ));
    }
    let (tenant, actor, now, channels) = (
        session.tenant,
        session.actor(),
        state.clock.now(),
        state.channels,
    );
    let erased = db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction::<_, ApiError, _>(|conn| {
            let erased = erasure::erase(conn, channels, &tenant, id, now)?;
            if erased.now {
                // The member's id only: an erasure wipes names from audit lines anyway.
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::MEMBER_ERASE,
                    serde_json::json!({ "member": id }),
                )?;
            }
            Ok(erased)
        })
    })
    .await;
    match erased {
        Ok(erased) => {
            erased.committed(&state.pass_cache);
            Ok(to(&format!("/console/members/{id}?erased=1")))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) => Err(session.failed(e)),
    }
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<MemberQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Members)?;
    let id = session.id_in_path(&path)?;
    let data = load(&session, &state, id, &query).await?;
    let w = session.texts().pages();
    let notice = if query.erased.is_some() {
        Some(("erased", session.texts().privacy().erased_notice))
    } else {
        query.adjusted.is_some().then_some(("adjusted", w.adjusted))
    };
    Ok(render(&session, StatusCode::OK, data, notice, None, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AdjustForm {
    delta: String,
    reason: String,
    idempotency_key: String,
}

/// The member's page again with why the points did not move.
async fn refused(
    session: &StaffSession,
    state: &AppState,
    id: Uuid,
    status: StatusCode,
    problem: &str,
) -> Result<HttpResponse, PageError> {
    let data = load(session, state, id, &MemberQuery::default()).await?;
    Ok(render(session, status, data, None, Some(problem), None))
}

fn refusal_of(w: &PageTexts, kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::InsufficientFunds => w.adjust_too_many,
        _ => w.adjust_invalid,
    }
}

pub async fn adjust(
    req: HttpRequest,
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AdjustForm>,
) -> Result<HttpResponse, PageError> {
    // Refused on the server for cashiers, whatever the page showed them.
    session.require(Section::CardChanges)?;
    let id = session.id_in_path(&path)?;
    let w = session.texts().pages();
    let Some(key) = IdempotencyKey::of_console_form(&form.idempotency_key) else {
        return Err(session.failed(ApiError::bad_request("the form carries no idempotency key")));
    };
    let Ok(points_delta) = form.delta.trim().parse::<i64>() else {
        return refused(
            &session,
            &state,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            w.adjust_invalid,
        )
        .await;
    };
    let reason = form.reason.trim().to_string();
    let body = serde_json::json!({ "delta": points_delta, "reason": reason });
    let fingerprint = idempotency::fingerprint("POST", req.path(), &body);
    let tenant = session.tenant;
    let actor = session.actor();
    let now = state.clock.now();
    let channels = state.channels;
    let outcome = db::run(&state.pool, move |conn| {
        idempotency::run(conn, &tenant, &key, &fingerprint, StatusCode::OK, |conn| {
            let adjustment = PointsAdjustment {
                delta: points_delta,
                reason: reason.clone(),
            };
            let change = points::adjust(conn, (channels, now), &tenant, id, &adjustment)?;
            audit::record(
                conn,
                &actor,
                now,
                audit::POINTS_ADJUST,
                serde_json::json!({
                    "member": id,
                    "delta": points_delta,
                    "reason": reason,
                    "points_after": change.points,
                }),
            )?;
            Ok(change)
        })
    })
    .await;
    match outcome {
        Ok((answer, change)) => {
            if let Some(change) = change {
                state.pass_cache.evict_pass(change.pass_id);
                for pass in change.also_changed {
                    state.pass_cache.evict_pass(pass);
                }
            }
            if answer.status >= 400 {
                // A resubmission of a form that was refused: refused again, nothing moved.
                let kind = serde_json::from_slice::<serde_json::Value>(&answer.body)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_string))
                    .filter(|t| t.ends_with("insufficient-funds"))
                    .map_or(ProblemKind::Validation, |_| ProblemKind::InsufficientFunds);
                let status =
                    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                return refused(&session, &state, id, status, refusal_of(w, kind)).await;
            }
            Ok(to(&format!("/console/members/{id}?adjusted=1")))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) if e.status.is_client_error() && e.kind != ProblemKind::IdempotencyKeyInUse => {
            refused(&session, &state, id, e.status, refusal_of(w, e.kind)).await
        }
        Err(e) => Err(session.failed(e)),
    }
}
