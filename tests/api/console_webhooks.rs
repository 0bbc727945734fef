//! Webhooks in the console (issue 17): an owner adds an endpoint and its secret, shown once,
//! verifies what arrives; an endpoint passfold disabled after three days of failures is
//! announced on the home page and enabled again from its page; a delivery is sent again;
//! cashiers are refused; every change has its audit line.

use crate::console_auth::{staff, Console, Page};
use crate::helpers::{id_of, spawn_app_on};
use crate::webhook_receiver::Receiver;
use chrono::Utc;
use passfold::clock::Clock;
use passfold::domain::Role;

/// The text of the element with `id`, up to its first tag.
fn text_of(page: &Page, id: &str) -> String {
    let marker = format!(r#"id="{id}">"#);
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body))
        + marker.len();
    let end = page.body[start..].find('<').unwrap() + start;
    page.body[start..end].to_string()
}

/// The endpoint's id from the page the console answers with after adding it.
fn webhook_id(page: &Page) -> String {
    let marker = r#"id="webhook" data-webhook=""#;
    let start = page.body.find(marker).expect("the endpoint's page") + marker.len();
    page.body[start..start + 36].to_string()
}

async fn add(console: &mut Console<'_>, url: &str, events: &[&str]) -> Page {
    let list = console.get("/console/webhooks").await;
    assert_eq!(list.status, 200);
    let csrf = list.csrf();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("url", url),
        ("description", "CRM"),
    ];
    form.extend(events.iter().map(|e| ("events", *e)));
    console.post("/console/webhooks", &form).await
}

#[tokio::test]
async fn an_owner_adds_endpoints_sees_one_disabled_by_failures_and_enables_it_again() {
    let clock = Clock::manual(Utc::now());
    let app = spawn_app_on(clock.clone(), |s| s.webhooks_allow_private = true).await;
    let crm = Receiver::start().await;
    let broken = Receiver::failing_first(1_000).await;
    let (m, program, _) = app.merchant_with_member("Hooks Café", "Anna").await;
    staff(&app, m.id, "owner@hooks.example", Role::Owner);
    staff(&app, m.id, "till@hooks.example", Role::Cashier);
    let mut console = Console::signed_in(&app, "owner@hooks.example").await;

    // Refused forms name what is wrong and store nothing.
    let refused = add(&mut console, "ftp://example.org/x", &["no.such.event"]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains(r#"id="webhook-errors""#));
    assert!(refused.body.contains("URL:") && refused.body.contains("Events:"));
    let none = app.get_json("/api/v1/webhooks", &m.admin_key).await;
    assert_eq!(none["webhooks"].as_array().unwrap().len(), 0);

    let made = add(
        &mut console,
        &crm.url,
        &["member.created", "purchase.recorded"],
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let secret = text_of(&made, "webhook-secret");
    let crm_id = webhook_id(&made);
    let made = add(&mut console, &broken.url, &["member.created"]).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let broken_id = webhook_id(&made);
    // Shown once: neither the list nor the endpoint's page carries it.
    let list = console.get("/console/webhooks").await;
    assert!(!list.body.contains(&secret));
    assert_eq!(list.body.matches("data-webhook=").count(), 2);

    // What the CRM receives verifies with the secret the page showed.
    app.enroll(&m.pos_key, id_of(&program), "Boris").await;
    let got = crm.wait_for_kinds(&["member.created"]).await;
    assert!(got.iter().all(|r| r.verifies_with(&secret)));
    let path = format!("/api/v1/webhooks/{broken_id}");
    for _ in 0..100 {
        if app.get_json(&path, &m.admin_key).await["failing_since"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let home = console.get("/console/").await;
    assert!(!home.body.contains(r#"id="webhooks-gave-up""#));

    // Three days of failures: passfold disables it and the home page says so.
    clock.advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
    for _ in 0..100 {
        if app.get_json(&path, &m.admin_key).await["enabled"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Three days outlive the session too.
    let mut console = Console::signed_in(&app, "owner@hooks.example").await;
    let home = console.get("/console/").await;
    assert!(
        home.body.contains(r#"id="webhooks-gave-up""#),
        "{}",
        home.body
    );
    assert!(home
        .body
        .contains(&format!("/console/webhooks/{broken_id}")));
    assert!(!home.body.contains(&format!("/console/webhooks/{crm_id}")));
    let page = console.get(&format!("/console/webhooks/{broken_id}")).await;
    assert!(page.body.contains("Disabled by passfold"), "{}", page.body);
    assert!(page.body.contains(r#"data-status="gave_up""#));
    assert!(page.body.contains(r#"id="webhook-enable""#));
    let enabled = console
        .post(
            &format!("/console/webhooks/{broken_id}/state"),
            &[("csrf", &page.csrf()), ("enabled", "true")],
        )
        .await;
    assert_eq!(enabled.status, 303);
    let now = app.get_json(&path, &m.admin_key).await;
    assert_eq!(
        (now["enabled"].clone(), now["disabled_reason"].clone()),
        (true.into(), serde_json::Value::Null)
    );
    let home = console.get("/console/").await;
    assert!(!home.body.contains(r#"id="webhooks-gave-up""#));

    // One delivery sent again: the same message, signed again.
    let page = console.get(&format!("/console/webhooks/{crm_id}")).await;
    let first = got[0].id.clone();
    let resend = format!("/console/webhooks/{crm_id}/messages/{first}/resend");
    assert!(page.body.contains(&resend), "{}", page.body);
    let sent = console.post(&resend, &[("csrf", &page.csrf())]).await;
    assert_eq!(sent.status, 303);
    crm.wait_for("the message again", |d| {
        d.iter().filter(|r| r.id == first).count() == 2
    })
    .await;

    let audit = console.get("/console/audit").await;
    for action in ["webhook_create", "webhook_change", "webhook_resend"] {
        assert!(
            audit.body.contains(&format!(r#"data-action="{action}""#)),
            "{action}"
        );
    }

    // Another merchant's endpoint is not found; cashiers may not open the page.
    let other = app.create_merchant("Elsewhere");
    staff(&app, other.id, "owner@elsewhere.example", Role::Owner);
    let mut stranger = Console::signed_in(&app, "owner@elsewhere.example").await;
    let res = stranger.get(&format!("/console/webhooks/{crm_id}")).await;
    assert_eq!(res.status, 404);
    let mut till = Console::signed_in(&app, "till@hooks.example").await;
    assert_eq!(till.get("/console/webhooks").await.status, 403);
    let till_home = till.get("/console/").await;
    assert!(!till_home.body.contains("nav-webhooks"));
}

/// The endpoint's page after deleting it is gone, with its queue.
#[tokio::test]
async fn a_deleted_endpoint_is_gone_and_a_rotated_secret_is_shown_once() {
    let app = spawn_app_on(Clock::manual(Utc::now()), |s| {
        s.webhooks_allow_private = true
    })
    .await;
    let m = app.create_merchant("Rotating");
    staff(&app, m.id, "owner@rotating.example", Role::Owner);
    let mut console = Console::signed_in(&app, "owner@rotating.example").await;
    let made = add(&mut console, "http://127.0.0.1:9/hook", &["member.created"]).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let (id, old) = (webhook_id(&made), text_of(&made, "webhook-secret"));
    let rotated = console
        .post(
            &format!("/console/webhooks/{id}/rotate"),
            &[("csrf", &made.csrf())],
        )
        .await;
    assert_eq!(rotated.status, 200);
    let new = text_of(&rotated, "webhook-secret");
    assert!(new.starts_with("whsec_") && new != old);
    assert!(rotated.body.contains("still signs until"));
    let gone = console
        .post(
            &format!("/console/webhooks/{id}/delete"),
            &[("csrf", &made.csrf())],
        )
        .await;
    assert_eq!(gone.status, 303);
    assert_eq!(
        console.get(&format!("/console/webhooks/{id}")).await.status,
        404
    );
    let res = app
        .get_with_key(&format!("/api/v1/webhooks/{id}"), &m.admin_key)
        .await;
    assert_eq!(res.status(), 404);
}
