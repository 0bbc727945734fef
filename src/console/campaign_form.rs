//! The owner's form for a new campaign. One writer: the form's fields become the JSON body
//! `POST /api/v1/programs/{id}/campaigns` takes, which is read into the same `NewCampaign`
//! and created by the same `campaigns::create` (its checks, its sending hours), under the
//! API's idempotency with the key a hidden field made when the form was rendered (a double
//! submit creates one campaign), with an audit line in the same transaction. The console
//! only turns what a form cannot say in JSON terms: repeated checkboxes into lists, the
//! local send time (in the program's time zone) into an RFC 3339 instant.

use super::error::PageError;
use super::i18n::{fill, name_in, InsightTexts};
use super::insights_page::{failed, program_of, tabs};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::campaigns::{self, NewCampaign};
use crate::db;
use crate::idempotency::{self, IdempotencyKey};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use crate::segments::{Group, Stage};
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The form as sent: lists repeat, which a struct-shaped form cannot hold.
#[derive(Default)]
struct Fields {
    groups: Vec<String>,
    stages: Vec<String>,
    tiers: Vec<String>,
    text: std::collections::BTreeMap<String, String>,
}

impl Fields {
    fn parse(body: &[u8]) -> Fields {
        let mut f = Fields::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            match &*name {
                "groups" => f.groups.push(value.into_owned()),
                "stages" => f.stages.push(value.into_owned()),
                "tiers" => f.tiers.push(value.into_owned()),
                _ => {
                    f.text.insert(name.into_owned(), value.trim().to_string());
                }
            }
        }
        f
    }

    fn get(&self, name: &str) -> &str {
        self.text.get(name).map_or("", String::as_str)
    }
}

/// The API's body for these fields, or what the console could not read (numbers, dates).
fn body_of(
    f: &Fields,
    program: &Program,
    w: &super::i18n::PageTexts,
    i: &InsightTexts,
) -> Result<Value, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut audience = Map::new();
    for (kind, values) in [
        ("groups", &f.groups),
        ("stages", &f.stages),
        ("tiers", &f.tiers),
    ] {
        if !values.is_empty() {
            audience.insert(kind.into(), json!(values));
        }
    }
    let mut body = Map::new();
    body.insert("audience".into(), Value::Object(audience));
    let mut message = Map::new();
    let mut header = Map::new();
    for lang in ["en", "ru"] {
        let text = f.get(&format!("message_{lang}"));
        if !text.is_empty() {
            message.insert(lang.into(), json!(text));
        }
        let head = f.get(&format!("header_{lang}"));
        if !head.is_empty() {
            header.insert(lang.into(), json!(head));
        }
    }
    body.insert("message".into(), Value::Object(message));
    if !header.is_empty() {
        body.insert("header".into(), Value::Object(header));
    }
    for name in ["holdout_percent", "bonus_points", "cost_per_message"] {
        let raw = f.get(name);
        if raw.is_empty() {
            continue;
        }
        match raw.parse::<i64>() {
            Ok(n) => {
                body.insert(name.into(), json!(n));
            }
            Err(_) => problems.push(FieldProblem::new(format!("/{name}"), w.not_a_number)),
        }
    }
    let offer_text = f.get("offer_text");
    if !offer_text.is_empty() {
        let mut offer = Map::new();
        offer.insert("text".into(), json!(offer_text));
        let code = f.get("coupon_code");
        if !code.is_empty() {
            offer.insert("coupon_code".into(), json!(code));
        }
        let until = f.get("valid_until");
        if !until.is_empty() {
            match NaiveDate::parse_from_str(until, "%Y-%m-%d") {
                Ok(day) => {
                    offer.insert("valid_until".into(), json!(day));
                }
                Err(_) => problems.push(FieldProblem::new("/offer/valid_until", i.not_a_date)),
            }
        }
        body.insert("offer".into(), Value::Object(offer));
    }
    let send_at = f.get("send_at");
    if !send_at.is_empty() {
        // A wall time of the program's zone, as a phone's date-time field gives it.
        let local = NaiveDateTime::parse_from_str(send_at, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(send_at, "%Y-%m-%dT%H:%M:%S"))
            .ok()
            .and_then(|at| program.tz().from_local_datetime(&at).earliest());
        match local {
            Some(at) => {
                body.insert("send_at".into(), json!(at.to_rfc3339()));
            }
            None => problems.push(FieldProblem::new("/send_at", i.not_a_date)),
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(body))
    } else {
        Err(problems)
    }
}

fn label_of(session: &StaffSession, pointer: &str) -> &'static str {
    let i = session.texts().insights();
    let w = session.texts().pages();
    let first = pointer
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    match first {
        "audience" => i.audience,
        "holdout_percent" => i.holdout_percent,
        "message" => i.message_en,
        "header" => i.header_en,
        "bonus_points" => i.bonus_points,
        "offer" => i.offer_text,
        "send_at" => i.send_at,
        "cost_per_message" => i.cost_per_message,
        _ => w.form_problems,
    }
}

fn form(
    session: &StaffSession,
    program: &Program,
    f: &Fields,
    problems: &[FieldProblem],
) -> Markup {
    let lang = session.lang;
    let t = session.texts();
    let (w, i) = (t.pages(), t.insights());
    let tiers: Vec<String> = crate::loyalty::program::rules(program)
        .map(|r| r.tiers.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default();
    let checked = |list: &Vec<String>, v: &str| list.iter().any(|x| x == v);
    let holdout = match f.get("holdout_percent") {
        "" if f.text.is_empty() => campaigns::DEFAULT_HOLDOUT_PERCENT.to_string(),
        v => v.to_string(),
    };
    let text_field = |id: &str, name: &str, label: &str, kind: &str| {
        html! {
            div {
                label for=(id) { (label) }
                input type=(kind) id=(id) name=(name) value=(f.get(name)) maxlength="1000" autocomplete="off";
            }
        }
    };
    html! {
        @if !problems.is_empty() {
            div class="errors" role="alert" id="campaign-errors" {
                p { (w.form_problems) }
                ul { @for p in problems { li { (label_of(session, &p.pointer)) ": " (p.detail) } } }
            }
        }
        form class="stack panel" id="campaign-form" method="post" action=(format!("/console/programs/{}/campaigns", program.id)) {
            (session.csrf_field())
            input type="hidden" name="idempotency_key" value=(Uuid::new_v4());
            p class="note" { (i.new_campaign_note) }
            fieldset {
                legend { (i.groups_title) }
                @for g in Group::ALL {
                    label class="check" {
                        input type="checkbox" name="groups" value=(g.as_str()) checked[checked(&f.groups, g.as_str())];
                        (name_in(lang, g.name_en(), g.name_ru()))
                    }
                }
            }
            fieldset {
                legend { (i.stages_title) }
                @for s in Stage::ALL {
                    label class="check" {
                        input type="checkbox" name="stages" value=(s.as_str()) checked[checked(&f.stages, s.as_str())];
                        (name_in(lang, s.name_en(), s.name_ru()))
                    }
                }
            }
            @if !tiers.is_empty() {
                fieldset {
                    legend { (i.tiers_title) }
                    @for tier in &tiers {
                        label class="check" {
                            input type="checkbox" name="tiers" value=(tier) checked[checked(&f.tiers, tier)];
                            (tier)
                        }
                    }
                }
            }
            div {
                label for="campaign-holdout" { (i.holdout_percent) ", %" }
                input type="text" inputmode="numeric" id="campaign-holdout" name="holdout_percent" value=(holdout) maxlength="3" autocomplete="off";
            }
            div {
                label for="campaign-message-en" { (i.message_en) }
                textarea id="campaign-message-en" name="message_en" rows="3" maxlength="1000" { (f.get("message_en")) }
            }
            (text_field("campaign-header-en", "header_en", i.header_en, "text"))
            div {
                label for="campaign-message-ru" { (i.message_ru) }
                textarea id="campaign-message-ru" name="message_ru" rows="3" maxlength="1000" { (f.get("message_ru")) }
            }
            (text_field("campaign-header-ru", "header_ru", i.header_ru, "text"))
            (text_field("campaign-bonus", "bonus_points", i.bonus_points, "text"))
            (text_field("campaign-offer", "offer_text", i.offer_text, "text"))
            (text_field("campaign-coupon", "coupon_code", i.coupon_code, "text"))
            (text_field("campaign-valid-until", "valid_until", i.valid_until, "date"))
            (text_field("campaign-send-at", "send_at", &fill(i.send_at_local, "tz", program.tz().name()), "datetime-local"))
            (text_field("campaign-cost", "cost_per_message", i.cost_per_message, "text"))
            button type="submit" id="campaign-submit" { (i.create_button) }
        }
    }
}

/// The program a form belongs to (404 for another merchant's), for this and the
/// automation form.
pub(super) async fn load_program(
    session: &StaffSession,
    state: &AppState,
    raw: &str,
) -> Result<Program, PageError> {
    let id = session.id_in_path(raw)?;
    let tenant = session.tenant;
    db::run(&state.pool, move |conn| program_of(conn, &tenant, id))
        .await
        .map_err(|e| failed(session, e))
}

fn page(
    session: &StaffSession,
    status: StatusCode,
    program: &Program,
    f: &Fields,
    problems: &[FieldProblem],
) -> HttpResponse {
    let i = session.texts().insights();
    let body = html! {
        (tabs(session, program, "campaigns"))
        (form(session, program, f, problems))
    };
    let title = format!("{} · {}", i.new_campaign, program.name);
    session.page_with_status(status, Section::Insights, &title, body)
}

pub async fn new(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::CampaignChanges)?;
    let program = load_program(&session, &state, &path).await?;
    Ok(page(
        &session,
        StatusCode::OK,
        &program,
        &Fields::default(),
        &[],
    ))
}

pub async fn create(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, PageError> {
    // Refused on the server for cashiers, whatever the page showed them.
    session.require(Section::CampaignChanges)?;
    let program = load_program(&session, &state, &path).await?;
    let f = Fields::parse(&raw);
    let (w, i) = (session.texts().pages(), session.texts().insights());
    let Some(key) = IdempotencyKey::of_console_form(f.get("idempotency_key")) else {
        return Err(session.failed(ApiError::bad_request("the form carries no idempotency key")));
    };
    let body = match body_of(&f, &program, w, i) {
        Ok(body) => body,
        Err(problems) => {
            return Ok(page(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &program,
                &f,
                &problems,
            ))
        }
    };
    // What the API would be sent, read the way the API reads it.
    let path_of_api = format!("/api/v1/programs/{}/campaigns", program.id);
    let fingerprint = idempotency::fingerprint("POST", &path_of_api, &body);
    let request: NewCampaign = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            let problems = [FieldProblem::new("", e.to_string())];
            return Ok(page(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &program,
                &f,
                &problems,
            ));
        }
    };
    let (tenant, actor, now, program_id) = (
        session.tenant,
        session.actor(),
        state.clock.now(),
        program.id,
    );
    let outcome = db::run(&state.pool, move |conn| {
        idempotency::run(
            conn,
            &tenant,
            &key,
            &fingerprint,
            StatusCode::CREATED,
            |conn| {
                let view = campaigns::create(conn, &tenant, program_id, &request, now)?;
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::CAMPAIGN_CREATE,
                    json!({"campaign": view.id, "program": program_id}),
                )?;
                Ok(view)
            },
        )
    })
    .await;
    match outcome {
        Ok((answer, _)) if answer.status < 400 => {
            // The first answer or its replay: the campaign's id is in the stored body.
            let id = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            Ok(to(&format!("/console/campaigns/{id}?created=1")))
        }
        Ok(_) => Ok(page(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            &program,
            &f,
            &[FieldProblem::new("", w.form_problems)],
        )),
        Err(e)
            if e.status == StatusCode::UNPROCESSABLE_ENTITY
                || e.status == StatusCode::BAD_REQUEST =>
        {
            let problems = if e.errors.is_empty() {
                vec![FieldProblem::new("", e.detail.clone())]
            } else {
                e.errors.clone()
            };
            Ok(page(&session, e.status, &program, &f, &problems))
        }
        Err(e) => Err(failed(&session, e)),
    }
}
