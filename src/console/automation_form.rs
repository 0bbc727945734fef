//! The owner's form for a new automation, written as the campaign form is: its fields
//! become the JSON body `POST /api/v1/programs/{id}/automations` takes, read into the same
//! `NewAutomation` and created by the same `automations::create` (its checks), under the
//! API's idempotency with the key a hidden field made when the form was rendered (a double
//! submit creates one automation), with the audit line `automation_create` in the same
//! transaction. The console only turns what a form cannot say in JSON terms: the trigger's
//! kind and its stage or n into the tagged object, numbers into numbers.

use super::campaign_form::load_program;
use super::error::PageError;
use super::i18n::name_in;
use super::insights_page::{failed, tabs};
use super::session::{Section, StaffSession};
use super::sign_in::to;
use crate::app::AppState;
use crate::campaigns::automations::{self, NewAutomation};
use crate::campaigns::DEFAULT_HOLDOUT_PERCENT;
use crate::db;
use crate::idempotency::{self, IdempotencyKey};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem};
use crate::segments::Stage;
use crate::staff::audit;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The trigger kinds the form offers, in the API's words.
const KINDS: [&str; 4] = [
    "stage_entered",
    "first_purchase",
    "nth_purchase",
    "birthday",
];

/// The form as sent (every field once).
#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Fields {
    fn parse(body: &[u8]) -> Fields {
        Fields(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// The API's body for these fields, or what the console could not read (numbers, dates).
fn body_of(f: &Fields, session: &StaffSession) -> Result<Value, Vec<FieldProblem>> {
    let (w, i) = (session.texts().pages(), session.texts().insights());
    let mut problems = Vec::new();
    let mut body = Map::new();
    let number = |problems: &mut Vec<FieldProblem>, pointer: &str, raw: &str| {
        if raw.is_empty() {
            return None;
        }
        match raw.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(FieldProblem::new(pointer, w.not_a_number));
                None
            }
        }
    };
    if !f.get("name").is_empty() {
        body.insert("name".into(), json!(f.get("name")));
    }
    let mut trigger = Map::new();
    let kind = f.get("trigger_kind");
    trigger.insert("kind".into(), json!(kind));
    match kind {
        "stage_entered" => {
            trigger.insert("stage".into(), json!(f.get("trigger_stage")));
        }
        "nth_purchase" => {
            // An empty n is the API's missing field: said by the same reading below.
            if let Some(n) = number(&mut problems, "/trigger/n", f.get("trigger_n")) {
                trigger.insert("n".into(), json!(n));
            }
        }
        _ => {}
    }
    body.insert("trigger".into(), Value::Object(trigger));
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
    for name in [
        "period_days",
        "holdout_percent",
        "bonus_points",
        "bonus_expire_days",
        "attribution_days",
        "cost_per_message",
    ] {
        if let Some(n) = number(&mut problems, &format!("/{name}"), f.get(name)) {
            body.insert(name.into(), json!(n));
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
    if !f.get("paused").is_empty() {
        body.insert("enabled".into(), json!(false));
    }
    if problems.is_empty() {
        Ok(Value::Object(body))
    } else {
        Err(problems)
    }
}

fn label_of(session: &StaffSession, pointer: &str) -> &'static str {
    let (w, i, a) = (
        session.texts().pages(),
        session.texts().insights(),
        session.texts().automations(),
    );
    let mut parts = pointer.trim_start_matches('/').split('/');
    match (parts.next().unwrap_or(""), parts.next()) {
        ("name", _) => a.name,
        ("trigger", Some("stage")) => a.stage,
        ("trigger", Some("n")) => a.nth,
        ("trigger", _) => a.trigger_kind,
        ("period_days", _) => a.period_days,
        ("holdout_percent", _) => i.holdout_percent,
        ("message", _) => i.message_en,
        ("header", _) => i.header_en,
        ("bonus_points", _) => i.bonus_points,
        ("bonus_expire_days", _) => a.bonus_expire_days,
        ("offer", _) => i.offer_text,
        ("attribution_days", _) => a.attribution_days,
        ("cost_per_message", _) => i.cost_per_message,
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
    let (w, i, a) = (t.pages(), t.insights(), t.automations());
    let fresh = f.0.is_empty();
    let holdout = match f.get("holdout_percent") {
        "" if fresh => DEFAULT_HOLDOUT_PERCENT.to_string(),
        v => v.to_string(),
    };
    let kind = match f.get("trigger_kind") {
        "" => "stage_entered",
        k => k,
    };
    let kind_name = |k: &str| match k {
        "stage_entered" => a.trigger_stage_entered,
        "first_purchase" => a.trigger_first_purchase,
        "nth_purchase" => a
            .trigger_nth_purchase
            .split('{')
            .next()
            .unwrap_or("")
            .trim(),
        _ => a.trigger_birthday,
    };
    let text_field = |id: &str, name: &str, label: &str, kind: &str, numeric: bool| {
        html! {
            div {
                label for=(id) { (label) }
                input type=(kind) id=(id) name=(name) value=(f.get(name)) maxlength="1000" autocomplete="off"
                    inputmode=[numeric.then_some("numeric")];
            }
        }
    };
    html! {
        @if !problems.is_empty() {
            div class="errors" role="alert" id="automation-errors" {
                p { (w.form_problems) }
                ul { @for p in problems { li { (label_of(session, &p.pointer)) ": " (p.detail) } } }
            }
        }
        form class="stack panel" id="automation-form" method="post" action=(format!("/console/programs/{}/automations", program.id)) {
            (session.csrf_field())
            input type="hidden" name="idempotency_key" value=(Uuid::new_v4());
            p class="note" { (a.new_automation_note) }
            (text_field("automation-name", "name", a.name, "text", false))
            fieldset {
                legend { (a.trigger_kind) }
                @for k in KINDS {
                    label class="check" {
                        input type="radio" name="trigger_kind" value=(k) checked[k == kind];
                        (kind_name(k))
                    }
                }
            }
            div {
                label for="automation-stage" { (a.stage) }
                select id="automation-stage" name="trigger_stage" {
                    @for s in Stage::ALL {
                        option value=(s.as_str()) selected[f.get("trigger_stage") == s.as_str()] {
                            (name_in(lang, s.name_en(), s.name_ru()))
                        }
                    }
                }
            }
            (text_field("automation-n", "trigger_n", a.nth, "text", true))
            div {
                (text_field("automation-period", "period_days", a.period_days, "text", true))
                p class="note" { (a.period_note) }
            }
            div {
                label for="automation-holdout" { (i.holdout_percent) ", %" }
                input type="text" inputmode="numeric" id="automation-holdout" name="holdout_percent" value=(holdout) maxlength="3" autocomplete="off";
            }
            div {
                label for="automation-message-en" { (i.message_en) }
                textarea id="automation-message-en" name="message_en" rows="3" maxlength="1000" { (f.get("message_en")) }
            }
            (text_field("automation-header-en", "header_en", i.header_en, "text", false))
            div {
                label for="automation-message-ru" { (i.message_ru) }
                textarea id="automation-message-ru" name="message_ru" rows="3" maxlength="1000" { (f.get("message_ru")) }
            }
            (text_field("automation-header-ru", "header_ru", i.header_ru, "text", false))
            (text_field("automation-bonus", "bonus_points", i.bonus_points, "text", true))
            (text_field("automation-bonus-days", "bonus_expire_days", a.bonus_expire_days, "text", true))
            (text_field("automation-offer", "offer_text", i.offer_text, "text", false))
            (text_field("automation-coupon", "coupon_code", i.coupon_code, "text", false))
            (text_field("automation-valid-until", "valid_until", i.valid_until, "date", false))
            (text_field("automation-attribution", "attribution_days", a.attribution_days, "text", true))
            (text_field("automation-cost", "cost_per_message", i.cost_per_message, "text", true))
            label class="check" {
                input type="checkbox" name="paused" value="1" checked[!f.get("paused").is_empty()];
                (a.start_paused)
            }
            button type="submit" id="automation-submit" { (a.create_button) }
        }
    }
}

fn page(
    session: &StaffSession,
    status: StatusCode,
    program: &Program,
    f: &Fields,
    problems: &[FieldProblem],
) -> HttpResponse {
    let a = session.texts().automations();
    let body = html! {
        (tabs(session, program, "automations"))
        (form(session, program, f, problems))
    };
    let title = format!("{} · {}", a.new_automation, program.name);
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
    let w = session.texts().pages();
    let Some(key) = IdempotencyKey::of_console_form(f.get("idempotency_key")) else {
        return Err(session.failed(ApiError::bad_request("the form carries no idempotency key")));
    };
    let unprocessable = |problems: &[FieldProblem]| {
        page(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            &program,
            &f,
            problems,
        )
    };
    let body = match body_of(&f, &session) {
        Ok(body) => body,
        Err(problems) => return Ok(unprocessable(&problems)),
    };
    // What the API would be sent, read the way the API reads it.
    let path_of_api = format!("/api/v1/programs/{}/automations", program.id);
    let fingerprint = idempotency::fingerprint("POST", &path_of_api, &body);
    let request: NewAutomation = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            let pointer = if e.to_string().contains("`n`") {
                "/trigger/n"
            } else {
                "/trigger"
            };
            return Ok(unprocessable(&[FieldProblem::new(pointer, e.to_string())]));
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
                let view = automations::create(conn, &tenant, program_id, &request, now)?;
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::AUTOMATION_CREATE,
                    json!({"automation": view.id, "program": program_id}),
                )?;
                Ok(view)
            },
        )
    })
    .await;
    match outcome {
        Ok((answer, _)) if answer.status < 400 => {
            // The first answer or its replay: the automation's id is in the stored body.
            let id = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            Ok(to(&format!("/console/automations/{id}?created=1")))
        }
        Ok(_) => Ok(unprocessable(&[FieldProblem::new("", w.form_problems)])),
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
