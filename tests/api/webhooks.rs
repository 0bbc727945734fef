//! Signed webhooks (issue 17): events reach a loopback receiver signed per Standard
//! Webhooks (checked by an independent HMAC in webhook_receiver.rs), in order, again after
//! failures; secrets rotate; private targets are refused unless the operator allows them.

use crate::helpers::{assert_problem, id_of, spawn_app_on, spawn_app_with, TestApp};
use crate::webhook_receiver::Receiver;
use chrono::Utc;
use passfold::clock::Clock;
use serde_json::{json, Value};

async fn private_app() -> TestApp {
    spawn_app_with(|s| s.webhooks_allow_private = true).await
}

async fn register(app: &TestApp, key: &str, url: &str, events: &[&str]) -> Value {
    let res = app
        .post_json(
            "/api/v1/webhooks",
            key,
            &json!({"url": url, "events": events}),
        )
        .await;
    TestApp::expect_json(res, 201).await
}

fn secret_of(endpoint: &Value) -> String {
    endpoint["secret"].as_str().expect("a secret").to_string()
}

#[tokio::test]
async fn a_join_a_purchase_a_redemption_and_an_apple_registration_arrive_signed() {
    let app = private_app().await;
    let receiver = Receiver::start().await;
    let m = app.create_merchant("Hooked Cafe");
    let endpoint = register(
        &app,
        &m.admin_key,
        &receiver.url,
        &[
            "member.created",
            "purchase.recorded",
            "points.changed",
            "gift_card.redeemed",
            "pass.installed",
        ],
    )
    .await;
    let secret = secret_of(&endpoint);
    assert!(secret.starts_with("whsec_"), "{secret}");

    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Ann Lee").await;
    let res = app.purchase(&m.pos_key, id_of(&member), "p-1", 1250).await;
    assert_eq!(res.status(), 200);
    let card = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
    let gan = card["gan"].as_str().unwrap();
    assert_eq!(app.redeem(&m.pos_key, gan, "r-1", 700).await.status(), 200);
    let pass = app.pass_json_of(&member).await;
    assert_eq!(
        app.register_device(&pass, "device-webhooks", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
            .await,
        201
    );

    let all = receiver
        .wait_for_kinds(&[
            "member.created",
            "purchase.recorded",
            "points.changed",
            "gift_card.redeemed",
            "pass.installed",
        ])
        .await;
    let wrong = passfold::webhooks::signing::new_secret();
    for r in &all {
        assert!(r.id.starts_with("msg_"), "{}", r.id);
        assert!(r.timestamp.parse::<i64>().is_ok(), "{}", r.timestamp);
        assert!(r.verifies_with(&secret), "{} does not verify", r.kind());
        assert!(
            !r.verifies_with(&wrong),
            "{} verifies with a wrong secret",
            r.kind()
        );
        let body = r.json();
        assert!(
            body["timestamp"]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{body}"
        );
        assert!(body["data"].is_object(), "{body}");
    }
    // Only what the endpoint subscribed to.
    assert!(all
        .iter()
        .all(|r| r.kind() != "gift_card.issued" && r.kind() != "gift_card.loaded"));
    let find = |kind: &str| all.iter().find(|r| r.kind() == kind).unwrap().json()["data"].clone();
    assert_eq!(find("member.created")["id"], member["id"]);
    assert_eq!(find("member.created")["name"], "Ann Lee");
    let purchase = find("purchase.recorded");
    assert_eq!(
        (purchase["member_id"].clone(), purchase["amount"].clone()),
        (member["id"].clone(), json!(1250))
    );
    let redeemed = find("gift_card.redeemed");
    assert_eq!(
        (
            redeemed["gan"].as_str(),
            redeemed["amount"].as_i64(),
            redeemed["balance"].as_i64()
        ),
        (Some(gan), Some(-700), Some(4300))
    );
    let installed = find("pass.installed");
    assert_eq!(
        (installed["wallet"].as_str(), installed["member_id"].clone()),
        (Some("apple"), member["id"].clone())
    );
    // Each message once: ids are unique.
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
}

#[tokio::test]
async fn a_receiver_failing_at_first_gets_everything_again_in_order() {
    let app = private_app().await;
    let receiver = Receiver::failing_first(2).await;
    let m = app.create_merchant("Flaky Receiver");
    let endpoint = register(&app, &m.admin_key, &receiver.url, &["points.changed"]).await;
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Bo Chen").await;
    for (i, delta) in [10, 20].iter().enumerate() {
        app.pos_ok(
            &format!("/api/v1/members/{}/points", id_of(&member)),
            &m.pos_key,
            &format!("adj-{i}"),
            &json!({"delta": delta, "reason": "goodwill"}),
        )
        .await;
    }
    let delivered = receiver
        .wait_for("three deliveries", |d| d.len() >= 3)
        .await;
    let deltas: Vec<i64> = delivered
        .iter()
        .map(|r| r.json()["data"]["delta"].as_i64().unwrap())
        .collect();
    assert_eq!(deltas, vec![50, 10, 20], "in order of creation");
    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200, 200, 200]
    );
    // The first message was the one tried three times, signed each time.
    assert!(received[..3].iter().all(|r| r.id == delivered[0].id));
    assert!(received
        .iter()
        .all(|r| r.verifies_with(&secret_of(&endpoint))));

    // The delivery log, a page of two at a time, newest first, each attempt once.
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&endpoint));
    let mut log = Vec::new();
    let mut next = format!("{path}?limit=2");
    loop {
        let page = app.get_json(&next, &m.admin_key).await;
        log.extend(page["deliveries"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(log.len(), 5, "{log:?}");
    let oldest: Vec<(Value, Value, Value)> = log
        .iter()
        .rev()
        .map(|d| {
            (
                d["status"].clone(),
                d["response_code"].clone(),
                d["attempt"].clone(),
            )
        })
        .collect();
    assert_eq!(
        oldest[..3],
        [
            (json!("failed"), json!(500), json!(1)),
            (json!("failed"), json!(500), json!(2)),
            (json!("delivered"), json!(200), json!(3)),
        ]
    );

    let metrics = app.text_of("/metrics").await;
    assert!(
        metrics.contains(r#"passfold_webhook_deliveries_total{result="failed"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"passfold_webhook_deliveries_total{result="delivered"} 3"#),
        "{metrics}"
    );

    // One message sent again, then everything since long ago.
    let res = app
        .post_json(
            &format!(
                "/api/v1/webhooks/{}/messages/{}/resend",
                id_of(&endpoint),
                delivered[0].id
            ),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_eq!(TestApp::expect_json(res, 202).await["queued"], 1);
    receiver
        .wait_for("the resent message", |d| d.len() == 4)
        .await;
    let res = app
        .post_json(
            &format!(
                "/api/v1/webhooks/{}/replay?since=2020-01-01T00:00:00Z",
                id_of(&endpoint)
            ),
            &m.admin_key,
            &json!({}),
        )
        .await;
    let replayed = TestApp::expect_json(res, 202).await;
    assert_eq!(
        (replayed["queued"].clone(), replayed["next_since"].clone()),
        (json!(3), Value::Null)
    );
    let all = receiver.wait_for("the replay", |d| d.len() == 7).await;
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids[3], ids[0]);
    assert_eq!(ids[4..], ids[..3]);
}

#[tokio::test]
async fn a_rotated_secret_still_verifies_for_24_hours() {
    let clock = Clock::manual(Utc::now());
    let app = spawn_app_on(clock.clone(), |s| s.webhooks_allow_private = true).await;
    let receiver = Receiver::start().await;
    let m = app.create_merchant("Rotating Keys");
    let endpoint = register(&app, &m.admin_key, &receiver.url, &["member.created"]).await;
    let old = secret_of(&endpoint);
    let res = app
        .post_json(
            &format!("/api/v1/webhooks/{}/rotate", id_of(&endpoint)),
            &m.admin_key,
            &json!({}),
        )
        .await;
    let rotated = TestApp::expect_json(res, 200).await;
    let new = secret_of(&rotated);
    assert_ne!(old, new);
    assert!(rotated["previous_secret_until"].is_string(), "{rotated}");

    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    app.enroll(&m.pos_key, id_of(&program), "Cy Day").await;
    let first = receiver
        .wait_for("the first member", |d| d.len() == 1)
        .await;
    assert!(first[0].verifies_with(&new));
    assert!(
        first[0].verifies_with(&old),
        "the old secret signs within 24 hours"
    );

    clock.advance(chrono::Duration::hours(25));
    app.enroll(&m.pos_key, id_of(&program), "Di Eve").await;
    let both = receiver
        .wait_for("the second member", |d| d.len() == 2)
        .await;
    assert!(both[1].verifies_with(&new));
    assert!(
        !both[1].verifies_with(&old),
        "the old secret no longer signs after 24 hours"
    );
    // The timestamp is the service's (moved) clock's.
    assert_eq!(both[1].timestamp, clock.now().timestamp().to_string());
}

#[tokio::test]
async fn private_and_metadata_targets_are_refused_without_the_operator_setting() {
    let app = spawn_app_with(|_| {}).await;
    let m = app.create_merchant("Careful Shop");
    for url in [
        "https://127.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost:8443/hooks",
        "https://[::1]/hooks",
        "https://10.0.0.7/hooks",
        "http://93.184.216.34/hooks",
        "ftp://93.184.216.34/hooks",
    ] {
        let res = app
            .post_json(
                "/api/v1/webhooks",
                &m.admin_key,
                &json!({"url": url, "events": ["member.created"]}),
            )
            .await;
        let body = assert_problem(res, 422, "validation").await;
        assert!(body.to_string().contains("/url"), "{url}: {body}");
    }
    // A public address is taken (no DNS needed for a literal).
    let endpoint = register(
        &app,
        &m.admin_key,
        "https://93.184.216.34/hooks",
        &["member.created"],
    )
    .await;
    let res = app
        .patch_json(
            &format!("/api/v1/webhooks/{}", id_of(&endpoint)),
            &m.admin_key,
            &json!({"url": "https://169.254.169.254/"}),
        )
        .await;
    assert_problem(res, 422, "validation").await;

    // Checked again at delivery: a target that has become private since is not sent to.
    let mut conn = app.db.connect();
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE webhook_endpoints SET url = 'https://127.0.0.1:9/hooks'"),
        &mut conn,
    )
    .unwrap();
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    app.enroll(&m.pos_key, id_of(&program), "Ed Fox").await;
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&endpoint));
    let mut log = Value::Null;
    for _ in 0..100 {
        log = app.get_json(&path, &m.admin_key).await;
        if !log["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let attempt = &log["deliveries"][0];
    assert_eq!(attempt["status"], "failed", "{log}");
    assert!(
        attempt["error"].as_str().unwrap().contains("127.0.0.1"),
        "{log}"
    );
    assert!(attempt["response_code"].is_null());
}

#[tokio::test]
async fn an_endpoint_failing_for_three_days_is_disabled_and_the_others_are_told() {
    let clock = Clock::manual(Utc::now());
    let app = spawn_app_on(clock.clone(), |s| s.webhooks_allow_private = true).await;
    let broken = Receiver::failing_first(1_000).await;
    let healthy = Receiver::start().await;
    let m = app.create_merchant("Broken Hook");
    let bad = register(&app, &m.admin_key, &broken.url, &["member.created"]).await;
    register(&app, &m.admin_key, &healthy.url, &["member.created"]).await;
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    app.enroll(&m.pos_key, id_of(&program), "Fay Gu").await;
    healthy.wait_for_kinds(&["member.created"]).await;
    let path = format!("/api/v1/webhooks/{}", id_of(&bad));
    for _ in 0..100 {
        if app.get_json(&path, &m.admin_key).await["failing_since"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    clock.advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
    let told = healthy.wait_for_kinds(&["webhook.endpoint_disabled"]).await;
    let notice = told
        .iter()
        .find(|r| r.kind() == "webhook.endpoint_disabled")
        .unwrap()
        .json();
    assert_eq!(notice["data"]["endpoint_id"], bad["id"]);
    let now = app.get_json(&path, &m.admin_key).await;
    assert_eq!(now["enabled"], false, "{now}");
    assert!(
        now["disabled_reason"].as_str().unwrap().contains("3 days"),
        "{now}"
    );
    let log = app
        .get_json(&format!("{path}/deliveries"), &m.admin_key)
        .await;
    assert_eq!(log["deliveries"][0]["status"], "gave_up", "{log}");
    // Enabled again, it starts over.
    let res = app
        .patch_json(&path, &m.admin_key, &json!({"enabled": true}))
        .await;
    let enabled = TestApp::expect_json(res, 200).await;
    assert_eq!(
        (
            enabled["enabled"].clone(),
            enabled["disabled_reason"].clone()
        ),
        (json!(true), Value::Null)
    );
}

#[tokio::test]
async fn endpoints_are_managed_by_admin_keys_and_checked() {
    let app = private_app().await;
    let m = app.create_merchant("Managed Hooks");
    let other = app.create_merchant("Someone Else");
    let res = app
        .post_json(
            "/api/v1/webhooks",
            &m.admin_key,
            &json!({"url": "http://127.0.0.1:9/x", "events": ["member.created", "nope"]}),
        )
        .await;
    let body = assert_problem(res, 422, "validation").await;
    assert!(body.to_string().contains("/events/1"), "{body}");
    let res = app
        .post_json(
            "/api/v1/webhooks",
            &m.admin_key,
            &json!({"url": "http://127.0.0.1:9/x", "events": []}),
        )
        .await;
    assert_problem(res, 422, "validation").await;
    let res = app
        .post_json(
            "/api/v1/webhooks",
            &m.pos_key,
            &json!({"url": "http://127.0.0.1:9/x", "events": ["member.created"]}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;

    let created = register(
        &app,
        &m.admin_key,
        "http://127.0.0.1:9/x",
        &["member.created"],
    )
    .await;
    let path = format!("/api/v1/webhooks/{}", id_of(&created));
    let list = app.get_json("/api/v1/webhooks", &m.admin_key).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(list["webhooks"][0].get("secret").is_none(), "{list}");
    assert!(list.get("next_cursor").is_some());
    let res = app
        .patch_json(&path, &m.admin_key, &json!({"events": ["points.changed", "tier.changed"], "description": "CRM", "enabled": false}))
        .await;
    let changed = TestApp::expect_json(res, 200).await;
    assert_eq!(changed["events"], json!(["points.changed", "tier.changed"]));
    assert_eq!(
        (changed["description"].clone(), changed["enabled"].clone()),
        (json!("CRM"), json!(false))
    );
    let res = app
        .post_json(
            &format!("{path}/replay?since=2020-01-01T00:00:00Z"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    app.patch_json(&path, &m.admin_key, &json!({"enabled": true}))
        .await;
    let res = app
        .post_json(
            &format!("{path}/replay?since=yesterday"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 422, "validation").await;
    let res = app
        .post_json(
            &format!("{path}/messages/msg_nope/resend"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 404, "not-found").await;
    let res = app
        .post_json(
            &format!("{path}/messages/msg%27x/resend"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 404, "not-found").await;
    let res = app
        .get_with_key(&format!("{path}/deliveries?limit=0"), &m.admin_key)
        .await;
    assert_problem(res, 422, "validation").await;

    assert_problem(
        app.get_with_key(&path, &other.admin_key).await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(
        app.delete_with_key(&path, &other.admin_key).await.status(),
        404
    );
    assert_eq!(app.delete_with_key(&path, &m.admin_key).await.status(), 204);
    assert_problem(
        app.get_with_key(&path, &m.admin_key).await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_event_in_its_webhooks_section() {
    let app = private_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for kind in passfold::webhooks::EVENT_TYPES {
        let op = &doc["webhooks"][kind]["post"];
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["type"]["const"], *kind, "{kind}");
        assert!(
            body["properties"]["data"]["properties"]
                .as_object()
                .is_some_and(|p| !p.is_empty()),
            "{kind}"
        );
        let headers: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
    }
    assert!(doc["paths"]["/api/v1/webhooks/{id}/replay"]["post"].is_object());
}

#[tokio::test]
async fn every_event_of_members_cards_passes_and_referrals_arrives_after_its_cause() {
    let app = private_app().await;
    let receiver = Receiver::start().await;
    let m = app.create_merchant("All Events");
    let endpoint = register(
        &app,
        &m.admin_key,
        &receiver.url,
        passfold::webhooks::EVENT_TYPES,
    )
    .await;
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 10,
                    "tiers": [{"name": "Bronze", "min_points": 0}, {"name": "Gold", "min_points": 2000}],
                    "welcome_points": 50,
                    "referral": {"referrer_points": 100, "referee_points": 25, "trigger": "join"}}),
        )
        .await;
    let program = TestApp::expect_json(res, 201).await;
    let anna = app.enroll(&m.pos_key, id_of(&program), "Anna").await;
    let res = app
        .post_json(
            &format!("/api/v1/programs/{}/members", id_of(&program)),
            &m.pos_key,
            &json!({"name": "Boris", "referral_code": anna["referral_code"]}),
        )
        .await;
    let boris = TestApp::expect_json(res, 201).await;
    let res = app
        .patch_json(
            &format!("/api/v1/members/{}", id_of(&anna)),
            &m.admin_key,
            &json!({"birth_date": "1990-05-17"}),
        )
        .await;
    TestApp::expect_json(res, 200).await;
    // 300.00 EUR: 3,000 points, Gold.
    let res = app.purchase(&m.pos_key, id_of(&anna), "big", 30_000).await;
    let purchase = TestApp::expect_json(res, 200).await;
    app.pos_ok(
        &format!(
            "/api/v1/members/{}/purchases/{}/refund",
            id_of(&anna),
            purchase["purchase_id"].as_str().unwrap()
        ),
        &m.pos_key,
        "refund-1",
        &json!({"amount": 10_000}),
    )
    .await;
    let card = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
    let gan = card["gan"].as_str().unwrap();
    let load = json!({"amount": 1000, "currency": "EUR"});
    app.pos_ok(
        &format!("/api/v1/gift-cards/{gan}/load"),
        &m.pos_key,
        "load-1",
        &load,
    )
    .await;
    let redeemed =
        TestApp::expect_json(app.redeem(&m.pos_key, gan, "redeem-1", 700).await, 200).await;
    app.pos_ok(
        &format!("/api/v1/gift-cards/{gan}/refund"),
        &m.pos_key,
        "refund-card",
        &json!({"activity_id": redeemed["activity_id"]}),
    )
    .await;
    app.pos_ok(
        &format!("/api/v1/gift-cards/{gan}/deactivate"),
        &m.admin_key,
        "off-1",
        &json!({}),
    )
    .await;
    let pass = app.pass_json_of(&boris).await;
    assert_eq!(
        app.register_device(&pass, "device-b", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
            .await,
        201
    );
    let res = app
        .client
        .delete(app.url(&crate::helpers::registration_path(&pass, "device-b")))
        .header("authorization", crate::helpers::apple_auth(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let kinds = [
        "member.created",
        "member.updated",
        "points.changed",
        "tier.changed",
        "purchase.recorded",
        "purchase.refunded",
        "gift_card.issued",
        "gift_card.loaded",
        "gift_card.redeemed",
        "gift_card.refunded",
        "gift_card.deactivated",
        "pass.installed",
        "pass.removed",
        "referral.joined",
        "referral.rewarded",
    ];
    let all = receiver.wait_for_kinds(&kinds).await;
    let secret = secret_of(&endpoint);
    assert!(all.iter().all(|r| r.verifies_with(&secret)));
    let of = |kind: &str| -> Vec<Value> {
        all.iter()
            .filter(|r| r.kind() == kind)
            .map(|r| r.json()["data"].clone())
            .collect()
    };
    // Each event after its cause, in order: the card's history as its ledger has it.
    let card_events: Vec<(String, Value)> = all
        .iter()
        .filter(|r| r.kind().starts_with("gift_card."))
        .map(|r| (r.kind(), r.json()["data"]["balance"].clone()))
        .collect();
    assert_eq!(
        card_events,
        [
            ("gift_card.issued".to_string(), json!(5000)),
            ("gift_card.loaded".to_string(), json!(5000)),
            ("gift_card.loaded".to_string(), json!(6000)),
            ("gift_card.redeemed".to_string(), json!(5300)),
            ("gift_card.refunded".to_string(), json!(6000)),
            ("gift_card.deactivated".to_string(), json!(6000)),
        ]
    );
    let tier = &of("tier.changed")[0];
    assert_eq!(
        (tier["member_id"].clone(), tier["to"].clone()),
        (anna["id"].clone(), json!("Gold"))
    );
    assert_eq!(of("purchase.refunded")[0]["refunded"], 10_000);
    assert_eq!(of("member.updated")[0]["id"], anna["id"]);
    let referral = &of("referral.rewarded")[0];
    assert_eq!(
        (
            referral["referrer_id"].clone(),
            referral["referee_id"].clone()
        ),
        (anna["id"].clone(), boris["id"].clone())
    );
    assert_eq!(of("pass.removed")[0]["member_id"], boris["id"]);
    let installs: Vec<usize> = ["pass.installed", "pass.removed"]
        .iter()
        .map(|k| all.iter().position(|r| r.kind() == *k).unwrap())
        .collect();
    assert!(installs[0] < installs[1]);
}

/// The real binary's `worker --once --at`, another process than the server's.
async fn worker_once(app: &TestApp, at: chrono::DateTime<Utc>) -> Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_passfold"));
    cmd.args(["worker", "--once", "--at", &at.to_rfc3339()])
        .env("DATABASE_URL", &app.db.url)
        .env("PASSFOLD_WEBHOOKS_ALLOW_PRIVATE", "1")
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run worker --once"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "worker --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

#[tokio::test]
async fn events_left_by_a_stopped_server_and_expiry_reminders_are_delivered_by_worker_once() {
    let app = private_app().await;
    // The server's delivery loops stop, as if it had been killed: what it wrote stays queued.
    app.stop_workers().await;
    let receiver = Receiver::start().await;
    let m = app.create_merchant("Stopped Server");
    let endpoint = register(
        &app,
        &m.admin_key,
        &receiver.url,
        &["member.created", "points.expiring"],
    )
    .await;
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 10,
                    "tiers": [{"name": "Bronze", "min_points": 0}], "welcome_points": 50,
                    "points_expire_days": 10, "expiry_reminders_days": [3]}),
        )
        .await;
    let program = TestApp::expect_json(res, 201).await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Gus").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        receiver.received().is_empty(),
        "the stopped server sends nothing"
    );

    // Eight days on, at noon UTC: the 3-day reminder of the welcome points is due.
    let at = Utc::now() + chrono::Duration::days(8);
    let at = at.date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let report = worker_once(&app, at).await;
    assert_eq!(report["delivered"]["webhook"], 2, "{report}");
    let delivered = receiver.wait_for("both", |d| d.len() == 2).await;
    assert_eq!(delivered[0].kind(), "member.created");
    let reminder = delivered[1].json();
    assert_eq!(reminder["type"], "points.expiring");
    assert_eq!(
        (
            reminder["data"]["member_id"].clone(),
            reminder["data"]["points"].clone()
        ),
        (member["id"].clone(), json!(50))
    );
    assert!(delivered
        .iter()
        .all(|r| r.verifies_with(&secret_of(&endpoint))));
    // Signed at the run's instant.
    assert_eq!(delivered[1].timestamp, at.timestamp().to_string());
    // Nothing left: a second run delivers nothing again.
    assert_eq!(worker_once(&app, at).await["delivered"]["webhook"], 0);
}
