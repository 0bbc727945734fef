//! The rest of the console (issue 14): the dashboard shows the API's figures, members are
//! searched and paged by cursor, points move once per form and never from a cashier, the
//! program's change is previewed before it is saved, API keys made in the console work and
//! stop working, a deactivated card is refused at the till; and an owner adjusts points
//! with the keyboard only in headless Chromium, at 375 px without sideways scrolling.

use crate::browser::Browser;
use crate::console_auth::{staff, Console, Page, PASSWORD};
use crate::helpers::{assert_problem, id_of, spawn_app, TestApp};
use passfold::domain::Role;
use serde_json::json;
use std::time::Duration;

/// A number as the English pages write it: 1,234,567.
fn en(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The value of the first hidden field `name` on the page.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {}", page.body))
        + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_string()
}

/// The first `href` after `marker` (`class="next-page"`), unescaped.
fn link_after(page: &Page, marker: &str) -> Option<String> {
    let at = page.body.find(marker)?;
    let before = &page.body[..at];
    let start = before.rfind("href=\"")? + 6;
    let end = page.body[start..].find('"')? + start;
    Some(page.body[start..end].replace("&amp;", "&"))
}

async fn enroll_with(
    app: &TestApp,
    key: &str,
    program: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let res = app
        .post_json(&format!("/api/v1/programs/{program}/members"), key, &body)
        .await;
    TestApp::expect_json(res, 201).await
}

#[tokio::test]
async fn the_owner_sees_the_dashboard_figures_of_the_api() {
    let app = spawn_app().await;
    let (m, _program, member) = app.merchant_with_member("Café", "Anna").await;
    let bought = app
        .purchase(&m.pos_key, id_of(&member), "p-1", 99_900)
        .await;
    assert_eq!(bought.status(), 200);
    app.issue_gift_card(&m.admin_key, "EUR", 123_456).await;
    staff(&app, m.id, "owner@dash.example", Role::Owner);

    let mut console = Console::signed_in(&app, "owner@dash.example").await;
    let home = console.get("/console/").await;
    assert_eq!(home.status, 200);
    let figures = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    let p = &figures["programs"][0];
    for figure in [
        "members",
        "apple_installs",
        "google_installs",
        "points_issued",
        "points_debited",
        "points_outstanding",
    ] {
        let value = p[figure].as_i64().unwrap();
        let shown = format!(r#"data-figure="{figure}">{}<"#, en(value));
        assert!(home.body.contains(&shown), "{shown} in {}", home.body);
    }
    assert!(p["points_issued"].as_i64().unwrap() > 1000);
    let liability = &figures["gift_card_liability"][0];
    assert_eq!(liability["balance"], 123_456);
    assert!(home.body.contains("1,234.56\u{a0}EUR"), "{}", home.body);

    // In Russian, the same money in Russian.
    let csrf = console.get("/console/account").await.csrf();
    console
        .post(
            "/console/account/language",
            &[("language", "ru"), ("csrf", &csrf)],
        )
        .await;
    let home = console.get("/console/").await;
    assert!(
        home.body.contains("1\u{a0}234,56\u{a0}EUR"),
        "{}",
        home.body
    );
}

#[tokio::test]
async fn members_are_found_by_name_and_phone_and_paged_by_cursor() {
    let app = spawn_app().await;
    let m = app.create_merchant("Café");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let program = id_of(&program).to_string();
    for i in 0..30 {
        enroll_with(
            &app,
            &m.pos_key,
            &program,
            json!({"name": format!("Walker {i:02}")}),
        )
        .await;
    }
    let zed = enroll_with(
        &app,
        &m.pos_key,
        &program,
        json!({"name": "Zed Quimby", "email": "zed@example.org", "phone": "+7 912 345 67 89"}),
    )
    .await;
    staff(&app, m.id, "cashier@search.example", Role::Cashier);
    let mut console = Console::signed_in(&app, "cashier@search.example").await;

    let first = console.get("/console/members?q=walker").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body.matches("data-member=").count(), 25);
    assert!(first.body.contains("Walker 00"));
    let next = link_after(&first, r#"class="next-page""#).expect("a next page");
    assert!(next.contains("cursor="), "{next}");
    let second = console.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body.matches("data-member=").count(), 5);
    assert!(second.body.contains("Walker 29"));
    assert!(!second.body.contains("Walker 00"));
    assert!(link_after(&second, r#"class="next-page""#).is_none());
    assert!(link_after(&second, r#"class="first-page""#).is_some());

    let by_phone = console.get("/console/members?q=%2B7+(912)+345").await;
    assert_eq!(by_phone.body.matches("data-member=").count(), 1);
    assert!(by_phone.body.contains(id_of(&zed)));
    let by_name = console.get("/console/members?q=quim").await;
    assert!(by_name.body.contains("Zed Quimby"));
    let by_card = console
        .get(&format!(
            "/console/members?q={}",
            zed["card_number"].as_str().unwrap()
        ))
        .await;
    assert!(by_card.body.contains(id_of(&zed)));

    // Hostile input: a page, never a 500.
    assert_eq!(
        console
            .get("/console/members?q=a&cursor=nonsense")
            .await
            .status,
        404
    );
    let too_long = console
        .get(&format!("/console/members?q={}", "x".repeat(300)))
        .await;
    assert_eq!(too_long.status, 200);
    assert!(too_long.body.contains(r#"id="search-error""#));
    assert_eq!(console.get("/console/members/not-a-uuid").await.status, 404);
    assert_eq!(
        console
            .get(&format!("/console/members/{}?before=x", id_of(&zed)))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_cashier_opens_a_member_but_cannot_move_points() {
    let app = spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Café", "Anna").await;
    let id = id_of(&member).to_string();
    staff(&app, m.id, "cashier@shop.example", Role::Cashier);
    let mut console = Console::signed_in(&app, "cashier@shop.example").await;

    let page = console.get(&format!("/console/members/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="member-points""#));
    assert!(
        !page.body.contains(r#"id="adjust""#),
        "no adjust form for a cashier"
    );
    let csrf = page.csrf();
    let refused = console
        .post(
            &format!("/console/members/{id}/points"),
            &[
                ("delta", "500"),
                ("reason", "free points"),
                ("idempotency_key", &uuid::Uuid::new_v4().to_string()),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.member_points(&m.admin_key, &id).await, 50);

    // Cards are looked up, not deactivated.
    let card = app.issue_gift_card(&m.admin_key, "EUR", 1000).await;
    let gan = card["gan"].as_str().unwrap();
    let shown = console.get(&format!("/console/gift-cards?gan={gan}")).await;
    assert_eq!(shown.status, 303);
    let card_page = console.get(shown.location()).await;
    assert_eq!(card_page.status, 200);
    assert!(!card_page.body.contains("deactivate-link"));
    assert_eq!(
        console
            .get(&format!("/console/gift-cards/{gan}/deactivate"))
            .await
            .status,
        403
    );
    let post = console
        .post(
            &format!("/console/gift-cards/{gan}/deactivate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(post.status, 403);
    assert_eq!(console.get("/console/programs").await.status, 403);
    assert_eq!(console.get("/console/api-keys").await.status, 403);
}

#[tokio::test]
async fn a_designer_is_refused_members_cards_programs_and_api_keys() {
    let app = spawn_app().await;
    let (m, program, member) = app.merchant_with_member("Café", "Anna").await;
    staff(&app, m.id, "designer@shop.example", Role::Designer);
    let mut console = Console::signed_in(&app, "designer@shop.example").await;
    for path in [
        "/console/members".to_string(),
        format!("/console/members/{}", id_of(&member)),
        "/console/api-keys".to_string(),
        "/console/programs".to_string(),
        format!("/console/programs/{}", id_of(&program)),
        "/console/gift-cards".to_string(),
    ] {
        let page = console.get(&path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains(r#"id="refusal""#));
    }
    let home = console.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(
        !home.body.contains("data-figure"),
        "no figures for a designer"
    );
    assert!(!home.body.contains("nav-members"));
}

#[tokio::test]
async fn the_adjust_form_sent_twice_moves_points_once() {
    let app = spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Café", "Anna").await;
    let id = id_of(&member).to_string();
    staff(&app, m.id, "owner@shop.example", Role::Owner);
    let mut console = Console::signed_in(&app, "owner@shop.example").await;

    let page = console.get(&format!("/console/members/{id}")).await;
    let key = hidden(&page, "idempotency_key");
    let form = [
        ("delta", "120"),
        ("reason", "birthday"),
        ("idempotency_key", key.as_str()),
        ("csrf", &page.csrf()),
    ];
    let first = console
        .post(&format!("/console/members/{id}/points"), &form)
        .await;
    assert_eq!(
        (first.status, first.location()),
        (303, format!("/console/members/{id}?adjusted=1").as_str())
    );
    let again = console
        .post(&format!("/console/members/{id}/points"), &form)
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(app.member_points(&m.admin_key, &id).await, 170);

    let after = console.get(first.location()).await;
    assert!(after.body.contains(r#"id="adjusted""#));
    assert!(after.body.contains(r#"data-points="170""#));
    assert!(after.body.contains("birthday"));
    // A fresh key on the page that answered: the next submission is a new one.
    assert_ne!(hidden(&after, "idempotency_key"), key);

    // Below zero: refused with the reason, nothing moved.
    let page = console.get(&format!("/console/members/{id}")).await;
    let too_many = console
        .post(
            &format!("/console/members/{id}/points"),
            &[
                ("delta", "-1000"),
                ("reason", "oops"),
                ("idempotency_key", &hidden(&page, "idempotency_key")),
                ("csrf", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(too_many.status, 409, "{}", too_many.body);
    assert!(too_many.body.contains(r#"id="adjust-error""#));
    let not_a_number = console
        .post(
            &format!("/console/members/{id}/points"),
            &[
                ("delta", "lots"),
                ("reason", "oops"),
                ("idempotency_key", &hidden(&page, "idempotency_key")),
                ("csrf", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(not_a_number.status, 422);
    assert_eq!(app.member_points(&m.admin_key, &id).await, 170);

    let audit = console.get("/console/audit").await;
    assert_eq!(
        audit.body.matches(r#"data-action="points_adjust""#).count(),
        1
    );
}

#[tokio::test]
async fn a_program_change_is_previewed_then_saved() {
    let app = spawn_app().await;
    let (m, program, member) = app.merchant_with_member("Café", "Anna").await;
    let program_id = id_of(&program).to_string();
    staff(&app, m.id, "owner@shop.example", Role::Owner);
    let mut console = Console::signed_in(&app, "owner@shop.example").await;

    let page = console
        .get(&format!("/console/programs/{program_id}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"value="Silver""#));
    let list = console.get("/console/programs").await;
    assert!(list.body.contains(&program_id));
    let csrf = page.csrf();
    // Silver from 10 lifetime points: the member (50 welcome points) moves up.
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("name", "Coffee Club"),
        ("points_per_unit", "20"),
        ("welcome_points", "50"),
        ("tier_name_0", "Bronze"),
        ("tier_min_0", "0"),
        ("tier_name_1", "Silver"),
        ("tier_min_1", "10"),
        ("tier_name_2", "Gold"),
        ("tier_min_2", "2000"),
        ("tier_mult_2", "1.5"),
        ("tier_name_3", ""),
        ("pos_max_purchase", "100000"),
        ("pos_max_points_adjustment", "1000"),
        ("intent", "preview"),
    ];
    let preview = console
        .post(&format!("/console/programs/{program_id}"), &form)
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains(r#"id="tier-moves""#),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("Bronze</td>"));
    assert!(preview.body.contains("Silver</td>"));
    assert!(preview.body.contains(r#"id="effect-earning""#));
    assert!(preview.body.contains(r#"id="program-save""#));
    assert_eq!(
        app.member(&m.admin_key, id_of(&member)).await["tier"],
        "Bronze"
    );

    let digest = hidden(&preview, "previewed");
    form.pop();
    form.push(("intent", "save"));
    form.push(("previewed", &digest));
    let saved = console
        .post(&format!("/console/programs/{program_id}"), &form)
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved.body.contains(r#"id="program-saved""#),
        "{}",
        saved.body
    );
    assert_eq!(
        app.member(&m.admin_key, id_of(&member)).await["tier"],
        "Silver"
    );
    let api = app
        .get_json(&format!("/api/v1/programs/{program_id}"), &m.admin_key)
        .await;
    assert_eq!(api["points_per_unit"], 20);

    // A save of values that were not previewed is previewed instead.
    let mut changed = form.clone();
    changed.retain(|(k, _)| *k != "welcome_points");
    changed.push(("welcome_points", "75"));
    let not_saved = console
        .post(&format!("/console/programs/{program_id}"), &changed)
        .await;
    assert!(not_saved.body.contains(r#"id="changed-since-preview""#));
    assert!(not_saved.body.contains(r#"id="effect-welcome""#));
    let api = app
        .get_json(&format!("/api/v1/programs/{program_id}"), &m.admin_key)
        .await;
    assert_eq!(api["welcome_points"], 50);

    // Bad numbers come back as problems on the form, not as a failure.
    let mut bad = form.clone();
    bad.retain(|(k, _)| *k != "points_per_unit");
    bad.push(("points_per_unit", "ten"));
    let refused = console
        .post(&format!("/console/programs/{program_id}"), &bad)
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains(r#"id="program-errors""#));

    let audit = console.get("/console/audit").await;
    assert_eq!(
        audit
            .body
            .matches(r#"data-action="program_change""#)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_api_key_made_in_the_console_works_until_revoked() {
    let app = spawn_app().await;
    let (m, program, _) = app.merchant_with_member("Café", "Anna").await;
    staff(&app, m.id, "owner@shop.example", Role::Owner);
    let mut console = Console::signed_in(&app, "owner@shop.example").await;

    let page = console.get("/console/api-keys").await;
    assert_eq!(page.status, 200);
    let made = console
        .post(
            "/console/api-keys",
            &[
                ("label", "Till 2"),
                ("scope", "pos"),
                ("csrf", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let start = made.body.find(r#"id="key-secret">"#).unwrap() + r#"id="key-secret">"#.len();
    let end = made.body[start..].find('<').unwrap() + start;
    let secret = made.body[start..end].to_string();
    let members = format!("/api/v1/programs/{}/members", id_of(&program));
    assert_eq!(app.get_with_key(&members, &secret).await.status(), 200);

    // Shown once: the list does not carry it.
    let list = console.get("/console/api-keys").await;
    assert!(!list.body.contains(&secret));
    assert!(list.body.contains("Till 2"));
    let keys = app.get_json("/api/v1/api-keys", &m.admin_key).await;
    let till = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "Till 2")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = console
        .post(
            &format!("/console/api-keys/{till}/revoke"),
            &[("csrf", &list.csrf())],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(app.get_with_key(&members, &secret).await.status(), 401);

    // The last admin key stays, with the reason.
    let admin = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scope"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = console
        .post(
            &format!("/console/api-keys/{admin}/revoke"),
            &[("csrf", &list.csrf())],
        )
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.body.contains("last active admin key"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.get_with_key("/api/v1/api-keys", &m.admin_key)
            .await
            .status(),
        200
    );

    let audit = console.get("/console/audit").await;
    assert!(audit.body.contains(r#"data-action="api_key_create""#));
    assert_eq!(
        audit
            .body
            .matches(r#"data-action="api_key_revoke""#)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_card_deactivated_in_the_console_is_refused_at_the_till() {
    let app = spawn_app().await;
    let m = app.create_merchant("Café");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
    let gan = card["gan"].as_str().unwrap().to_string();
    staff(&app, m.id, "owner@shop.example", Role::Owner);
    let mut console = Console::signed_in(&app, "owner@shop.example").await;

    assert_eq!(console.get("/console/gift-cards?gan=123").await.status, 422);
    let page = console.get(&format!("/console/gift-cards/{gan}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("50.00\u{a0}EUR"));
    assert!(page.body.contains(r#"data-kind="activate""#));
    let confirm = console
        .get(&format!("/console/gift-cards/{gan}/deactivate"))
        .await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains(r#"id="deactivate-warning""#));
    let done = console
        .post(
            &format!("/console/gift-cards/{gan}/deactivate"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(done.status, 303);
    let after = console.get(done.location()).await;
    assert!(after.body.contains(r#"data-state="deactivated""#));

    let res = app.redeem(&m.pos_key, &gan, "r-1", 100).await;
    assert_problem(res, 409, "card-inactive").await;
    let audit = console.get("/console/audit").await;
    assert!(audit.body.contains(r#"data-action="gift_card_deactivate""#));
}

#[tokio::test]
async fn an_owner_adjusts_points_with_the_keyboard_in_a_real_browser() {
    let app = spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Кофейня", "Anna Karenina").await;
    let id = id_of(&member).to_string();
    staff(&app, m.id, "owner@browser.example", Role::Owner);

    let browser = Browser::start().await;
    browser.goto(&app.url("/console/")).await;
    browser.wait_for("#sign-in", Duration::from_secs(10)).await;
    browser.fill("#email", "owner@browser.example").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in-submit").await;
    browser
        .wait_for("#dashboard", Duration::from_secs(10))
        .await;
    assert_no_overflow(&browser).await;

    browser.goto(&app.url("/console/members")).await;
    browser.wait_for("#member-q", Duration::from_secs(10)).await;
    // Keyboard only: type, Enter submits; Tab moves between fields; Enter sends the form.
    browser.fill("#member-q", "karen\u{e007}").await;
    browser
        .wait_for("#member-results", Duration::from_secs(10))
        .await;
    browser
        .goto(&app.url(&format!("/console/members/{id}")))
        .await;
    browser.wait_for("#adjust", Duration::from_secs(10)).await;
    assert_no_overflow(&browser).await;
    browser
        .fill("#adjust-delta", "25\u{e004}keyboard thanks\u{e007}")
        .await;
    browser.wait_for("#adjusted", Duration::from_secs(10)).await;
    assert_eq!(browser.text("#member-points").await, "75");
    browser.screenshot("console-member-adjusted").await;
    assert_eq!(app.member_points(&m.admin_key, &id).await, 75);
    // The webhooks page's form lists every event type; it fits a phone too.
    browser.goto(&app.url("/console/webhooks")).await;
    browser
        .wait_for("#add-webhook", Duration::from_secs(10))
        .await;
    assert_no_overflow(&browser).await;

    let app_host = app.address.trim_start_matches("http://").to_string();
    assert_eq!(browser.resource_hosts().await, vec![app_host]);
    browser.close().await;
}

/// ChromeDriver's pass-through to the DevTools protocol: the harness emulates a 412 px
/// phone, and only DevTools can narrow the viewport under that emulation.
#[derive(Debug)]
pub(crate) struct Cdp(pub(crate) &'static str, pub(crate) serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.0, "params": self.1 });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// At 375 px the page does not scroll sideways.
pub(crate) async fn assert_no_overflow(browser: &Browser) {
    browser
        .client()
        .issue_cmd(Cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": true}),
        ))
        .await
        .expect("a 375 px viewport");
    let width = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await;
    let scroll = width[0].as_i64().unwrap();
    let inner = width[1].as_i64().unwrap();
    assert!(
        scroll <= 375 && scroll <= inner,
        "scrollWidth {scroll} at innerWidth {inner}"
    );
}
