//! Automations in the console (issue 16): an owner creates one from the form (once per
//! form, through the API's own code, with an audit line), it fires for the members who buy,
//! and its pages show the counts and results worked out here from its firings; owners pause
//! and resume it, cashiers only look, designers are refused, another merchant finds
//! nothing, a POST without its CSRF token is refused; and the pages fit 375 px in headless
//! Chromium with nothing blocked by the CSP.

use crate::browser::Browser;
use crate::console_auth::{staff, Console, PASSWORD};
use crate::console_designer_browser::assert_accessible;
use crate::console_insights::{eur, figure, figure_in, from, hidden, noon_today};
use crate::console_pages::{assert_no_overflow, Cdp};
use crate::helpers::{id_of, spawn_app_on, TestApp, TestMerchant};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::domain::Role;
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::json;

/// Members enrolled in the program; how many of them buy once after the rule exists.
const MEMBERS: usize = 10;
const BUYERS: usize = 8;

struct Shop {
    m: TestMerchant,
    program: String,
    members: Vec<String>,
}

/// A program whose points are worth 2 cents, with members who have not bought yet.
async fn shop(app: &TestApp, name: &str) -> Shop {
    let m = app.create_merchant(name);
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 10, "point_value": 2}),
        )
        .await,
        201,
    )
    .await;
    let program = id_of(&program).to_string();
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let member = app
            .enroll(&m.admin_key, &program, &format!("Member {i}"))
            .await;
        members.push(id_of(&member).to_string());
    }
    Shop {
        m,
        program,
        members,
    }
}

/// The automation's firings: (member, held out).
fn firings(app: &TestApp, automation: &str) -> Vec<(uuid::Uuid, bool)> {
    use passfold::schema::automation_firings as f;
    f::table
        .filter(f::automation_id.eq(uuid::Uuid::parse_str(automation).unwrap()))
        .select((f::member_id, f::held_out))
        .load(&mut app.db.connect())
        .unwrap()
}

fn fire(app: &TestApp, at: DateTime<Utc>) {
    let job = passfold::jobs::automations::Automations {
        channels: Channels::new(false),
    };
    job.run(&mut app.db.connect(), at).unwrap();
}

/// The form an owner fills in: a first purchase, half held out, 10 points and 5 cents.
fn first_purchase_form<'a>(csrf: &'a str, key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("idempotency_key", key),
        ("name", "Welcome"),
        ("trigger_kind", "first_purchase"),
        ("trigger_stage", "cooling"),
        ("trigger_n", ""),
        ("period_days", ""),
        ("holdout_percent", "50"),
        ("message_en", "Thank you for your first visit"),
        ("message_ru", "Спасибо за первый визит"),
        ("header_en", "Welcome"),
        ("bonus_points", "10"),
        ("bonus_expire_days", "30"),
        ("offer_text", "A free cake"),
        ("coupon_code", "CAKE"),
        ("valid_until", "2030-01-31"),
        ("attribution_days", "7"),
        ("cost_per_message", "5"),
    ]
}

#[tokio::test]
async fn an_owner_creates_an_automation_whose_pages_show_its_firings_and_results() {
    let start = noon_today();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    let Shop {
        m,
        program,
        members,
    } = shop(&app, "Automation Café").await;
    staff(&app, m.id, "owner@auto.example", Role::Owner);
    let mut owner = Console::signed_in(&app, "owner@auto.example").await;
    let list_path = format!("/console/programs/{program}/automations");

    let empty = owner.get(&list_path).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains(r#"id="no-automations""#));
    assert!(empty.body.contains(r#"id="tab-automations""#));
    let page = owner.get(&format!("{list_path}/new")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (csrf, key) = (page.csrf(), hidden(&page, "idempotency_key"));
    let form = first_purchase_form(&csrf, &key);
    let made = owner.post(&list_path, &form).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert!(made.location().ends_with("?created=1"));
    let again = owner.post(&list_path, &form).await;
    assert_eq!(again.location(), made.location(), "one automation per form");
    let automation = made
        .location()
        .trim_start_matches("/console/automations/")
        .trim_end_matches("?created=1")
        .to_string();

    // The API reads what the form said.
    let api = app
        .get_json(&format!("/api/v1/automations/{automation}"), &m.admin_key)
        .await;
    assert_eq!(api["name"], "Welcome");
    assert_eq!(api["trigger"], json!({"kind": "first_purchase"}));
    assert_eq!(api["period_days"], json!(null));
    assert_eq!(api["holdout_percent"], 50);
    assert_eq!(api["bonus_points"], 10);
    assert_eq!(api["bonus_expire_days"], 30);
    assert_eq!(api["attribution_days"], 7);
    assert_eq!(api["cost_per_message"], 5);
    assert_eq!(api["enabled"], true);
    assert_eq!(api["message"]["ru"]["body"], "Спасибо за первый визит");
    assert_eq!(api["message"]["ru"]["header"], "Coffee Club");
    assert_eq!(api["offer"]["coupon_code"], "CAKE");
    let listed = app
        .get_json(
            &format!("/api/v1/programs/{program}/automations"),
            &m.admin_key,
        )
        .await;
    assert_eq!(listed["automations"].as_array().unwrap().len(), 1);

    // Eight members make their first purchase; the worker fires for each.
    clock.set(start + Duration::minutes(10));
    for (i, member) in members.iter().take(BUYERS).enumerate() {
        app.pos_ok(
            &format!("/api/v1/members/{member}/purchases"),
            &m.admin_key,
            &format!("first-{i}"),
            &json!({"amount": 2_000, "currency": "EUR"}),
        )
        .await;
    }
    fire(&app, start + Duration::hours(1));
    let fired = firings(&app, &automation);
    assert_eq!(fired.len(), BUYERS);
    let held = fired.iter().filter(|f| f.1).count() as i64;
    let sent = BUYERS as i64 - held;
    // One member of the sent group (when there is one) comes back within the window.
    clock.set(start + Duration::hours(2));
    if let Some((member, _)) = fired.iter().find(|f| !f.1) {
        app.pos_ok(
            &format!("/api/v1/members/{member}/purchases"),
            &m.admin_key,
            "came-back",
            &json!({"amount": 5_000, "currency": "EUR"}),
        )
        .await;
    }
    let api = app
        .get_json(&format!("/api/v1/automations/{automation}"), &m.admin_key)
        .await;
    assert_eq!(api["targeted"], BUYERS as i64);
    assert_eq!(api["held_out"], held);
    assert_eq!(api["sent"], sent);

    // Two hours on, the first session has been idle too long: a new one.
    let mut owner = Console::signed_in(&app, "owner@auto.example").await;
    let list = owner.get(&list_path).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let row = from(&list, &format!(r#"data-automation="{automation}""#));
    assert!(row.contains(r#"data-enabled="true""#));
    assert!(row.contains("First purchase"));
    assert_eq!(
        figure(&list, r#"data-figure="targeted""#),
        BUYERS.to_string()
    );
    assert_eq!(figure(&list, r#"data-figure="held_out""#), held.to_string());
    assert_eq!(figure(&list, r#"data-figure="sent""#), sent.to_string());

    let page = owner
        .get(&format!("/console/automations/{automation}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        figure(&page, r#"id="automation-trigger""#),
        "First purchase"
    );
    assert_eq!(figure(&page, r#"data-figure="period_days""#), "never again");
    assert_eq!(figure(&page, r#"data-figure="holdout_percent""#), "50%");
    assert_eq!(
        figure(&page, r#"data-figure="targeted""#),
        BUYERS.to_string()
    );
    let members_row = from(&page, r#"data-row="members""#);
    assert_eq!(
        figure_in(members_row, r#"data-group="sent""#),
        sent.to_string()
    );
    assert_eq!(
        figure_in(members_row, r#"data-group="holdout""#),
        held.to_string()
    );
    let converted = from(&page, r#"data-row="converted""#);
    assert_eq!(
        figure_in(converted, r#"data-group="sent""#),
        if sent > 0 { "1" } else { "0" }
    );
    assert_eq!(figure_in(converted, r#"data-group="holdout""#), "0");
    let revenue = from(&page, r#"data-row="revenue""#);
    assert_eq!(
        figure_in(revenue, r#"data-group="sent""#),
        eur(if sent > 0 { 5_000 } else { 0 })
    );
    // Each sent message: 10 points at 2 cents and 5 cents for the message.
    let cost = sent * (10 * 2 + 5);
    assert_eq!(figure(&page, r#"data-figure="cost""#), eur(cost));
    assert_eq!(
        api["results"]["cost"]["total"].as_i64().unwrap(),
        cost,
        "{api}"
    );
    if sent > 0 && held > 0 {
        assert!(page.body.contains(r#"id="chart-difference""#));
        // 1 of `sent` bought against none held out.
        let difference = 100.0 / sent as f64;
        assert_eq!(
            figure(&page, r#"data-figure="conversion_difference""#),
            format!("+{difference:.1}%")
        );
        let romi = api["results"]["romi"].as_f64().unwrap();
        let incremental = 5_000.0 / sent as f64 * sent as f64;
        assert!((romi - (incremental - cost as f64) / cost as f64).abs() < 1e-9);
    }
    assert!(page.body.contains(r#"data-row="csi""#));
    assert!(page.body.contains(r#"id="pause-automation""#));

    // Paused, then resumed: one audit line each, the API agrees, a second pause is quiet.
    let paused = owner
        .post(
            &format!("/console/automations/{automation}/pause"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(paused.status, 303, "{}", paused.body);
    let shown = owner.get(paused.location()).await;
    assert!(shown.body.contains(r#"id="automation-notice""#));
    assert!(shown.body.contains(r#"data-enabled="false""#));
    assert!(shown.body.contains(r#"id="resume-automation""#));
    let again = owner
        .post(
            &format!("/console/automations/{automation}/pause"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(again.status, 303);
    let api = app
        .get_json(&format!("/api/v1/automations/{automation}"), &m.admin_key)
        .await;
    assert_eq!(api["enabled"], false);
    let resumed = owner
        .post(
            &format!("/console/automations/{automation}/resume"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(resumed.status, 303);
    let api = app
        .get_json(&format!("/api/v1/automations/{automation}"), &m.admin_key)
        .await;
    assert_eq!(api["enabled"], true);
    let audit = owner.get("/console/audit").await;
    for (action, n) in [
        ("automation_create", 1),
        ("automation_pause", 1),
        ("automation_resume", 1),
    ] {
        assert_eq!(
            audit
                .body
                .matches(&format!(r#"data-action="{action}""#))
                .count(),
            n,
            "{action}"
        );
    }

    // What the console cannot read, and what the domain refuses, come back on the form.
    for (field, value, label) in [
        ("holdout_percent", "lots", "Holdout"),
        ("holdout_percent", "90", "Holdout"),
        ("trigger_n", "1", "Purchase number"),
        ("period_days", "0", "Not again for"),
    ] {
        let page = owner.get(&format!("{list_path}/new")).await;
        let (csrf, key) = (page.csrf(), hidden(&page, "idempotency_key"));
        let mut form = first_purchase_form(&csrf, &key);
        form.retain(|(k, _)| *k != field && *k != "trigger_kind");
        form.push(("trigger_kind", "nth_purchase"));
        if field != "trigger_n" {
            form.retain(|(k, _)| *k != "trigger_n");
            form.push(("trigger_n", "3"));
        }
        form.push((field, value));
        let refused = owner.post(&list_path, &form).await;
        assert_eq!(refused.status, 422, "{field}={value}: {}", refused.body);
        assert!(refused.body.contains(r#"id="automation-errors""#));
        assert!(refused.body.contains(label), "{field}={value}");
        // What was typed stays.
        assert!(refused.body.contains(r#"value="nth_purchase" checked"#));
    }
    let listed = app
        .get_json(
            &format!("/api/v1/programs/{program}/automations"),
            &m.admin_key,
        )
        .await;
    assert_eq!(listed["automations"].as_array().unwrap().len(), 1);

    // In Russian.
    let csrf = owner.get("/console/account").await.csrf();
    owner
        .post(
            "/console/account/language",
            &[("language", "ru"), ("csrf", &csrf)],
        )
        .await;
    let ru = owner
        .get(&format!("/console/automations/{automation}"))
        .await;
    assert!(ru.body.contains("Первая покупка"), "{}", ru.body);
    assert!(ru.body.contains("Результаты против контрольной группы"));
    assert!(ru.body.contains("Работает"));
}

#[tokio::test]
async fn cashiers_look_designers_and_strangers_are_refused_and_csrf_is_required() {
    let start = noon_today();
    let app = spawn_app_on(Clock::manual(start), |_| {}).await;
    let Shop { m, program, .. } = shop(&app, "Guarded Café").await;
    let created = TestApp::expect_json(
        app.pos(
            &format!("/api/v1/programs/{program}/automations"),
            &m.admin_key,
            "rule-1",
            &json!({"name": "Cooling", "trigger": {"kind": "stage_entered", "stage": "cooling"},
                    "message": {"en": "We miss you"}}),
        )
        .await,
        201,
    )
    .await;
    let automation = id_of(&created).to_string();
    staff(&app, m.id, "owner@guard.example", Role::Owner);
    staff(&app, m.id, "till@guard.example", Role::Cashier);
    staff(&app, m.id, "design@guard.example", Role::Designer);
    let list_path = format!("/console/programs/{program}/automations");
    let page_path = format!("/console/automations/{automation}");

    let mut cashier = Console::signed_in(&app, "till@guard.example").await;
    let list = cashier.get(&list_path).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains("Enters a stage: Cooling"),
        "{}",
        list.body
    );
    assert!(!list.body.contains(r#"id="new-automation""#));
    let page = cashier.get(&page_path).await;
    assert_eq!(page.status, 200);
    assert_eq!(figure(&page, r#"data-figure="period_days""#), "90 days");
    assert!(!page.body.contains(r#"id="pause-automation""#));
    assert_eq!(cashier.get(&format!("{list_path}/new")).await.status, 403);
    let csrf = page.csrf();
    for path in [format!("{page_path}/pause"), format!("{page_path}/resume")] {
        let refused = cashier.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(refused.status, 403, "{path}");
    }
    let key = uuid::Uuid::new_v4().to_string();
    let refused = cashier
        .post(&list_path, &first_purchase_form(&csrf, &key))
        .await;
    assert_eq!(refused.status, 403);

    let mut designer = Console::signed_in(&app, "design@guard.example").await;
    for path in [&list_path, &page_path] {
        assert_eq!(designer.get(path).await.status, 403, "{path}");
    }

    let other = app.create_merchant("Elsewhere");
    staff(&app, other.id, "owner@elsewhere.example", Role::Owner);
    let mut stranger = Console::signed_in(&app, "owner@elsewhere.example").await;
    for path in [
        list_path.clone(),
        format!("{list_path}/new"),
        page_path.clone(),
        "/console/automations/not-a-uuid".to_string(),
        format!("{list_path}?after=nonsense"),
    ] {
        let page = stranger.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    let home = stranger.get("/console/insights").await;
    let csrf = home.csrf();
    let stolen = stranger
        .post(&format!("{page_path}/pause"), &[("csrf", &csrf)])
        .await;
    assert_eq!(stolen.status, 404);
    let key = uuid::Uuid::new_v4().to_string();
    let stolen = stranger
        .post(&list_path, &first_purchase_form(&csrf, &key))
        .await;
    assert_eq!(stolen.status, 404);

    // The owner's POSTs without the token are refused and change nothing.
    let mut owner = Console::signed_in(&app, "owner@guard.example").await;
    let forged = owner.post(&format!("{page_path}/pause"), &[]).await;
    assert_eq!(forged.status, 403);
    let key = uuid::Uuid::new_v4().to_string();
    let mut form = first_purchase_form("", &key);
    form.retain(|(k, _)| *k != "csrf");
    assert_eq!(owner.post(&list_path, &form).await.status, 403);
    let api = app
        .get_json(&format!("/api/v1/automations/{automation}"), &m.admin_key)
        .await;
    assert_eq!(api["enabled"], true);
    let listed = app
        .get_json(
            &format!("/api/v1/programs/{program}/automations"),
            &m.admin_key,
        )
        .await;
    assert_eq!(listed["automations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_automation_pages_fit_a_phone_with_nothing_blocked() {
    let start = noon_today();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    let Shop {
        m,
        program,
        members,
    } = shop(&app, "Phone Café").await;
    let created = TestApp::expect_json(
        app.pos(
            &format!("/api/v1/programs/{program}/automations"),
            &m.admin_key,
            "rule-phone",
            &json!({"name": "A long automation name for a narrow screen",
                    "trigger": {"kind": "first_purchase"}, "holdout_percent": 50,
                    "message": {"en": "Thank you"}}),
        )
        .await,
        201,
    )
    .await;
    let automation = id_of(&created).to_string();
    clock.set(start + Duration::minutes(10));
    for (i, member) in members.iter().enumerate() {
        app.pos_ok(
            &format!("/api/v1/members/{member}/purchases"),
            &m.admin_key,
            &format!("buy-{i}"),
            &json!({"amount": 1_000, "currency": "EUR"}),
        )
        .await;
    }
    fire(&app, start + Duration::minutes(30));
    let fired = firings(&app, &automation);
    let both = fired.iter().any(|f| f.1) && fired.iter().any(|f| !f.1);
    staff(&app, m.id, "owner@phone.example", Role::Owner);

    let browser = Browser::start_sized(375, 812).await;
    browser
        .client()
        .issue_cmd(Cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.blocked = []; document.addEventListener(\
                'securitypolicyviolation', e => window.blocked.push(\
                e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample));"}),
        ))
        .await
        .expect("a script on every new document");
    browser.goto(&app.url("/console/")).await;
    let wait = std::time::Duration::from_secs(10);
    browser.wait_for("#sign-in", wait).await;
    browser.fill("#email", "owner@phone.example").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in-submit").await;
    browser.wait_for("#dashboard", wait).await;
    let chart = if both {
        "#chart-difference svg"
    } else {
        "#results-table"
    };
    for (path, marker) in [
        (
            format!("/console/programs/{program}/automations"),
            "#automations",
        ),
        (format!("/console/automations/{automation}"), chart),
        (
            format!("/console/programs/{program}/automations/new"),
            "#automation-form",
        ),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_for(marker, wait).await;
        assert_no_overflow(&browser).await;
        assert_accessible(&browser, &path).await;
        assert_eq!(
            browser.execute("return window.blocked", vec![]).await,
            json!([]),
            "the CSP blocked something on {path}"
        );
    }
    browser
        .goto(&app.url(&format!("/console/automations/{automation}")))
        .await;
    browser.wait_for(chart, wait).await;
    browser
        .screenshot_of("#results", "console-automation-results")
        .await;
    browser.close().await;
}

/// Five good members and 55 with an address that is not one: 60 rows, 55 errors.
fn members_file() -> String {
    let mut file = String::from("external_id,name,email\n");
    for i in 0..5 {
        file.push_str(&format!("g-{i},Good {i},good{i}@example.com\n"));
    }
    for i in 0..55 {
        file.push_str(&format!("b-{i},Bad {i},not-an-email\n"));
    }
    file
}

/// Uploads the file as the API takes it and waits for the worker to finish it.
async fn imported(app: &TestApp, key: &str, program: &str, file: &str) -> serde_json::Value {
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/imports?kind=members&program_id={program}"
        )))
        .bearer_auth(key)
        .header("Content-Type", "text/csv")
        .body(file.to_string())
        .send()
        .await
        .unwrap();
    let accepted = TestApp::expect_json(res, 202).await;
    let path = format!("/api/v1/imports/{}", id_of(&accepted));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let view = app.get_json(&path, key).await;
        if view["state"] == "done" || view["state"] == "failed" {
            return view;
        }
        assert!(std::time::Instant::now() < deadline, "import still {view}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_imports_progress_and_errors_are_shown_to_owners_and_cashiers() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Import Café");
    let program = id_of(&app.create_program(&m.admin_key, "loyalty-default").await).to_string();
    let api = imported(&app, &m.admin_key, &program, &members_file()).await;
    let import = id_of(&api).to_string();
    assert_eq!(api["state"], "done");
    assert_eq!(api["rows"], 60);
    assert_eq!(api["imported"], 5);
    assert_eq!(api["error_count"], 55);
    staff(&app, m.id, "owner@import.example", Role::Owner);
    staff(&app, m.id, "till@import.example", Role::Cashier);
    staff(&app, m.id, "design@import.example", Role::Designer);

    for email in ["owner@import.example", "till@import.example"] {
        let mut console = Console::signed_in(&app, email).await;
        let list = console.get("/console/imports").await;
        assert_eq!(list.status, 200, "{}", list.body);
        assert!(list.body.contains(r#"id="nav-imports""#));
        let row = from(&list, &format!(r#"data-import="{import}""#));
        assert!(row.contains(r#"data-state="done""#));
        assert_eq!(figure_in(row, r#"data-figure="rows""#), "60");
        assert_eq!(figure_in(row, r#"data-figure="imported""#), "5");
        assert_eq!(figure_in(row, r#"data-figure="error_count""#), "55");

        let page = console.get(&format!("/console/imports/{import}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(figure(&page, r#"id="import-state""#), "Done");
        assert_eq!(figure(&page, r#"data-figure="rows""#), "60");
        assert_eq!(figure(&page, r#"data-figure="imported""#), "5");
        assert_eq!(figure(&page, r#"data-figure="skipped""#), "0");
        assert_eq!(figure(&page, r#"data-figure="error_count""#), "55");
        assert!(page.body.contains(r#"max="1" value="1""#), "a full bar");
        assert!(page.headers.get("refresh").is_none());
        // The first 50 refused rows, by line (the header is line 1) and column.
        assert_eq!(page.body.matches("data-line=").count(), 50);
        let first = from(&page, r#"data-line="7""#);
        assert!(figure_in(first, "<code").contains("email"), "{first}");
        assert!(!page.body.contains(r#"data-line="57""#));
        let second = console
            .get(&format!("/console/imports/{import}?errors_from=50"))
            .await;
        assert_eq!(second.status, 200);
        let lines: Vec<String> = (57..=61).map(|l| format!(r#"data-line="{l}""#)).collect();
        assert_eq!(second.body.matches("data-line=").count(), 5);
        assert!(lines.iter().all(|l| second.body.contains(l.as_str())));
        for bad in ["?errors_from=100", "?errors_from=7", "?errors_from=x"] {
            let page = console
                .get(&format!("/console/imports/{import}{bad}"))
                .await;
            assert_eq!(page.status, 404, "{bad}");
        }
    }

    // A running import: an empty bar, rows so far, and a page that reloads itself.
    {
        use passfold::schema::imports::dsl as i;
        diesel::update(i::imports.filter(i::id.eq(uuid::Uuid::parse_str(&import).unwrap())))
            .set((
                i::state.eq("importing"),
                i::finished_at.eq(None::<DateTime<Utc>>),
                i::leased_until.eq(Some(Utc::now() + Duration::hours(1))),
            ))
            .execute(&mut app.db.connect())
            .unwrap();
    }
    let mut owner = Console::signed_in(&app, "owner@import.example").await;
    let page = owner.get(&format!("/console/imports/{import}")).await;
    assert_eq!(page.headers["refresh"], "2");
    assert!(page.body.contains(r#"id="refreshing""#));
    let still = owner
        .get(&format!(
            "/console/imports/{import}?errors_from=0&follow=off"
        ))
        .await;
    assert!(still.headers.get("refresh").is_none());
    assert!(still.body.contains(r#"id="start-refreshing""#));
    assert!(page.body.contains(
        r#"<progress id="import-progress" aria-labelledby="progress-label"></progress>"#
    ));
    assert_eq!(
        figure(&page, r#"id="progress-text""#),
        "60 of 60 rows read so far"
    );

    let mut designer = Console::signed_in(&app, "design@import.example").await;
    for path in [
        "/console/imports".to_string(),
        format!("/console/imports/{import}"),
    ] {
        assert_eq!(designer.get(&path).await.status, 403, "{path}");
    }
    let other = app.create_merchant("Elsewhere");
    staff(&app, other.id, "owner@elsewhere.example", Role::Owner);
    let mut stranger = Console::signed_in(&app, "owner@elsewhere.example").await;
    let list = stranger.get("/console/imports").await;
    assert!(list.body.contains(r#"id="no-imports""#));
    for path in [
        format!("/console/imports/{import}"),
        "/console/imports/not-a-uuid".to_string(),
        format!("/console/imports?after={import}"),
    ] {
        assert_eq!(stranger.get(&path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_import_pages_fit_a_phone_and_a_running_one_reloads_itself_under_the_csp() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Phone Imports");
    let program = id_of(&app.create_program(&m.admin_key, "loyalty-default").await).to_string();
    let done = id_of(&imported(&app, &m.admin_key, &program, &members_file()).await).to_string();
    let running = id_of(&imported(&app, &m.admin_key, &program, &members_file()).await).to_string();
    {
        use passfold::schema::imports::dsl as i;
        diesel::update(i::imports.filter(i::id.eq(uuid::Uuid::parse_str(&running).unwrap())))
            // Held by a worker that is not there: the app's own leaves it alone.
            .set((
                i::state.eq("importing"),
                i::finished_at.eq(None::<DateTime<Utc>>),
                i::leased_until.eq(Some(Utc::now() + Duration::hours(1))),
            ))
            .execute(&mut app.db.connect())
            .unwrap();
    }
    staff(&app, m.id, "owner@phone-imports.example", Role::Owner);

    let browser = Browser::start_sized(375, 812).await;
    browser
        .client()
        .issue_cmd(Cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.blocked = []; document.addEventListener(\
                'securitypolicyviolation', e => window.blocked.push(\
                e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample));"}),
        ))
        .await
        .expect("a script on every new document");
    browser.goto(&app.url("/console/")).await;
    let wait = std::time::Duration::from_secs(10);
    browser.wait_for("#sign-in", wait).await;
    browser.fill("#email", "owner@phone-imports.example").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in-submit").await;
    browser.wait_for("#dashboard", wait).await;
    for (path, marker) in [
        ("/console/imports".to_string(), "#imports"),
        (format!("/console/imports/{done}"), "#error-table"),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_for(marker, wait).await;
        assert_no_overflow(&browser).await;
        assert_accessible(&browser, &path).await;
        assert_eq!(
            browser.execute("return window.blocked", vec![]).await,
            json!([]),
            "the CSP blocked something on {path}"
        );
    }
    browser
        .screenshot_of("#import", "console-import-done")
        .await;
    // The running one: a mark left on the document is gone once the page has reloaded.
    let path = format!("/console/imports/{running}");
    browser.goto(&app.url(&path)).await;
    browser.wait_for("#refreshing", wait).await;
    assert_no_overflow(&browser).await;
    assert_accessible(&browser, &path).await;
    browser
        .execute("window.left = 1; return null", vec![])
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let left = browser
            .execute(
                "return window.left === undefined && !!document.querySelector('#import-progress')",
                vec![],
            )
            .await;
        if left == json!(true) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page did not reload"
        );
    }
    assert_eq!(
        browser.execute("return window.blocked", vec![]).await,
        json!([]),
        "the CSP blocked something on {path}"
    );
    browser.close().await;
}

/// The API's export at `path`, as text.
async fn api_csv(app: &TestApp, key: &str, path: &str) -> String {
    app.client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn downloads_are_the_apis_and_an_owner_erases_a_member_after_confirming() {
    let start = noon_today();
    let app = spawn_app_on(Clock::manual(start), |_| {}).await;
    let Shop {
        m,
        program,
        members,
    } = shop(&app, "Export Café").await;
    let gans: Vec<String> = {
        let mut out = Vec::new();
        for balance in [1_000, 2_500] {
            let card = app.issue_gift_card(&m.admin_key, "EUR", balance).await;
            out.push(card["gan"].as_str().unwrap().to_string());
        }
        out
    };
    staff(&app, m.id, "owner@export.example", Role::Owner);
    staff(&app, m.id, "till@export.example", Role::Cashier);
    let mut owner = Console::signed_in(&app, "owner@export.example").await;
    let mut cashier = Console::signed_in(&app, "till@export.example").await;

    // The members page links to the program's export; it is the API's, byte for byte.
    let page = owner.get("/console/members").await;
    let link = format!("/console/members.csv?program_id={program}");
    assert!(
        page.body.contains(&format!(r#"href="{link}""#)),
        "{}",
        page.body
    );
    let narrowed = owner
        .get(&format!("/console/members?program={program}&q=Member"))
        .await;
    assert!(narrowed
        .body
        .contains(&format!(r#"href="{link}&amp;q=Member""#)));
    let from_api = api_csv(
        &app,
        &m.admin_key,
        &format!("/api/v1/exports/members.csv?program_id={program}"),
    )
    .await;
    assert_eq!(from_api.lines().count(), 1 + MEMBERS);
    for console in [&mut owner, &mut cashier] {
        let csv = console.get(&link).await;
        assert_eq!(csv.status, 200);
        assert!(csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        assert_eq!(csv.body, from_api);
    }
    let some = owner.get(&format!("{link}&q=Member%201")).await;
    let some_api = api_csv(
        &app,
        &m.admin_key,
        &format!("/api/v1/exports/members.csv?program_id={program}&q=Member%201"),
    )
    .await;
    assert_eq!(some.body, some_api);
    // The gift cards page links to theirs.
    let page = owner.get("/console/gift-cards").await;
    assert!(page.body.contains(r#"href="/console/gift-cards.csv""#));
    let cards = owner.get("/console/gift-cards.csv").await;
    assert_eq!(cards.status, 200);
    assert_eq!(
        cards.body,
        api_csv(&app, &m.admin_key, "/api/v1/exports/gift-cards.csv").await
    );
    assert_eq!(cards.body.lines().count(), 1 + gans.len());
    assert!(gans.iter().all(|g| cards.body.contains(g.as_str())));

    // Another merchant downloads nothing of this one's.
    let other = app.create_merchant("Elsewhere");
    staff(&app, other.id, "owner@elsewhere.example", Role::Owner);
    let mut stranger = Console::signed_in(&app, "owner@elsewhere.example").await;
    assert_eq!(stranger.get(&link).await.status, 404);
    let theirs = stranger.get("/console/gift-cards.csv").await;
    assert_eq!(theirs.body.lines().count(), 1, "{}", theirs.body);

    // Erasure: the owner's only, confirmed, with the CSRF token, of this merchant's member.
    let member = &members[0];
    let path = format!("/console/members/{member}");
    let erase = format!("{path}/erase");
    let seen = cashier.get(&path).await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains(r#"id="erase""#));
    let refused = cashier
        .post(&erase, &[("csrf", &seen.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(refused.status, 403);
    let home = stranger.get("/console/").await;
    let stolen = stranger
        .post(&erase, &[("csrf", &home.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(stolen.status, 404);
    let forged = owner.post(&erase, &[("confirm", "yes")]).await;
    assert_eq!(forged.status, 403);
    let page = owner.get(&path).await;
    assert!(page.body.contains(r#"id="erase""#));
    let unconfirmed = owner.post(&erase, &[("csrf", &page.csrf())]).await;
    assert_eq!(unconfirmed.status, 422);
    assert!(unconfirmed.body.contains(r#"id="erase-error""#));
    let api = app
        .get_json(&format!("/api/v1/members/{member}"), &m.admin_key)
        .await;
    assert_eq!(api["erased_at"], json!(null));
    assert_eq!(api["name"], "Member 0");

    let done = owner
        .post(&erase, &[("csrf", &page.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let shown = owner.get(done.location()).await;
    assert!(shown.body.contains(r#"id="erased""#));
    assert!(shown.body.contains(r#"id="member-erased""#));
    assert!(!shown.body.contains(r#"id="erase""#));
    assert!(!shown.body.contains(r#"id="adjust""#));
    let api = app
        .get_json(&format!("/api/v1/members/{member}"), &m.admin_key)
        .await;
    assert!(api["erased_at"].is_string());
    assert_eq!(api["name"], "Erased member");
    assert!(shown.body.contains("Erased member"));
    assert!(!shown.body.contains("Member 0<"));
    assert_eq!(
        figure(&shown, r#"id="member-card-number""#),
        api["card_number"].as_str().unwrap()
    );
    // Again: nothing changes, no second audit line; the export leaves the member out, as
    // the API's does.
    let again = owner
        .post(&erase, &[("csrf", &page.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(again.status, 303);
    let audit = owner.get("/console/audit").await;
    assert_eq!(
        audit.body.matches(r#"data-action="member_erase""#).count(),
        1
    );
    let csv = owner.get(&link).await;
    assert_eq!(
        csv.body,
        api_csv(
            &app,
            &m.admin_key,
            &format!("/api/v1/exports/members.csv?program_id={program}"),
        )
        .await
    );
    assert!(!csv.body.contains("Member 0,"));
}

#[tokio::test]
async fn the_download_links_and_the_erase_form_fit_a_phone_with_nothing_blocked() {
    let app = spawn_app_on(Clock::manual(noon_today()), |_| {}).await;
    let Shop { m, members, .. } = shop(&app, "Phone Exports").await;
    app.issue_gift_card(&m.admin_key, "EUR", 1_000).await;
    staff(&app, m.id, "owner@phone-exports.example", Role::Owner);

    let browser = Browser::start_sized(375, 812).await;
    browser
        .client()
        .issue_cmd(Cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.blocked = []; document.addEventListener(\
                'securitypolicyviolation', e => window.blocked.push(\
                e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample));"}),
        ))
        .await
        .expect("a script on every new document");
    browser.goto(&app.url("/console/")).await;
    let wait = std::time::Duration::from_secs(10);
    browser.wait_for("#sign-in", wait).await;
    browser.fill("#email", "owner@phone-exports.example").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in-submit").await;
    browser.wait_for("#dashboard", wait).await;
    let member = format!("/console/members/{}", members[0]);
    for (path, marker) in [
        ("/console/members".to_string(), "#downloads"),
        ("/console/gift-cards".to_string(), "#download-cards"),
        (member.clone(), "#erase"),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_for(marker, wait).await;
        assert_no_overflow(&browser).await;
        assert_accessible(&browser, &path).await;
        assert_eq!(
            browser.execute("return window.blocked", vec![]).await,
            json!([]),
            "the CSP blocked something on {path}"
        );
    }
    // Without the box ticked the browser does not send the form; ticked, it erases.
    browser.click("#erase-submit").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(browser.find_all("#erased").await.is_empty());
    browser.click("#erase-confirm").await;
    browser.click("#erase-submit").await;
    browser.wait_for("#erased", wait).await;
    assert_no_overflow(&browser).await;
    assert_accessible(&browser, &member).await;
    browser.close().await;
}

#[tokio::test]
async fn an_owner_starts_an_import_from_the_console_as_the_api_would() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Upload Café");
    let program = id_of(&app.create_program(&m.admin_key, "loyalty-default").await).to_string();
    staff(&app, m.id, "owner@upload.example", Role::Owner);
    staff(&app, m.id, "till@upload.example", Role::Cashier);

    let mut cashier = Console::signed_in(&app, "till@upload.example").await;
    let list = cashier.get("/console/imports").await;
    assert!(!list.body.contains(r#"id="import-form""#));
    let csrf = list.csrf();
    let refused = cashier
        .upload_form(
            &format!("/console/imports?csrf={csrf}"),
            &[("kind", "members"), ("program_id", &program)],
            members_file().as_bytes(),
        )
        .await;
    assert_eq!(refused.status, 403);

    let mut owner = Console::signed_in(&app, "owner@upload.example").await;
    let list = owner.get("/console/imports").await;
    assert!(list.body.contains(r#"id="import-form""#));
    let csrf = list.csrf();
    let action = format!("/console/imports?csrf={csrf}");
    // Without the token in the action: refused before anything is read.
    let forged = owner
        .upload_form(
            "/console/imports",
            &[("kind", "members"), ("program_id", &program)],
            members_file().as_bytes(),
        )
        .await;
    assert_eq!(forged.status, 403);
    // What the API refuses is said on the page.
    let no_program = owner
        .upload_form(&action, &[("kind", "members")], members_file().as_bytes())
        .await;
    assert_eq!(no_program.status, 422, "{}", no_program.body);
    assert!(no_program.body.contains(r#"id="import-start-errors""#));
    assert!(no_program.body.contains("program_id"));
    let empty = owner
        .upload_form(
            &action,
            &[("kind", "members"), ("program_id", &program)],
            b"",
        )
        .await;
    assert_eq!(empty.status, 400, "{}", empty.body);

    let started = owner
        .upload_form(
            &action,
            &[("kind", "members"), ("program_id", &program)],
            members_file().as_bytes(),
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let import = started
        .location()
        .trim_start_matches("/console/imports/")
        .trim_end_matches("?started=1")
        .to_string();
    let path = format!("/api/v1/imports/{import}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let api = loop {
        let view = app.get_json(&path, &m.admin_key).await;
        if view["state"] == "done" || view["state"] == "failed" {
            break view;
        }
        assert!(std::time::Instant::now() < deadline, "import still {view}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // The same file over the API makes the same import: 5 members, 55 errors.
    assert_eq!(api["kind"], "members");
    assert_eq!(api["dry_run"], false);
    assert_eq!(api["rows"], 60);
    assert_eq!(api["imported"], 5);
    assert_eq!(api["error_count"], 55);
    assert_eq!(api["bytes"], members_file().len() as i64);
    let page = owner.get(started.location()).await;
    assert!(page.body.contains(r#"id="import-started""#));
    assert_eq!(figure(&page, r#"data-figure="imported""#), "5");
    let audit = owner.get("/console/audit").await;
    assert_eq!(
        audit.body.matches(r#"data-action="import_start""#).count(),
        1
    );
    // A dry run checks and imports nothing; the same members again are skipped.
    let dry = owner
        .upload_form(
            &action,
            &[
                ("kind", "members"),
                ("program_id", &program),
                ("dry_run", "true"),
            ],
            members_file().as_bytes(),
        )
        .await;
    assert_eq!(dry.status, 303);
    let listed = app.get_json("/api/v1/imports", &m.admin_key).await;
    let imports = listed["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 2);
    assert_eq!(imports[0]["dry_run"], true);
}
