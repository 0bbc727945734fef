//! Changing a program's rules says first what it will do, then moves the members whose
//! tier the new thresholds change (with a ledger row each) and updates only their cards;
//! renaming the program updates every card.

use crate::apns_mock::ApnsMock;
use crate::helpers::{assert_problem, id_of, spawn_app_with_apns, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

fn rules(name: &str, silver: i64) -> Value {
    json!({
        "name": name,
        "template": "loyalty-default",
        "currency": "EUR",
        "points_per_unit": 12,
        "tiers": [{"name": "Bronze", "min_points": 0}, {"name": "Silver", "min_points": silver}, {"name": "Gold", "min_points": 2000, "multiplier": 1.5}],
        "welcome_points": 50
    })
}

#[tokio::test]
async fn a_program_change_is_explained_then_moves_tiers_and_updates_their_cards() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let (m, program, ann) = app.merchant_with_member("Rules", "Ann").await;
    let bob = app.enroll(&m.pos_key, id_of(&program), "Bob").await;
    TestApp::expect_json(app.purchase(&m.pos_key, id_of(&ann), "p1", 5000).await, 200).await;
    assert_eq!(app.member(&m.pos_key, id_of(&ann)).await["tier"], "Silver");
    let mut tokens = Vec::new();
    for (i, member) in [&ann, &bob].into_iter().enumerate() {
        let pass = app.pass_json_of(member).await;
        let token = format!("{:064x}", 900 + i);
        assert_eq!(
            app.register_device(&pass, &format!("phone{i}"), &token)
                .await,
            201
        );
        tokens.push(token);
    }
    let path = format!("/api/v1/programs/{}", id_of(&program));
    // The purchase's own push may reach Ann's phone just after it registered: let it land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = |i: usize| {
        let mock = &mock;
        let token = tokens[i].clone();
        async move { mock.accepted_for(&token).await }
    };
    let (ann_before, bob_before) = (before(0).await, before(1).await);

    // Said before it is saved: Ann (550 lifetime points) falls back to Bronze.
    let res = app
        .put_json(
            &format!("{path}?dry_run=true"),
            &m.admin_key,
            &rules("Coffee Club", 600),
        )
        .await;
    let preview = TestApp::expect_json(res, 200).await;
    assert_eq!(preview["dry_run"], true);
    assert_eq!(
        preview["effects"]["tier_moves"],
        json!([{"from": "Silver", "to": "Bronze", "members": 1}])
    );
    assert_eq!(preview["effects"]["passes_to_update"], 1);
    assert_eq!(
        preview["effects"]["example_purchase_points"],
        json!([100, 120])
    );
    assert!(preview["effects"]["summary"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("from Silver to Bronze")));
    assert_eq!(app.member(&m.pos_key, id_of(&ann)).await["tier"], "Silver");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (before(0).await, before(1).await),
        (ann_before, bob_before),
        "a dry run pushes nothing"
    );

    // Saved: Ann moves, her card alone is pushed; earning follows the new rate.
    let res = app
        .put_json(&path, &m.admin_key, &rules("Coffee Club", 600))
        .await;
    let saved = TestApp::expect_json(res, 200).await;
    assert_eq!(saved["program"]["points_per_unit"], 12);
    assert_eq!(app.member(&m.pos_key, id_of(&ann)).await["tier"], "Bronze");
    assert!(mock.wait_for(&tokens[0], 1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        mock.accepted_for(&tokens[1]).await,
        0,
        "Bob's tier did not move"
    );
    let bought =
        TestApp::expect_json(app.purchase(&m.pos_key, id_of(&bob), "p2", 1000).await, 200).await;
    assert_eq!(bought["earned"], 120);
    assert!(
        mock.wait_for(&tokens[1], bob_before + 1, Duration::from_secs(5))
            .await
    );

    // Renamed: every card shows the name, so every card is pushed.
    let res = app
        .put_json(&path, &m.admin_key, &rules("Bean Club", 600))
        .await;
    let renamed = TestApp::expect_json(res, 200).await;
    assert_eq!(renamed["effects"]["passes_to_update"], 2);
    assert!(
        mock.wait_for(&tokens[1], bob_before + 2, Duration::from_secs(5))
            .await
    );

    // The currency holds the ledger: it cannot change; nor can another merchant's program.
    let mut other_currency = rules("Bean Club", 600);
    other_currency["currency"] = json!("USD");
    assert_problem(
        app.put_json(&path, &m.admin_key, &other_currency).await,
        422,
        "validation",
    )
    .await;
    let stranger = app.create_merchant("Stranger");
    assert_problem(
        app.put_json(&path, &stranger.admin_key, &rules("Mine", 1))
            .await,
        404,
        "not-found",
    )
    .await;
}
