//! A new customer's whole journey in headless Chromium: a friend's referral link, the join
//! form, the wallet buttons, the signed pass; and the referrer rewarded once, with a push
//! to the referrer's iPhone.

use crate::apns_mock::ApnsMock;
use crate::browser::Browser;
use crate::google_wallet::save_link_claims;
use crate::helpers::{spawn_app_with_apns, TestApp};
use crate::pass_check::check_pkpass;
use serde_json::json;
use std::time::Duration;

const PHONE: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const HOSTILE_NAME: &str = "<script>alert(1)</script> Bob";

#[tokio::test]
async fn a_new_customer_joins_through_a_referral_link_in_a_real_browser() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let m = app.create_merchant("Кофейня Ромашка");
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 10, "welcome_points": 0,
                    "referral": {"referrer_points": 100, "referee_points": 25, "trigger": "join"}}),
        )
        .await,
        201,
    )
    .await;
    let program_id = program["id"].as_str().unwrap();
    let referrer = TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/programs/{program_id}/members"),
            &m.pos_key,
            &json!({"name": "Alice Smith", "email": "alice@example.com"}),
        )
        .await,
        201,
    )
    .await;

    // The referrer's iPhone carries the pass and is registered for its updates.
    let pass = app.pass_json_of(&referrer).await;
    assert_eq!(app.register_device(&pass, "alice-phone", PHONE).await, 201);
    let pushes_before = mock.accepted_for(PHONE).await;

    // The friend opens the link on a phone.
    let browser = Browser::start().await;
    let link = referrer["referral_url"].as_str().unwrap();
    browser.goto(link).await;
    browser.wait_for("#join", Duration::from_secs(10)).await;
    assert!(browser.text("#invitation").await.contains("Alice"));
    assert_eq!(browser.text("#program-name").await, "Coffee Club");
    assert!(browser.text("#offer").await.contains("25"));
    browser.screenshot("referral-1-landing").await;
    let app_host = app.address.trim_start_matches("http://").to_string();
    assert_eq!(browser.resource_hosts().await, vec![app_host.clone()]);

    browser.fill("#name", HOSTILE_NAME).await;
    browser.fill("#email", "bob@example.com").await;
    browser.click("#consent").await;
    browser.screenshot("referral-2-filled").await;
    browser.click("#join-submit").await;
    browser
        .wait_for("#add-to-apple-wallet", Duration::from_secs(10))
        .await;
    browser.screenshot("referral-3-welcome").await;

    // What the customer typed is text, not markup.
    assert_eq!(browser.text("#member-name").await, HOSTILE_NAME);
    assert_eq!(
        browser
            .execute("return document.scripts.length", vec![])
            .await,
        json!(0)
    );
    assert!(browser.text("#referral-status").await.contains("25"));
    assert_eq!(browser.resource_hosts().await, vec![app_host]);

    // The Apple button yields a valid signed pass with the new member's name.
    let apple = browser.attr("#add-to-apple-wallet", "href").await.unwrap();
    let new_pass = check_pkpass(&app.download_pass(&apple).await);
    assert!(
        new_pass.pass_json.to_string().contains(HOSTILE_NAME),
        "the pass carries the name as text: {}",
        new_pass.pass_json
    );
    // The Google button carries a save link signed by the service account.
    let google = browser.attr("#add-to-google-wallet", "href").await.unwrap();
    let claims = save_link_claims(&google);
    assert_eq!(claims["typ"], "savetowallet");
    assert_eq!(
        claims["payload"]["loyaltyObjects"][0]["accountName"],
        HOSTILE_NAME
    );

    // The referrer earned exactly once, and the iPhone was told.
    assert_eq!(
        app.member_points(&m.pos_key, referrer["id"].as_str().unwrap())
            .await,
        100
    );
    assert!(
        mock.wait_for(PHONE, pushes_before + 1, Duration::from_secs(5))
            .await,
        "no push reached the referrer's iPhone"
    );
    let stats = app
        .get_json(
            &format!("/api/v1/programs/{program_id}/referral-stats"),
            &m.admin_key,
        )
        .await;
    assert_eq!(stats["link_opens"], 1);
    assert_eq!(stats["joins"], 1);
    assert_eq!(stats["points_granted"], 125);

    // Sending the same form again (browser back + resubmit) does not pay twice.
    browser.goto(link).await;
    browser.wait_for("#join", Duration::from_secs(10)).await;
    browser.fill("#name", "Bob again").await;
    browser.fill("#email", "bob@example.com").await;
    browser.click("#consent").await;
    browser.click("#join-submit").await;
    browser.wait_for("#errors", Duration::from_secs(10)).await;
    browser.screenshot("referral-4-already-member").await;
    assert!(browser.text("#errors").await.contains("already a member"));
    assert_eq!(
        app.member_points(&m.pos_key, referrer["id"].as_str().unwrap())
            .await,
        100
    );
    browser.close().await;

    // Russian by Accept-Language.
    let page = app
        .get_url_with(link, &[("accept-language", "ru-RU,ru;q=0.9,en;q=0.5")])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("приглашает вас"), "{page}");
}
