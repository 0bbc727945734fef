//! Bounds on what anyone may write without a key, the balance check that an attacker
//! cannot use to lock an owner out, and what a pos key may do in one request (issue 12).

use crate::helpers::{
    apple_auth, assert_problem, id_of, registration_path, spawn_app_with, TestApp,
};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::{json, Value};

async fn proxied_app() -> TestApp {
    spawn_app_with(|s| s.trust_forwarded = true).await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut app.db.connect())
        .expect("count")
        .n
}

async fn stats(app: &TestApp, key: &str, program: &Value) -> Value {
    app.get_json(
        &format!(
            "/api/v1/programs/{}/referral-stats",
            program["id"].as_str().unwrap()
        ),
        key,
    )
    .await
}

#[tokio::test]
async fn a_burst_of_cookieless_opens_is_counted_only_up_to_the_limit() {
    // More at once than the in-flight limit per address allows (that limit answers 429).
    let app = spawn_app_with(|s| {
        s.trust_forwarded = true;
        s.limits.requests_per_client = 200;
    })
    .await;
    let m = app.create_merchant("Open Shop");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let join_url = program["join_url"].as_str().unwrap().to_string();
    let path = join_url.trim_start_matches(&app.address).to_string();

    // 75 cookie-less opens at once from one address: every page is shown, 60 are counted.
    let opens = (0..75).map(|_| {
        let (client, url) = (app.client.clone(), app.url(&path));
        tokio::spawn(async move {
            let res = client
                .get(url)
                .header("x-forwarded-for", "198.51.100.1")
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.headers().contains_key("set-cookie"),
            )
        })
    });
    for r in futures_util::future::join_all(opens).await {
        assert_eq!(r.unwrap(), (200, true));
    }
    assert_eq!(
        stats(&app, &m.admin_key, &program).await["join_link_opens"],
        60
    );

    // Someone at another address still counts; and no address is stored in clear.
    let res = app
        .client
        .get(app.url(&path))
        .header("x-forwarded-for", "198.51.100.2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        stats(&app, &m.admin_key, &program).await["join_link_opens"],
        61
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM link_opens WHERE client IS NULL \
             OR position('198.51.100'::bytea IN client) > 0"
        ),
        0
    );
}

async fn check_balance(app: &TestApp, from: &str, gan: &str, pin: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/public/gift-cards/balance"))
        .header("x-forwarded-for", from)
        .json(&json!({"gan": gan, "pin": pin}))
        .send()
        .await
        .unwrap()
}

fn wrong_pin(pin: &str) -> &'static str {
    if pin == "00000000" {
        "11111111"
    } else {
        "00000000"
    }
}

#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_the_owner_out_and_refusals_are_not_failures() {
    let app = proxied_app().await;
    let m = app.create_merchant("Gift Shop");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 2500).await;
    let (gan, pin) = (card["gan"].as_str().unwrap(), card["pin"].as_str().unwrap());
    let failures = format!("SELECT count(*) AS n FROM pin_failures WHERE gan = '{gan}'");

    // Address A guesses: five wrong PINs are judged, then A is refused for this card.
    for _ in 0..5 {
        assert_problem(
            check_balance(&app, "192.0.2.1", gan, wrong_pin(pin)).await,
            404,
            "not-found",
        )
        .await;
    }
    for _ in 0..10 {
        let res = check_balance(&app, "192.0.2.1", gan, wrong_pin(pin)).await;
        assert_eq!(res.headers()["retry-after"], "900");
        assert_problem(res, 429, "rate-limited").await;
    }
    // Even the right PIN from A waits, but the refusals were not recorded as failures.
    assert_problem(
        check_balance(&app, "192.0.2.1", gan, pin).await,
        429,
        "rate-limited",
    )
    .await;
    assert_eq!(count(&app, &failures), 5);

    // The owner, at address B, is not locked out.
    let ok = TestApp::expect_json(check_balance(&app, "192.0.2.2", gan, pin).await, 200).await;
    assert_eq!(
        ok,
        json!({"balance": 2500, "currency": "EUR", "state": "active"})
    );
    assert_eq!(count(&app, &failures), 5);

    // Many addresses together reach the card's ceiling of 50 wrong PINs; then the card
    // waits for everyone.
    for i in 0..9 {
        for _ in 0..5 {
            let res =
                check_balance(&app, &format!("192.0.2.{}", 10 + i), gan, wrong_pin(pin)).await;
            assert_eq!(res.status(), 404);
        }
    }
    assert_eq!(count(&app, &failures), 50);
    assert_problem(
        check_balance(&app, "192.0.2.99", gan, pin).await,
        429,
        "rate-limited",
    )
    .await;
    assert_eq!(count(&app, &failures), 50);
}

#[tokio::test]
async fn unknown_and_known_card_numbers_answer_alike() {
    let app = proxied_app().await;
    let m = app.create_merchant("Gift Shop");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 2500).await;
    let (gan, pin) = (card["gan"].as_str().unwrap(), card["pin"].as_str().unwrap());
    let unknown = loop {
        let n = passfold::domain::CardNumber::generate().to_string();
        if n != gan {
            break n;
        }
    };
    // Same status and body for a wrong PIN on a real card and any PIN on an unknown one,
    // from the first attempt until the lock, and the same lock.
    let answer = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let retry = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = res.json().await.unwrap();
        (status, retry, body)
    };
    for i in 0..7 {
        let known = answer(check_balance(&app, "192.0.2.1", gan, wrong_pin(pin)).await).await;
        let other = answer(check_balance(&app, "192.0.2.2", &unknown, wrong_pin(pin)).await).await;
        assert_eq!(known, other, "attempt {i}");
        assert_eq!(known.0, if i < 5 { 404 } else { 429 }, "attempt {i}");
    }
}

#[tokio::test]
async fn one_address_guessing_across_cards_is_stopped_after_twenty() {
    let app = proxied_app().await;
    for i in 0..20 {
        let gan = passfold::domain::CardNumber::generate().to_string();
        let res = check_balance(&app, "192.0.2.7", &gan, "12345678").await;
        assert_eq!(res.status(), 404, "guess {i}");
    }
    let gan = passfold::domain::CardNumber::generate().to_string();
    assert_problem(
        check_balance(&app, "192.0.2.7", &gan, "12345678").await,
        429,
        "rate-limited",
    )
    .await;
    // Another address is not affected.
    assert_eq!(
        check_balance(&app, "192.0.2.8", &gan, "12345678")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_pos_key_is_bound_by_the_programs_limits_and_an_admin_key_is_not() {
    let app = proxied_app().await;
    let (m, program, member) = app.merchant_with_member("Till Shop", "Ann Lee").await;
    assert_eq!(program["pos_max_purchase"], 100_000);
    assert_eq!(program["pos_max_points_adjustment"], 1_000);
    let id = id_of(&member);
    let purchases = format!("/api/v1/members/{id}/purchases");
    let points = format!("/api/v1/members/{id}/points");

    let big = json!({"amount": 100_001, "currency": "EUR"});
    let body = assert_problem(
        app.pos(&purchases, &m.pos_key, "t-1", &big).await,
        403,
        "forbidden",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("pos_max_purchase") && detail.contains("admin key"),
        "{detail}"
    );
    // The refusal was of the key, not of the request: a manager sends it again, same key.
    let done = app.pos_ok(&purchases, &m.admin_key, "t-1", &big).await;
    assert_eq!(done["earned"], 10_000);
    let ok = json!({"amount": 100_000, "currency": "EUR"});
    app.pos_ok(&purchases, &m.pos_key, "t-2", &ok).await;

    for delta in [1_001, -1_001, 1_000_000_000_000i64] {
        let body = assert_problem(
            app.pos(
                &points,
                &m.pos_key,
                &format!("a{delta}"),
                &json!({"delta": delta, "reason": "goodwill"}),
            )
            .await,
            403,
            "forbidden",
        )
        .await;
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("pos_max_points_adjustment"));
    }
    let before = app.member_points(&m.pos_key, id).await;
    let goodwill = json!({"delta": 1_000, "reason": "goodwill"});
    app.pos_ok(&points, &m.pos_key, "a-ok", &goodwill).await;
    let migration = json!({"delta": 50_000, "reason": "migration"});
    app.pos_ok(&points, &m.admin_key, "a-admin", &migration)
        .await;
    assert_eq!(app.member_points(&m.pos_key, id).await, before + 51_000);

    // Limits of a program's own, shown in its JSON; bad ones listed.
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Small", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 1, "pos_max_purchase": 500, "pos_max_points_adjustment": 0}),
        )
        .await;
    let small = TestApp::expect_json(res, 201).await;
    assert_eq!(small["pos_max_purchase"], 500);
    assert_eq!(small["pos_max_points_adjustment"], 0);
    let fetched = app
        .get_json(&format!("/api/v1/programs/{}", id_of(&small)), &m.admin_key)
        .await;
    assert_eq!(fetched["pos_max_purchase"], 500);
    let member = app.enroll(&m.pos_key, id_of(&small), "Bo").await;
    assert_problem(
        app.purchase(&m.pos_key, id_of(&member), "s-1", 501).await,
        403,
        "forbidden",
    )
    .await;
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Bad", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 1, "pos_max_purchase": -1}),
        )
        .await;
    let body = assert_problem(res, 422, "validation").await;
    assert!(body.to_string().contains("/pos_max_purchase"), "{body}");
}

#[tokio::test]
async fn a_pass_is_registered_on_at_most_twenty_devices() {
    let app = proxied_app().await;
    let (_, _, member) = app.merchant_with_member("Device Shop", "Ann Lee").await;
    let pass = app.pass_json_of(&member).await;
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    // Twenty devices at once: all registered.
    let devices: Vec<String> = (0..20).map(|i| format!("device{i}")).collect();
    let all = devices.iter().map(|d| app.register_device(&pass, d, token));
    assert!(futures_util::future::join_all(all)
        .await
        .iter()
        .all(|s| *s == 201));
    assert_eq!(app.register_device(&pass, "device3", token).await, 200);

    // The 21st is refused with a reason, and nothing of it is kept.
    let res = app.post_registration(&pass, "device20", token).await;
    let body = assert_problem(res, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("20 devices"));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM devices WHERE device_library_identifier = 'device20'"
        ),
        0
    );

    // Once a device lets go, another may register.
    let res = app
        .client
        .delete(app.url(&registration_path(&pass, "device0")))
        .header("authorization", apple_auth(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.register_device(&pass, "device20", token).await, 201);
}

async fn send_logs(app: &TestApp, from: &str, n: usize) -> u16 {
    let logs: Vec<String> = (0..n)
        .map(|i| format!("[2026-11-30] message {i}\n\"forged\" line\u{202e}"))
        .collect();
    app.client
        .post(app.url("/apple/v1/log"))
        .header("x-forwarded-for", from)
        .json(&json!({ "logs": logs }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn device_logs_are_bounded_per_address_and_overall_even_in_parallel() {
    let app = proxied_app().await;
    // Ten requests of twenty messages at once from one address: exactly sixty kept.
    let burst = (0..10).map(|_| send_logs(&app, "203.0.113.1", 20));
    let statuses = futures_util::future::join_all(burst).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM device_logs WHERE client = '203.0.113.1'"
        ),
        60
    );
    // Control characters are not stored.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM device_logs WHERE message ~ '[\\n\\r]'"
        ),
        0
    );

    // From many addresses, no more than a thousand in the window.
    for i in 0..17 {
        for _ in 0..3 {
            send_logs(&app, &format!("203.0.113.{}", 10 + i), 20).await;
        }
    }
    assert_eq!(count(&app, "SELECT count(*) AS n FROM device_logs"), 1_000);
    assert_eq!(send_logs(&app, "203.0.113.200", 1).await, 429);
}

#[tokio::test]
async fn housekeeping_prunes_old_link_opens_and_device_logs() {
    let app = proxied_app().await;
    let m = app.create_merchant("Old Shop");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let mut conn = app.db.connect();
    conn.batch_execute(&format!(
        "INSERT INTO link_opens (merchant_id, program_id, visitor, created_at) VALUES
           ('{m}', '{id}', 'a', now() - interval '91 days'), ('{m}', '{id}', 'b', now() - interval '89 days');
         INSERT INTO device_logs (client, message, created_at) VALUES
           ('x', 'old', now() - interval '8 days'), ('x', 'recent', now() - interval '6 days')",
        id = program["id"].as_str().unwrap(),
        m = m.id,
    ))
    .unwrap();
    let pruned = passfold::jobs::prune::prune(&mut conn, chrono::Utc::now(), keep()).unwrap();
    assert_eq!((pruned.opens, pruned.logs), (1, 1));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM link_opens WHERE visitor = 'b'"
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM device_logs WHERE message = 'recent'"
        ),
        1
    );
    // Running it again at the same moment changes nothing.
    let again = passfold::jobs::prune::prune(&mut conn, chrono::Utc::now(), keep()).unwrap();
    assert_eq!((again.opens, again.logs), (0, 0));
}

fn keep() -> passfold::jobs::prune::Retention {
    passfold::jobs::prune::Retention {
        idempotency_hours: 48,
        sessions: passfold::staff::Lifetimes::default(),
    }
}
