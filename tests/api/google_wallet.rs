//! Google Wallet against a stand-in that verifies the token assertion and validates every
//! body against Google's published walletobjects schema.

use crate::google_mock::{certs_example, validate, GoogleMock};
use crate::helpers::{id_of, TestApp};
use crate::wallets::{loyalty_object_shows, spawn_app_with_google, spawn_app_with_google_and};
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn save_link_claims(url: &str) -> Value {
    let jwt = url
        .strip_prefix("https://pay.google.com/gp/v/save/")
        .expect("a Google save link");
    let key = std::fs::read(certs_example("google-service-account.pub.pem")).unwrap();
    verify_with_openssl_cli(jwt);
    passfold::google::rs256::install();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["google"]);
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&key).unwrap(),
        &validation,
    )
    .expect("the save link verifies with the service account's public key");
    data.claims
}

/// The id of the first of `objects` (`loyaltyObjects`, `giftCardObjects`) a save link names.
pub(crate) fn save_link_object_id(save_url: &Value, objects: &str) -> String {
    save_link_claims(save_url.as_str().expect("a save link"))["payload"][objects][0]["id"]
        .as_str()
        .expect("an object id")
        .to_string()
}

/// The signature checked by the `openssl` command, apart from the RS256 code under test.
fn verify_with_openssl_cli(jwt: &str) {
    use base64::Engine;
    let (signed, signature) = jwt.rsplit_once('.').expect("header.payload.signature");
    let dir = tempfile::tempdir().unwrap();
    let (msg, sig) = (dir.path().join("msg"), dir.path().join("sig"));
    std::fs::write(&msg, signed).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    std::fs::write(&sig, raw).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(certs_example("google-service-account.pub.pem"))
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl does not accept the save link's RS256 signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn cards_reach_google_wallet_and_follow_every_change() {
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let (m, _, member) = app
        .merchant_with_member("Кофейня Ромашка", "Anna Petrova")
        .await;

    // The save link: RS256 by the service account, the claims Google wants, a valid object.
    let claims = save_link_claims(member["google_save_url"].as_str().unwrap());
    let account: Value = serde_json::from_slice(
        &std::fs::read(certs_example("google-service-account.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], account["client_email"]);
    assert_eq!(
        (claims["aud"].as_str(), claims["typ"].as_str()),
        (Some("google"), Some("savetowallet"))
    );
    assert!(claims["iat"].is_i64());
    assert_eq!(claims["origins"], json!([app.address]));
    // A skinny link: the object was inserted over REST before the answer; the link names it.
    let link = member["google_save_url"].as_str().unwrap();
    assert!(
        link.len() < 1_800,
        "a save link of {} characters",
        link.len()
    );
    let object = &claims["payload"]["loyaltyObjects"][0];
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["classId", "id"]);
    let inserted = mock
        .stored("loyaltyObject", object["id"].as_str().unwrap())
        .expect("the object was inserted before the link was answered");
    validate("LoyaltyObject", &inserted).expect("the object fits Google's schema");
    assert_eq!(inserted["classId"], object["classId"]);
    assert_eq!(inserted["loyaltyPoints"]["balance"]["int"], 50);
    assert_eq!(inserted["barcode"]["value"], member["card_number"]);
    assert!(
        claims["payload"].get("loyaltyClasses").is_none(),
        "classes stay out of the link"
    );
    let object_id = object["id"].as_str().unwrap().to_string();

    // A purchase reaches Google within 2 s.
    let res = app.purchase(&m.pos_key, id_of(&member), "g-1", 4599).await;
    let after = TestApp::expect_json(res, 200).await;
    let points = after["points"].as_i64().unwrap();
    assert!(
        loyalty_object_shows(&mock, &object_id, points, Duration::from_secs(2)).await,
        "the loyalty object never showed {points} points"
    );
    // The member's answer carries a link for the card as it is now: the same link while
    // nothing changes (kept per pass version), a new one after the purchase.
    let read_link = || async {
        app.member(&m.pos_key, id_of(&member)).await["google_save_url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (first, again) = (read_link().await, read_link().await);
    assert_eq!(first, again);
    assert_eq!(
        save_link_claims(&first)["payload"]["loyaltyObjects"][0]["id"],
        json!(object_id)
    );
    let stored = mock.stored("loyaltyObject", &object_id).unwrap();
    let class = mock
        .stored("loyaltyClass", stored["classId"].as_str().unwrap())
        .expect("the class was created over REST");
    assert_eq!(class["programName"], "Coffee Club");
    assert_eq!(class["issuerName"], "Кофейня Ромашка");
    assert!(
        stored["textModulesData"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["body"] == "Silver"),
        "the tier travels: {stored}"
    );

    // A gift card and a redemption: balance in micros with its currency.
    let card = app.issue_gift_card(&m.admin_key, "EUR", 2500).await;
    let card_link = card["google_save_url"].as_str().unwrap();
    assert!(card_link.len() < 1_800, "{}", card_link.len());
    let card_id = save_link_object_id(&card["google_save_url"], "giftCardObjects");
    let card_object = mock.stored("giftCardObject", &card_id).unwrap();
    validate("GiftCardObject", &card_object).expect("fits Google's schema");
    // The gift-card template has a barcode: without this Android would show none.
    let card_class = mock
        .stored("giftCardClass", card_object["classId"].as_str().unwrap())
        .unwrap();
    assert_eq!(card_class["allowBarcodeRedemption"], true);
    assert!(card_object["barcode"]["value"].is_string());
    // Two 500s in a row are retried until delivered.
    mock.fail_next(2, 500);
    let res = app
        .redeem(&m.pos_key, card["gan"].as_str().unwrap(), "g-2", 1250)
        .await;
    assert_eq!(res.status(), 200);
    let id = card_id.clone();
    assert!(
        mock.wait_until(
            move |g| g
                .stored("giftCardObject", &id)
                .is_some_and(|o| o["balance"]["micros"] == "12500000"),
            Duration::from_secs(5)
        )
        .await,
        "the gift card object never showed 12.50 EUR: {:?}",
        mock.stored("giftCardObject", &card_id)
    );
    let stored = mock.stored("giftCardObject", &card_id).unwrap();
    assert_eq!(stored["balance"]["currencyCode"], "EUR");
    assert!(stored["balanceUpdateTime"]["date"].is_string());
    assert_eq!(
        mock.tokens_issued(),
        1,
        "one access token serves every call"
    );
}

/// Google shows at most 3 notifications per pass a day: the first three balance changes
/// notify, later ones still update the card, silently.
#[tokio::test]
async fn the_notification_budget_is_spent_on_three_changes_a_day() {
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let m = app.create_merchant("Budget");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 10_000).await;
    let id = save_link_object_id(&card["google_save_url"], "giftCardObjects");
    for i in 1..=5i64 {
        let res = app
            .redeem(
                &m.pos_key,
                card["gan"].as_str().unwrap(),
                &format!("b-{i}"),
                100,
            )
            .await;
        assert_eq!(res.status(), 200);
        let micros = ((10_000 - 100 * i) * 10_000).to_string();
        let oid = id.clone();
        assert!(
            mock.wait_until(
                move |g| g
                    .stored("giftCardObject", &oid)
                    .is_some_and(|o| o["balance"]["micros"] == micros.as_str()),
                Duration::from_secs(3)
            )
            .await
        );
    }
    let notifying = mock
        .calls()
        .iter()
        .filter(|c| c.path.contains(&id) || c.body.as_ref().is_some_and(|b| b["id"] == id.as_str()))
        .filter(|c| {
            c.status == 200
                && c.body
                    .as_ref()
                    .is_some_and(|b| b["notifyPreference"] == "NOTIFY_ON_UPDATE")
        })
        .count();
    assert_eq!(notifying, 3, "three notifications, then silent updates");
}

/// A merchant's message reaches both wallets: the Apple pass's back (with a change message
/// for the lock screen) and Google's addMessage.
#[tokio::test]
async fn merchant_messages_reach_both_wallets() {
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let (m, _, member) = app.merchant_with_member("Messages", "Ann").await;
    let id = save_link_object_id(&member["google_save_url"], "loyaltyObjects");
    let path = format!("/api/v1/members/{}/messages", id_of(&member));
    let res = app
        .post_json(
            &path,
            &m.admin_key,
            &json!({"header": "Double points", "body": "All weekend <b>long</b>"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let res = app
        .post_json(&path, &m.pos_key, &json!({"header": "x", "body": "y"}))
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .post_json(&path, &m.admin_key, &json!({"header": "", "body": "y"}))
        .await;
    assert_eq!(res.status(), 422);

    let pass = app.pass_json_of(&member).await;
    let back = &pass["storeCard"]["backFields"][0];
    assert_eq!(
        (back["label"].as_str(), back["value"].as_str()),
        (Some("Double points"), Some("All weekend <b>long</b>"))
    );
    assert_eq!(back["changeMessage"], "%@");

    let oid = id.clone();
    assert!(
        mock.wait_until(
            move |g| g
                .calls()
                .iter()
                .any(|c| c.path.ends_with(&format!("{oid}/addMessage")) && c.status == 200),
            Duration::from_secs(3)
        )
        .await,
        "no addMessage reached Google"
    );
    let call = mock
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with("/addMessage"))
        .unwrap();
    let message = &call.body.unwrap()["message"];
    assert_eq!(
        (message["header"].as_str(), message["messageType"].as_str()),
        (Some("Double points"), Some("TEXT_AND_NOTIFY"))
    );
    validate("AddMessageRequest", &json!({"message": message})).unwrap();
}

/// With Google unreachable the link still works: it carries the whole object. Once Google
/// has the object (the sync inserted it), links name it only. A template's expiration date
/// becomes the object's validity.
#[tokio::test]
async fn save_links_name_inserted_objects_and_carry_them_only_as_a_fallback() {
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let m = app.create_merchant("Fallback");
    let current = app
        .get_json("/api/v1/templates/loyalty-default", &m.admin_key)
        .await;
    let mut doc = current["template"].clone();
    doc["expiration_date"] = json!("2030-12-31T23:59:00+03:00");
    let res = app
        .put_json(
            "/api/v1/templates/loyalty-default",
            &m.admin_key,
            &json!({"template": doc}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    mock.fail_next(1_000, 503);
    let member = app.enroll(&m.pos_key, id_of(&program), "Ann").await;
    let fat = member["google_save_url"].as_str().unwrap();
    let object = save_link_claims(fat)["payload"]["loyaltyObjects"][0].clone();
    validate("LoyaltyObject", &object).expect("the fallback object fits Google's schema");
    assert_eq!(object["loyaltyPoints"]["balance"]["int"], 50);
    assert_eq!(
        object["validTimeInterval"]["end"]["date"],
        "2030-12-31T23:59:00+03:00"
    );
    eprintln!("save link with the whole object: {} characters", fat.len());

    mock.fail_next(0, 503);
    let id = object["id"].as_str().unwrap().to_string();
    let oid = id.clone();
    assert!(
        mock.wait_until(
            move |g| g.stored("loyaltyObject", &oid).is_some(),
            Duration::from_secs(10)
        )
        .await,
        "the sync never inserted the object"
    );
    // A new version of the card (a purchase) gets a fresh link, now a skinny one.
    let res = app.purchase(&m.pos_key, id_of(&member), "f-1", 1000).await;
    assert_eq!(res.status(), 200);
    let link = app.member(&m.pos_key, id_of(&member)).await["google_save_url"]
        .as_str()
        .unwrap()
        .to_string();
    eprintln!("skinny save link: {} characters", link.len());
    assert!(link.len() < 1_800, "{}", link.len());
    assert!(fat.len() > link.len());
    let named = &save_link_claims(&link)["payload"]["loyaltyObjects"][0];
    assert_eq!(named["id"], json!(id));
    assert!(named.get("loyaltyPoints").is_none());
    assert_eq!(
        mock.stored("loyaltyObject", &id).unwrap()["validTimeInterval"]["end"]["date"],
        "2030-12-31T23:59:00+03:00"
    );
}

/// Google answering 429 with Retry-After: every pass still ends with its latest state,
/// and no second sees more requests than the configured rate plus the burst.
#[tokio::test]
async fn under_429s_every_card_reaches_its_latest_state_within_the_rate() {
    const RATE: u32 = 5;
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google_and(&mock, |s| s.google.requests_per_second = RATE).await;
    let m = app.create_merchant("Busy");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(
            app.enroll(&m.pos_key, id_of(&program), &format!("M{i}"))
                .await,
        );
    }
    mock.rate_limit_next(10, 1);
    for round in 0..3 {
        for (i, member) in members.iter().enumerate() {
            let res = app
                .purchase(
                    &m.pos_key,
                    id_of(member),
                    &format!("r-{round}-{i}"),
                    1000 * (round + 1),
                )
                .await;
            assert_eq!(res.status(), 200);
        }
    }
    for member in &members {
        let points = app.member_points(&m.pos_key, id_of(member)).await;
        let id = format!(
            "{}.pass_{}",
            mock.issuer_id,
            member["serial"].as_str().unwrap()
        );
        assert!(
            loyalty_object_shows(&mock, &id, points, Duration::from_secs(60)).await,
            "{id} never showed its latest {points} points: {:?}",
            mock.stored("loyaltyObject", &id)
        );
    }
    let refused = mock.rejected().iter().filter(|r| r.0 == 429).count();
    assert_eq!(refused, 10, "the stand-in's 429s were all met");
    let peak = mock.max_requests_per_second();
    eprintln!("peak Wallet API requests in one second: {peak} (limit {RATE} + burst 2)");
    assert!(
        peak <= RATE as usize + 2,
        "{peak} requests within one second"
    );
    let classes = mock
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/loyaltyClass") && c.status != 429)
        .count();
    assert_eq!(
        classes,
        1,
        "the class is inserted once: {:?}",
        mock.requests()
    );
}

/// A change waiting for its retry and a newer change of the same card become one patch with
/// the newest state: the waiting row goes with it, nothing is sent again later.
#[tokio::test]
async fn queued_changes_of_a_card_become_one_patch_with_its_latest_state() {
    use diesel::prelude::*;
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let (m, _, member) = app.merchant_with_member("Coalesce", "Ann").await;
    let member_id = id_of(&member).to_string();
    let id = format!(
        "{}.pass_{}",
        mock.issuer_id,
        member["serial"].as_str().unwrap()
    );
    let queued = || {
        let mut conn = app.db.connect();
        diesel::sql_query("SELECT 1 FROM outbox WHERE channel = 'google'")
            .execute(&mut conn)
            .unwrap()
    };
    let started = std::time::Instant::now();
    while queued() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sync never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let purchase = |key: &'static str| {
        let (app, m, member_id) = (&app, &m, member_id.clone());
        async move {
            let res = app.purchase(&m.pos_key, &member_id, key, 1000).await;
            assert_eq!(res.status(), 200);
        }
    };
    // Google fails every try of the first change: it waits for its retry.
    mock.fail_next(4, 503);
    purchase("c-1").await;
    assert!(
        mock.wait_until(
            |g| g.rejected().iter().filter(|r| r.0 == 503).count() == 4,
            Duration::from_secs(10)
        )
        .await
    );
    let waiting = std::time::Instant::now();
    while queued() == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(2),
            "no retry queued"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let patches_before = mock
        .calls()
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with(&id) && c.status == 200)
        .count();
    purchase("c-2").await;
    let points = app.member_points(&m.pos_key, &member_id).await;
    assert!(loyalty_object_shows(&mock, &id, points, Duration::from_secs(5)).await);
    // Before the retry (2 s after the failure) was due, nothing is queued any more.
    let mut left = queued();
    while left > 0 && waiting.elapsed() < Duration::from_millis(1_500) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        left = queued();
    }
    assert_eq!(left, 0, "the waiting retry went with the newer change");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let patches = mock
        .calls()
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with(&id) && c.status == 200)
        .count();
    assert_eq!(patches - patches_before, 1, "one patch for both changes");
}

/// A template's own Google images (`google_logo.png`, `google_hero.png`) become the class's
/// logo and hero image; without them the Apple icon and strip stand in.
#[tokio::test]
async fn google_images_of_a_template_become_the_class_logo_and_hero() {
    use diesel::prelude::*;
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let m = app.create_merchant("Images");
    // The loyalty example ships Google images; the gift-card one loses them here, so its
    // class shows the fallback.
    let mut conn = app.db.connect();
    diesel::sql_query(
        "DELETE FROM template_images WHERE merchant_id = $1
           AND template_id = 'gift-card-default' AND file_name LIKE 'google\\_%'",
    )
    .bind::<diesel::sql_types::Uuid, _>(m.id)
    .execute(&mut conn)
    .unwrap();
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Ann").await;
    // The class behind a save link, as the stand-in stored it, and one image's URI in it.
    let class_of = |link: &Value, objects: &str, kind: &str| {
        let object = save_link_claims(link.as_str().unwrap())["payload"][objects][0].clone();
        mock.stored(kind, object["classId"].as_str().unwrap())
            .unwrap()
    };
    let uri = |class: &Value, image: &str| {
        class[image]["sourceUri"]["uri"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let class = class_of(&member["google_save_url"], "loyaltyObjects", "loyaltyClass");
    assert!(
        uri(&class, "programLogo").ends_with("/loyalty-default/1/google_logo.png"),
        "{class}"
    );
    assert!(
        uri(&class, "heroImage").ends_with("/loyalty-default/1/google_hero.png"),
        "{class}"
    );
    let logo = app
        .client
        .get(uri(&class, "programLogo"))
        .send()
        .await
        .unwrap();
    assert_eq!(logo.status(), 200, "the logo's URL serves it");

    let card = app.issue_gift_card(&m.admin_key, "EUR", 1000).await;
    let card_class = class_of(&card["google_save_url"], "giftCardObjects", "giftCardClass");
    assert!(
        uri(&card_class, "programLogo").ends_with("/icon@3x.png"),
        "{card_class}"
    );
    assert!(
        uri(&card_class, "heroImage").ends_with("/strip@3x.png"),
        "{card_class}"
    );
}
