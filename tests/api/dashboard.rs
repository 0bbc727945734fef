//! The dashboard's figures follow the ledgers: points credited and debited, points held,
//! and what the gift cards still owe, for this merchant only.

use crate::helpers::{id_of, spawn_app, TestApp};
use serde_json::json;

#[tokio::test]
async fn the_dashboard_sums_the_ledgers_of_this_merchant_only() {
    let app = spawn_app().await;
    let (m, program, ann) = app.merchant_with_member("Figures", "Ann").await;
    let bob = app.enroll(&m.pos_key, id_of(&program), "Bob").await;
    let bought =
        TestApp::expect_json(app.purchase(&m.pos_key, id_of(&ann), "p1", 1250).await, 200).await;
    let earned = bought["earned"].as_i64().unwrap();
    assert!(earned > 0);
    app.pos_ok(
        &format!("/api/v1/members/{}/points", id_of(&bob)),
        &m.admin_key,
        "a1",
        &json!({"delta": -20, "reason": "correction"}),
    )
    .await;
    let first = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
    let second = app.issue_gift_card(&m.admin_key, "EUR", 3000).await;
    app.issue_gift_card(&m.admin_key, "USD", 700).await;
    TestApp::expect_json(
        app.redeem(&m.pos_key, first["gan"].as_str().unwrap(), "r1", 1000)
            .await,
        200,
    )
    .await;
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/gift-cards/{}/deactivate",
            second["gan"].as_str().unwrap()
        )))
        .bearer_auth(&m.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Another merchant's members and cards count only for it.
    let (other, _, _) = app.merchant_with_member("Elsewhere", "Eve").await;
    app.issue_gift_card(&other.admin_key, "EUR", 99_999).await;

    let figures = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    let programs = figures["programs"].as_array().unwrap();
    assert_eq!(programs.len(), 1);
    let p = &programs[0];
    let welcome = 2 * 50;
    assert_eq!(p["members"], 2);
    assert_eq!(p["points_issued"], welcome + earned);
    assert_eq!(p["points_debited"], 20);
    assert_eq!(p["points_outstanding"], welcome + earned - 20);
    assert_eq!(p["apple_installs"], 0);
    assert_eq!(
        figures["gift_card_liability"],
        json!([
            {"currency": "EUR", "cards": 1, "balance": 4000},
            {"currency": "USD", "cards": 1, "balance": 700},
        ])
    );
    let res = app.get_with_key("/api/v1/dashboard", &m.pos_key).await;
    assert_eq!(res.status(), 403, "figures are for admin keys");
}
