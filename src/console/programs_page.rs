//! Programs (owners only): the list, and a program's page with its rules as a form. "Preview
//! the change" runs `loyalty::program::update` with `dry_run` (as `PUT
//! /api/v1/programs/{id}?dry_run=true` does) and shows what would happen; "Save" applies
//! the values that were previewed (a form changed since its preview is previewed again
//! rather than saved), with an audit line in the same transaction.

use super::error::PageError;
use super::format::{number, when};
use super::i18n::{fill, PageTexts, Texts};
use super::paging::{cut, pager, parse_time_cursor, time_cursor, PAGE};
use super::session::{Section, StaffSession};
use crate::app::AppState;
use crate::db;
use crate::loyalty::program::{self, CreateProgram, Effects};
use crate::loyalty::{ReferralRule, ReferralTrigger, Tier};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use diesel::Connection;
use maud::{html, Markup};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    after: Option<String>,
}

pub async fn list(
    session: StaffSession,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Programs)?;
    let t = session.texts();
    let w = t.pages();
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(parse_time_cursor(a).ok_or(PageError::NotFound(session.lang))?),
        None => None,
    };
    let tenant = session.tenant;
    let rows = db::run(&state.pool, move |conn| {
        Ok(Program::page(conn, &tenant, after, PAGE + 1)?)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let (rows, more) = cut(rows);
    let next = more.then(|| rows.last()).flatten().map(|p| {
        format!(
            "/console/programs?after={}",
            time_cursor(p.created_at, p.id)
        )
    });
    let first = after.map(|_| "/console/programs".to_string());
    let body = html! {
        section class="panel" {
            @if rows.is_empty() {
                p class="note" { (w.no_programs) }
            } @else {
                div class="table-wrap" {
                    table class="cards" id="programs" {
                        thead { tr {
                            th scope="col" { (w.name) }
                            th scope="col" { (w.currency) }
                            th scope="col" { (w.welcome_points) }
                            th scope="col" { (w.created) }
                        } }
                        tbody {
                            @for p in &rows {
                                tr data-program=(p.id) {
                                    td data-label=(w.name) { a href=(format!("/console/programs/{}", p.id)) { (p.name) } }
                                    td data-label=(w.currency) { (p.currency.code()) }
                                    td data-label=(w.welcome_points) { (number(session.lang, p.welcome_points)) }
                                    td data-label=(w.created) { (when(p.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(t, "programs-pager", next, first))
        }
    };
    Ok(session.page(Section::Programs, w.programs, body))
}

/// The form's values as text, by field name: what the page shows and the POST sends back.
type Values = BTreeMap<String, String>;

fn values_of(program: &Program) -> Result<Values, ApiError> {
    let rules = program::rules(program)?;
    let mut v = Values::new();
    v.insert("name".into(), program.name.clone());
    v.insert("points_per_unit".into(), rules.points_per_unit.to_string());
    v.insert("welcome_points".into(), rules.welcome_points.to_string());
    for (i, tier) in rules.tiers.iter().enumerate() {
        v.insert(format!("tier_name_{i}"), tier.name.clone());
        v.insert(format!("tier_min_{i}"), tier.min_points.to_string());
        if let Some(m) = tier.multiplier {
            v.insert(format!("tier_mult_{i}"), m.to_string());
        }
    }
    if let Some(r) = &rules.referral {
        v.insert("referral".into(), "on".into());
        v.insert("referrer_points".into(), r.referrer_points.to_string());
        v.insert("referee_points".into(), r.referee_points.to_string());
        let trigger = match r.trigger {
            ReferralTrigger::Join => "join",
            ReferralTrigger::FirstPurchase => "first_purchase",
        };
        v.insert("trigger".into(), trigger.into());
        if let Some(m) = r.min_purchase {
            v.insert("min_purchase".into(), m.to_string());
        }
        if let Some(c) = r.monthly_cap {
            v.insert("monthly_cap".into(), c.to_string());
        }
    }
    let l = &rules.lifecycle;
    for (name, value) in [
        ("points_expire_days", l.points_expire_days),
        ("welcome_points_expire_days", l.welcome_points_expire_days),
        ("max_points_payment_percent", l.max_points_payment_percent),
        ("point_value", l.point_value),
        ("tier_window_days", l.tier_window_days),
        (
            "birthday_points",
            (l.birthday_points > 0).then_some(l.birthday_points),
        ),
    ] {
        if let Some(n) = value {
            v.insert(name.into(), n.to_string());
        }
    }
    if !l.expiry_reminders_days.is_empty() {
        let days: Vec<String> = l.expiry_reminders_days.iter().map(i64::to_string).collect();
        v.insert("expiry_reminders_days".into(), days.join(", "));
    }
    if let Some(tz) = &l.timezone {
        v.insert("timezone".into(), tz.clone());
    }
    v.insert(
        "pos_max_purchase".into(),
        program.pos_max_purchase.to_string(),
    );
    v.insert(
        "pos_max_points_adjustment".into(),
        program.pos_max_points_adjustment.to_string(),
    );
    Ok(v)
}

/// The most tier rows a program holds (`CreateProgram`'s limit).
const MAX_TIERS: usize = 20;

fn tier_rows(v: &Values) -> usize {
    let used = (0..MAX_TIERS)
        .rev()
        .find(|i| v.contains_key(&format!("tier_name_{i}")))
        .map_or(0, |i| i + 1);
    (used + 2).min(MAX_TIERS)
}

/// The values as a program change, or the fields that are not numbers.
fn change_of(
    w: &PageTexts,
    program: &Program,
    v: &Values,
) -> Result<CreateProgram, Vec<FieldProblem>> {
    let problems = std::cell::RefCell::new(Vec::new());
    let text = |name: &str| v.get(name).map(|s| s.trim()).unwrap_or("");
    let int = |name: &str, pointer: &str| -> Option<i64> {
        let raw = text(name);
        if raw.is_empty() {
            return None;
        }
        match raw.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems
                    .borrow_mut()
                    .push(FieldProblem::new(pointer, w.not_a_number));
                None
            }
        }
    };
    let points_per_unit = int("points_per_unit", "/points_per_unit").unwrap_or(0);
    let welcome_points = int("welcome_points", "/welcome_points").unwrap_or(0);
    let pos_max_purchase = int("pos_max_purchase", "/pos_max_purchase");
    let pos_max_points_adjustment = int("pos_max_points_adjustment", "/pos_max_points_adjustment");
    let mut tiers = Vec::new();
    for i in 0..MAX_TIERS {
        let name = text(&format!("tier_name_{i}"));
        if name.is_empty() {
            continue;
        }
        let pointer = format!("/tiers/{}", tiers.len());
        let min_points =
            int(&format!("tier_min_{i}"), &format!("{pointer}/min_points")).unwrap_or(0);
        let mult = text(&format!("tier_mult_{i}"));
        let multiplier = if mult.is_empty() {
            None
        } else {
            match mult.replace(',', ".").parse::<f64>() {
                Ok(m) => Some(m),
                Err(_) => {
                    problems.borrow_mut().push(FieldProblem::new(
                        format!("{pointer}/multiplier"),
                        w.not_a_number,
                    ));
                    None
                }
            }
        };
        tiers.push(Tier {
            name: name.to_string(),
            min_points,
            multiplier,
        });
    }
    let referral = if text("referral") == "on" {
        Some(ReferralRule {
            referrer_points: int("referrer_points", "/referral/referrer_points").unwrap_or(0),
            referee_points: int("referee_points", "/referral/referee_points").unwrap_or(0),
            trigger: if text("trigger") == "first_purchase" {
                ReferralTrigger::FirstPurchase
            } else {
                ReferralTrigger::Join
            },
            min_purchase: int("min_purchase", "/referral/min_purchase"),
            monthly_cap: int("monthly_cap", "/referral/monthly_cap"),
        })
    } else {
        None
    };
    let mut reminders = Vec::new();
    for (i, part) in text("expiry_reminders_days")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        match part.parse::<i64>() {
            Ok(n) => reminders.push(n),
            Err(_) => problems.borrow_mut().push(FieldProblem::new(
                format!("/expiry_reminders_days/{i}"),
                w.not_a_number,
            )),
        }
    }
    let lifecycle = (
        int("points_expire_days", "/points_expire_days"),
        int("welcome_points_expire_days", "/welcome_points_expire_days"),
        int("max_points_payment_percent", "/max_points_payment_percent"),
        int("point_value", "/point_value"),
        int("birthday_points", "/birthday_points").unwrap_or(0),
        int("tier_window_days", "/tier_window_days"),
    );
    let timezone = Some(text("timezone").to_string()).filter(|t| !t.is_empty());
    let problems = problems.into_inner();
    if !problems.is_empty() {
        return Err(problems);
    }
    // The form does not show segment settings: a save keeps those the program has.
    let segments = crate::segments::Settings::of(&program.segments);
    Ok(CreateProgram {
        rfm_window_days: segments.rfm_window_days,
        rfm_thresholds: segments.rfm_thresholds,
        cooling_days: segments.cooling_days,
        lapsed_days: segments.lapsed_days,
        points_expire_days: lifecycle.0,
        welcome_points_expire_days: lifecycle.1,
        expiry_reminders_days: reminders,
        max_points_payment_percent: lifecycle.2,
        point_value: lifecycle.3,
        birthday_points: lifecycle.4,
        tier_window_days: lifecycle.5,
        timezone,
        name: text("name").to_string(),
        template: program.template_id.clone(),
        currency: program.currency.code().to_string(),
        points_per_unit,
        tiers,
        welcome_points,
        referral,
        pos_max_purchase,
        pos_max_points_adjustment,
    })
}

/// What a set of values is: the preview a save must match.
fn digest(v: &Values) -> String {
    let mut h = Sha256::new();
    for (k, val) in v {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(val.trim().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

fn field(v: &Values, id: &str, name: &str, label: &str, numeric: bool) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            input type="text" id=(id) name=(name) value=(v.get(name).map(String::as_str).unwrap_or(""))
                inputmode=[numeric.then_some("decimal")] maxlength="100" autocomplete="off";
        }
    }
}

/// The label of a field by its JSON pointer in the change, for problems.
fn label_of(t: &Texts, pointer: &str) -> String {
    let w = t.pages();
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["name"] => w.name.into(),
        ["points_per_unit"] => fill(w.points_per_unit, "currency", "").trim().to_string(),
        ["welcome_points"] => w.welcome_points.into(),
        ["tiers", i, rest @ ..] => {
            let n = i.parse::<usize>().map_or(1, |n| n + 1);
            let what = match rest.first().copied() {
                Some("name") => w.tier_name,
                Some("min_points") => w.tier_min,
                Some("multiplier") => w.tier_multiplier,
                _ => w.tiers,
            };
            format!("{} · {what}", fill(w.tier_row, "n", &n.to_string()))
        }
        ["tiers"] => w.tiers.into(),
        ["referral", rest @ ..] => match rest.first().copied() {
            Some("referrer_points") => w.referrer_points.into(),
            Some("referee_points") => w.referee_points.into(),
            Some("min_purchase") => w.min_purchase.into(),
            Some("monthly_cap") => w.monthly_cap.into(),
            _ => w.referral_title.into(),
        },
        ["points_expire_days"] => w.points_expire_days.into(),
        ["welcome_points_expire_days"] => w.welcome_points_expire_days.into(),
        ["expiry_reminders_days", ..] => w.expiry_reminders_days.into(),
        ["max_points_payment_percent"] => w.max_points_payment_percent.into(),
        ["point_value"] => w.point_value.into(),
        ["birthday_points"] => w.birthday_points.into(),
        ["tier_window_days"] => w.tier_window_days.into(),
        ["timezone"] => w.timezone.into(),
        ["pos_max_purchase"] => w.pos_max_purchase.into(),
        ["pos_max_points_adjustment"] => w.pos_max_points.into(),
        _ => pointer.to_string(),
    }
}

/// What the page shows above the form.
enum Outcome {
    None,
    Problems(Vec<FieldProblem>),
    /// The effects, the digest of the values previewed, and whether a save was asked for
    /// values that changed since their preview.
    Preview(Effects, String, bool),
    Saved,
}

fn effects_panel(session: &StaffSession, program: &Program, effects: &Effects) -> Markup {
    let t = session.texts();
    let w = t.pages();
    let lang = session.lang;
    let currency = program.currency.code();
    let tier = |name: &Option<String>| name.clone().unwrap_or_else(|| w.no_tier.to_string());
    let (earn_before, earn_after) = effects.example_purchase_points;
    let (welcome_before, welcome_after) = effects.welcome_points;
    let nothing = earn_before == earn_after
        && welcome_before == welcome_after
        && effects.tier_moves.is_empty()
        && effects.passes_to_update == 0;
    html! {
        section class="panel" id="effects" aria-labelledby="effects-title" {
            h2 id="effects-title" { (w.effects_title) }
            @if nothing {
                p id="nothing-changes" { (w.nothing_changes) }
            }
            ul class="effects" {
                @if earn_before != earn_after {
                    li id="effect-earning" {
                        (fill(&fill(&fill(w.example_earning, "currency", currency), "after", &number(lang, earn_after)), "before", &number(lang, earn_before)))
                    }
                }
                @if welcome_before != welcome_after {
                    li id="effect-welcome" {
                        (fill(&fill(w.welcome_change, "after", &number(lang, welcome_after)), "before", &number(lang, welcome_before)))
                    }
                }
                @if effects.passes_to_update > 0 {
                    li id="effect-cards" { (fill(w.cards_to_update, "n", &number(lang, effects.passes_to_update))) }
                }
            }
            @if !effects.tier_moves.is_empty() {
                h3 { (w.tier_moves_title) }
                div class="table-wrap" {
                    table class="cards" id="tier-moves" {
                        thead { tr {
                            th scope="col" { (w.tier_from) }
                            th scope="col" { (w.tier_to) }
                            th scope="col" { (w.members) }
                        } }
                        tbody {
                            @for m in &effects.tier_moves {
                                tr {
                                    td data-label=(w.tier_from) { (tier(&m.from)) }
                                    td data-label=(w.tier_to) { (tier(&m.to)) }
                                    td data-label=(w.members) { (number(lang, m.members)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn render(
    session: &StaffSession,
    status: StatusCode,
    program: &Program,
    v: &Values,
    outcome: Outcome,
) -> HttpResponse {
    let t = session.texts();
    let w = t.pages();
    let currency = program.currency.code();
    let referral_on = v.get("referral").is_some_and(|r| r == "on");
    let trigger = v.get("trigger").map(String::as_str).unwrap_or("join");
    let body = html! {
        // The program's segments, campaigns and analytics.
        (super::insights_page::tabs(session, program, ""))
        @match &outcome {
            Outcome::Problems(problems) => {
                div class="errors" role="alert" id="program-errors" {
                    p { (w.form_problems) }
                    ul { @for p in problems { li { (label_of(t, &p.pointer)) ": " (p.detail) } } }
                }
            }
            Outcome::Saved => p class="notice" role="status" id="program-saved" { (w.program_saved) },
            Outcome::Preview(effects, _, changed) => {
                @if *changed {
                    p class="notice" role="status" id="changed-since-preview" { (w.changed_since_preview) }
                }
                (effects_panel(session, program, effects))
            }
            Outcome::None => {}
        }
        form class="stack panel" id="program-form" method="post" action=(format!("/console/programs/{}", program.id)) {
            (session.csrf_field())
            @if let Outcome::Preview(_, digest, _) = &outcome {
                input type="hidden" name="previewed" value=(digest);
            }
            (field(v, "program-name", "name", w.name, false))
            (field(v, "points-per-unit", "points_per_unit", &fill(w.points_per_unit, "currency", currency), true))
            (field(v, "welcome-points", "welcome_points", w.welcome_points, true))
            fieldset {
                legend { (w.tiers) }
                p class="note" { (w.tiers_note) }
                @for i in 0..tier_rows(v) {
                    fieldset class="tier-row" {
                        legend { (fill(w.tier_row, "n", &(i + 1).to_string())) }
                        (field(v, &format!("tier-name-{i}"), &format!("tier_name_{i}"), w.tier_name, false))
                        (field(v, &format!("tier-min-{i}"), &format!("tier_min_{i}"), w.tier_min, true))
                        (field(v, &format!("tier-mult-{i}"), &format!("tier_mult_{i}"), w.tier_multiplier, true))
                    }
                }
            }
            fieldset {
                legend { (w.referral_title) }
                div class="check" {
                    input type="checkbox" id="referral" name="referral" value="on" checked[referral_on];
                    label for="referral" { (w.referral_enabled) }
                }
                (field(v, "referrer-points", "referrer_points", w.referrer_points, true))
                (field(v, "referee-points", "referee_points", w.referee_points, true))
                div {
                    label for="trigger" { (w.trigger) }
                    select id="trigger" name="trigger" {
                        option value="join" selected[trigger == "join"] { (w.trigger_join) }
                        option value="first_purchase" selected[trigger == "first_purchase"] { (w.trigger_first_purchase) }
                    }
                }
                (field(v, "min-purchase", "min_purchase", w.min_purchase, true))
                (field(v, "monthly-cap", "monthly_cap", w.monthly_cap, true))
            }
            fieldset {
                legend { (w.lifecycle_title) }
                p class="note" { (w.lifecycle_note) }
                (field(v, "points-expire-days", "points_expire_days", w.points_expire_days, true))
                (field(v, "welcome-expire-days", "welcome_points_expire_days", w.welcome_points_expire_days, true))
                (field(v, "expiry-reminders", "expiry_reminders_days", w.expiry_reminders_days, false))
                (field(v, "max-points-percent", "max_points_payment_percent", w.max_points_payment_percent, true))
                (field(v, "point-value", "point_value", w.point_value, true))
                (field(v, "birthday-points", "birthday_points", w.birthday_points, true))
                (field(v, "tier-window", "tier_window_days", w.tier_window_days, true))
                (field(v, "timezone", "timezone", w.timezone, false))
            }
            fieldset {
                legend { (w.pos_title) }
                (field(v, "pos-max-purchase", "pos_max_purchase", w.pos_max_purchase, true))
                (field(v, "pos-max-points", "pos_max_points_adjustment", w.pos_max_points, true))
            }
            div class="buttons" {
                button type="submit" name="intent" value="preview" id="program-preview"
                    class=[matches!(outcome, Outcome::Preview(..)).then_some("secondary")] { (w.preview_button) }
                @if matches!(outcome, Outcome::Preview(..)) {
                    button type="submit" name="intent" value="save" id="program-save" { (w.save_button) }
                }
            }
        }
    };
    session.page_with_status(status, Section::Programs, &program.name, body)
}

async fn find(session: &StaffSession, state: &AppState, id: Uuid) -> Result<Program, PageError> {
    let tenant = session.tenant;
    match db::run(&state.pool, move |conn| {
        Ok(Program::find(conn, &tenant, id)?)
    })
    .await
    {
        Ok(p) => Ok(p),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) => Err(session.failed(e)),
    }
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Programs)?;
    let id = session.id_in_path(&path)?;
    let program = find(&session, &state, id).await?;
    let values = values_of(&program).map_err(|e| session.failed(e))?;
    Ok(render(
        &session,
        StatusCode::OK,
        &program,
        &values,
        Outcome::None,
    ))
}

pub async fn change(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Programs)?;
    let id = session.id_in_path(&path)?;
    let program = find(&session, &state, id).await?;
    let mut values = Values::new();
    let mut intent = String::new();
    let mut previewed = String::new();
    for (k, v) in form.into_inner() {
        match k.as_str() {
            "intent" => intent = v,
            "previewed" => previewed = v,
            super::csrf::FIELD => {}
            _ => {
                values.insert(k, v);
            }
        }
    }
    let w = session.texts().pages();
    let input = match change_of(w, &program, &values) {
        Ok(input) => input,
        Err(problems) => {
            return Ok(render(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &program,
                &values,
                Outcome::Problems(problems),
            ))
        }
    };
    let digest = digest(&values);
    // Only what was previewed is saved.
    let save = intent == "save" && previewed == digest;
    let tenant = session.tenant;
    let channels = state.channels;
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let (updated, _, effects) = program::update(conn, channels, &tenant, id, input, !save)?;
            if save {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::PROGRAM_CHANGE,
                    serde_json::json!({ "program": id, "effects": effects.summary }),
                )?;
            }
            Ok::<_, ApiError>((updated, effects))
        })
    })
    .await;
    match done {
        Ok((updated, _)) if save => {
            state.pass_cache.evict_merchant(tenant.merchant_id());
            let values = values_of(&updated).map_err(|e| session.failed(e))?;
            Ok(render(
                &session,
                StatusCode::OK,
                &updated,
                &values,
                Outcome::Saved,
            ))
        }
        Ok((_, effects)) => Ok(render(
            &session,
            StatusCode::OK,
            &program,
            &values,
            Outcome::Preview(effects, digest, intent == "save"),
        )),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(PageError::NotFound(session.lang)),
        Err(e) if e.status.is_client_error() && !e.errors.is_empty() => Ok(render(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            &program,
            &values,
            Outcome::Problems(e.errors),
        )),
        Err(e) => Err(session.failed(e)),
    }
}
