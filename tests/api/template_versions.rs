//! Drafts change no card; publishing one makes the next version, pushes every registered
//! device and is recorded with its author; a rollback republishes an earlier version; a
//! draft started before someone else's publish is refused.

use crate::apns_mock::ApnsMock;
use crate::helpers::{assert_problem, spawn_app_with_apns, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const PATH: &str = "/api/v1/templates/loyalty-default";

async fn publish(app: &TestApp, key: &str) -> reqwest::Response {
    app.post_json(&format!("{PATH}/publish"), key, &json!({}))
        .await
}

async fn save_draft(app: &TestApp, key: &str, doc: &Value) -> Value {
    let res = app
        .client
        .put(app.url(&format!("{PATH}/draft")))
        .bearer_auth(key)
        .json(&json!({ "template": doc }))
        .send()
        .await
        .unwrap();
    TestApp::expect_json(res, 200).await
}

#[tokio::test]
async fn a_draft_changes_no_card_until_published_and_every_version_is_kept() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let (m, _program, member) = app.merchant_with_member("Drafts", "Ann").await;
    let pass = app.pass_json_of(&member).await;
    let original_colour = pass["backgroundColor"].clone();
    let token = format!("{:064x}", 77);
    assert_eq!(app.register_device(&pass, "phone", &token).await, 201);

    // A draft with a new colour and a field label: saved, reported valid, no card changes.
    let working = app.get_json(&format!("{PATH}/draft"), &m.admin_key).await;
    assert_eq!(working["is_draft"], false);
    let v1 = working["current_version"].as_i64().unwrap();
    let mut doc = working["template"].clone();
    doc["colors"]["background"] = json!("#0a3d62");
    let saved = save_draft(&app, &m.admin_key, &doc).await;
    assert_eq!(saved["is_draft"], true);
    assert_eq!(saved["based_on"], v1);
    assert_eq!(saved["problems"], json!([]));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(mock.accepted_for(&token).await, 0, "a draft pushes nothing");
    assert_eq!(
        app.pass_json_of(&member).await["backgroundColor"],
        original_colour
    );

    // An invalid draft is still saved, with the validator's problem at its pointer.
    let mut broken = doc.clone();
    broken["colors"]["background"] = json!("not a colour");
    let saved = save_draft(&app, &m.admin_key, &broken).await;
    let problems = saved["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["pointer"] == "/colors/background"),
        "{problems:?}"
    );
    assert_problem(publish(&app, &m.admin_key).await, 422, "validation").await;

    // Published: the next version, its reach counted, the device pushed, the pass changed.
    save_draft(&app, &m.admin_key, &doc).await;
    let published = TestApp::expect_json(publish(&app, &m.admin_key).await, 200).await;
    assert_eq!(published["version"], v1 + 1);
    assert_eq!(published["reach"]["passes"], 1);
    assert_eq!(published["reach"]["apple_devices"], 1);
    assert!(mock.wait_for(&token, 1, Duration::from_secs(5)).await);
    assert_eq!(
        app.pass_json_of(&member).await["backgroundColor"],
        "rgb(10, 61, 98)"
    );
    let working = app.get_json(&format!("{PATH}/draft"), &m.admin_key).await;
    assert_eq!(
        working["is_draft"], false,
        "the draft is gone once published"
    );
    assert_problem(publish(&app, &m.admin_key).await, 409, "conflict").await;

    // A rollback to the first version is itself a publish.
    let restored = TestApp::expect_json(
        app.post_json(
            &format!("{PATH}/versions/{v1}/restore"),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(restored["version"], v1 + 2);
    assert_eq!(restored["restored_from"], v1);
    assert!(mock.wait_for(&token, 2, Duration::from_secs(5)).await);
    assert_eq!(
        app.pass_json_of(&member).await["backgroundColor"],
        original_colour
    );

    // History, newest first, one page at a time; each publish names its key.
    let page = app
        .get_json(&format!("{PATH}/versions?limit=2"), &m.admin_key)
        .await;
    let versions = page["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], v1 + 2);
    assert_eq!(versions[0]["restored_from"], v1);
    assert_eq!(versions[0]["published_by"], "api_key");
    assert_eq!(versions[1]["template"]["colors"]["background"], "#0a3d62");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get_json(
            &format!("{PATH}/versions?limit=2&cursor={cursor}"),
            &m.admin_key,
        )
        .await;
    let rest = rest["versions"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["version"], v1);
    assert_eq!(rest[0]["published_by"], Value::Null, "the example itself");
    for bad in ["nonsense", "dg"] {
        let res = app
            .get_with_key(&format!("{PATH}/versions?cursor={bad}"), &m.admin_key)
            .await;
        assert_problem(res, 422, "validation").await;
    }
    let reach = app.get_json(&format!("{PATH}/reach"), &m.admin_key).await;
    assert_eq!(reach["passes"], 1);
    assert!(reach["queued"].is_object());
}

#[tokio::test]
async fn a_draft_started_before_another_publish_is_refused() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Two designers");
    app.create_program(&m.admin_key, "loyalty-default").await;
    let working = app.get_json(&format!("{PATH}/draft"), &m.admin_key).await;
    let mut doc = working["template"].clone();
    doc["colors"]["background"] = json!("#222222");
    save_draft(&app, &m.admin_key, &doc).await;
    // Someone else publishes directly meanwhile.
    let other = app
        .recolor_template(&m.admin_key, "loyalty-default", "#333333")
        .await;
    let res = publish(&app, &m.admin_key).await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["current_version"], other["version"]);
    // Discarded, the draft is gone; another merchant never sees this one's drafts.
    let res = app
        .delete_with_key(&format!("{PATH}/draft"), &m.admin_key)
        .await;
    assert_eq!(res.status(), 204);
    let working = app.get_json(&format!("{PATH}/draft"), &m.admin_key).await;
    assert_eq!(working["is_draft"], false);
    assert_eq!(working["template"]["colors"]["background"], "#333333");
    let stranger = app.create_merchant("Stranger");
    save_draft(&app, &m.admin_key, &doc).await;
    let theirs = app
        .get_json(&format!("{PATH}/draft"), &stranger.admin_key)
        .await;
    assert_eq!(theirs["is_draft"], false);
}
