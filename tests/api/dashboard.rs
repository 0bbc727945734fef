//! The dashboard's figures follow the ledgers: points credited and debited, points held,
//! and what the gift cards still owe, for this merchant only; a merchant too big to sum on
//! every view is shown the dashboard job's snapshot, with its time.

use crate::console_auth::{staff, Console};
use crate::helpers::{id_of, spawn_app, spawn_app_on, TestApp};
use diesel::RunQueryDsl;
use passfold::clock::Clock;
use passfold::domain::Role;
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

#[tokio::test]
async fn a_merchant_too_big_to_sum_on_every_view_sees_the_jobs_snapshot_with_its_time() {
    let clock = Clock::manual("2026-12-01T09:00:00Z".parse().unwrap());
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    // The test runs the dashboard job itself: the app's own first round of jobs, if it came
    // after the clock moved, would renew the snapshot under the test.
    app.stop_workers().await;
    let (m, _program, ann) = app.merchant_with_member("Big", "Ann").await;
    staff(&app, m.id, "owner@big.example", Role::Owner);
    let first = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    assert_eq!(
        first["live"], true,
        "a small merchant's figures are summed on every view"
    );
    assert_eq!(first["as_of"], "2026-12-01T09:00:00Z");
    let welcome = first["programs"][0]["points_issued"].as_i64().unwrap();

    // As if the sum had taken a second (a million members): the next views show it.
    let mut conn = app.db.connect();
    diesel::sql_query("UPDATE dashboard_snapshots SET took_ms = 1000")
        .execute(&mut conn)
        .unwrap();
    clock.advance(chrono::Duration::seconds(120));
    let bought =
        TestApp::expect_json(app.purchase(&m.pos_key, id_of(&ann), "p1", 1250).await, 200).await;
    let earned = bought["earned"].as_i64().unwrap();
    let shown = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    assert_eq!(shown["live"], false);
    assert_eq!(shown["as_of"], "2026-12-01T09:00:00Z");
    assert_eq!(shown["programs"][0]["points_issued"], welcome);
    let mut console = Console::signed_in(&app, "owner@big.example").await;
    let home = console.get("/console/").await;
    assert!(
        home.body.contains(r#"id="as-of""#) && home.body.contains("2026-12-01 09:00"),
        "{}",
        home.body
    );

    // The job renews it as of now; a second run at the same instant does nothing.
    let now = clock.now();
    assert_eq!(
        passfold::jobs::dashboard::refresh_due(&mut conn, now).unwrap(),
        1
    );
    assert_eq!(
        passfold::jobs::dashboard::refresh_due(&mut conn, now).unwrap(),
        0
    );
    let renewed = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    assert_eq!(renewed["as_of"], "2026-12-01T09:02:00Z");
    assert_eq!(
        renewed["programs"][0]["points_issued"],
        welcome + earned,
        "{renewed}"
    );
    // The real sum was quick, so the next view sums again.
    clock.advance(chrono::Duration::seconds(60));
    let live = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    assert_eq!(live["live"], true);
    assert_eq!(live["as_of"], "2026-12-01T09:03:00Z");

    // A snapshot no worker renewed for over an hour is summed again on a view.
    diesel::sql_query("UPDATE dashboard_snapshots SET took_ms = 1000")
        .execute(&mut conn)
        .unwrap();
    clock.advance(chrono::Duration::hours(2));
    let stale = app.get_json("/api/v1/dashboard", &m.admin_key).await;
    assert_eq!(stale["live"], true);
}
