//! The POS ledger: exactly once under concurrent tills and retries, never below zero.

use crate::helpers::{assert_problem, id_of, replayed, spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[tokio::test]
async fn a_storm_of_tills_with_retries_never_double_spends() {
    // Every till here shares the loopback address: lift the in-flight limit per address,
    // which would otherwise turn a slow moment into 429s and closed connections.
    let app = Arc::new(spawn_app_with(|s| s.limits.requests_per_client = 10_000).await);
    let m = Arc::new(app.create_merchant("Storm"));
    let initial = 20_000;
    let mut gans = Vec::new();
    for _ in 0..4 {
        gans.push(
            app.issue_gift_card(&m.admin_key, "EUR", initial).await["gan"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let gans = Arc::new(gans);

    let mut tills = Vec::new();
    for till in 0..32 {
        let (app, m, gans) = (app.clone(), m.clone(), gans.clone());
        tills.push(tokio::spawn(async move {
            let gan = &gans[till % gans.len()];
            let path = format!("/api/v1/gift-cards/{gan}/redeem");
            let mut successes: Vec<(String, i64)> = Vec::new();
            for n in 0..40 {
                let amount = 1 + ((till * 7919 + n * 104_729) % 150) as i64;
                let key = format!("till-{till}-sale-{n}");
                let body = json!({"amount": amount, "currency": "EUR"});
                // Every request sent twice with the same key, at the same time.
                let (a, b) = tokio::join!(
                    app.pos(&path, &m.pos_key, &key, &body),
                    app.pos(&path, &m.pos_key, &key, &body)
                );
                assert_eq!(
                    a.status(),
                    b.status(),
                    "both answers of {key} have one status"
                );
                assert_eq!(
                    u8::from(replayed(&a)) + u8::from(replayed(&b)),
                    1,
                    "exactly one of {key} is a replay"
                );
                let status = a.status().as_u16();
                let (ta, tb) = (a.text().await.unwrap(), b.text().await.unwrap());
                assert_eq!(ta, tb, "a replay answers exactly as the first did");
                let body: Value = serde_json::from_str(&ta).unwrap();
                match status {
                    200 => {
                        assert_eq!(body["amount"], amount);
                        assert!(body["balance"].as_i64().unwrap() >= 0);
                        successes.push((body["activity_id"].as_str().unwrap().to_string(), amount));
                    }
                    409 => assert!(
                        body["type"]
                            .as_str()
                            .unwrap()
                            .ends_with("/insufficient-funds"),
                        "{body}"
                    ),
                    other => panic!("unexpected {other}: {body}"),
                }
                // Now and then: the same key with another body, a wrong currency, a wrong key.
                if n % 10 == 3 {
                    let res = app
                        .pos(
                            &path,
                            &m.pos_key,
                            &key,
                            &json!({"amount": amount + 1, "currency": "EUR"}),
                        )
                        .await;
                    assert_problem(res, 422, "idempotency-key-reuse").await;
                    let res = app
                        .pos(
                            &path,
                            &m.pos_key,
                            &format!("{key}-usd"),
                            &json!({"amount": 1, "currency": "USD"}),
                        )
                        .await;
                    assert_problem(res, 422, "currency-mismatch").await;
                    let res = app
                        .pos(
                            &path,
                            "pf_pos_wrongwrongwrongwrongwrongwrong1",
                            &format!("{key}-x"),
                            &body,
                        )
                        .await;
                    assert_problem(res, 401, "unauthorized").await;
                }
            }
            (gan.clone(), successes)
        }));
    }
    let mut by_card: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for t in tills {
        let (gan, successes) = t.await.expect("till task");
        by_card.entry(gan).or_default().extend(successes);
    }
    for gan in gans.iter() {
        let successes = &by_card[gan];
        let spent: i64 = successes.iter().map(|(_, a)| a).sum();
        let card = app
            .get_json(&format!("/api/v1/gift-cards/{gan}"), &m.pos_key)
            .await;
        assert_eq!(
            card["balance"].as_i64().unwrap(),
            initial - spent,
            "balance of {gan}"
        );
        let activities = app
            .get_json(&format!("/api/v1/gift-cards/{gan}/activities"), &m.pos_key)
            .await;
        let activities = activities["activities"].as_array().unwrap();
        let redeems: HashSet<String> = activities
            .iter()
            .filter(|a| a["type"] == "redeem")
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        let answered: HashSet<String> = successes.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(
            redeems, answered,
            "activities match the successful answers one for one"
        );
        assert!(activities
            .iter()
            .all(|a| a["balance_after"].as_i64().unwrap() >= 0));
        assert_eq!(
            activities
                .iter()
                .map(|a| a["amount"].as_i64().unwrap())
                .sum::<i64>(),
            initial - spent
        );
    }
    let report = app.verify_ledger(&m.admin_key).await;
    assert_eq!(report["gift_cards_checked"], 4);
}

#[tokio::test]
async fn refunds_deactivation_loads_and_the_pass_follow_the_rules() {
    let app = spawn_app().await;
    let m = app.create_merchant("Rules");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
    let gan = card["gan"].as_str().unwrap();
    let path = |op: &str| format!("/api/v1/gift-cards/{gan}/{op}");

    // A POS mutation without a key is refused before anything happens.
    let res = app
        .post_json(
            &path("redeem"),
            &m.pos_key,
            &json!({"amount": 100, "currency": "EUR"}),
        )
        .await;
    assert_problem(res, 400, "validation").await;

    let r = app
        .pos_ok(
            &path("redeem"),
            &m.pos_key,
            "r1",
            &json!({"amount": 1250, "currency": "EUR"}),
        )
        .await;
    assert_eq!(r["balance"], 3750);
    let redeem_id = r["activity_id"].as_str().unwrap().to_string();
    // The pass shows the new balance.
    let pass = app.pass_json_of(&card).await;
    assert_eq!(pass["storeCard"]["headerFields"][0]["value"], 37.5);

    // Refund part, then the rest; never more than was redeemed.
    let f = app
        .pos_ok(
            &path("refund"),
            &m.pos_key,
            "f1",
            &json!({"activity_id": redeem_id, "amount": 250}),
        )
        .await;
    assert_eq!(f["balance"], 4000);
    let res = app
        .pos(
            &path("refund"),
            &m.pos_key,
            "f2",
            &json!({"activity_id": redeem_id, "amount": 1001}),
        )
        .await;
    let body = assert_problem(res, 422, "validation").await;
    assert_eq!(body["refundable"], 1000);
    let f = app
        .pos_ok(
            &path("refund"),
            &m.pos_key,
            "f3",
            &json!({"activity_id": redeem_id}),
        )
        .await;
    assert_eq!(f["amount"], 1000);
    assert_eq!(f["balance"], 5000);
    let res = app
        .pos(
            &path("refund"),
            &m.pos_key,
            "f4",
            &json!({"activity_id": redeem_id, "amount": 1}),
        )
        .await;
    assert_problem(res, 422, "validation").await;

    // Partial redemption takes what is there and says so; then nothing is left.
    let p = app
        .pos_ok(
            &path("redeem"),
            &m.pos_key,
            "r2",
            &json!({"amount": 9999, "currency": "EUR", "allow_partial": true}),
        )
        .await;
    assert_eq!(
        (p["amount"].as_i64(), p["balance"].as_i64()),
        (Some(5000), Some(0))
    );
    let res = app
        .pos(
            &path("redeem"),
            &m.pos_key,
            "r3",
            &json!({"amount": 1, "currency": "EUR"}),
        )
        .await;
    assert_problem(res, 409, "insufficient-funds").await;

    // Loads, and the maximum balance.
    let l = app
        .pos_ok(
            &path("load"),
            &m.pos_key,
            "l1",
            &json!({"amount": 700, "currency": "EUR"}),
        )
        .await;
    assert_eq!(l["balance"], 700);
    let res = app
        .pos(
            &path("load"),
            &m.pos_key,
            "l2",
            &json!({"amount": 100_000_000, "currency": "EUR"}),
        )
        .await;
    assert_problem(res, 422, "validation").await;
    for bad in [
        json!({"amount": 0, "currency": "EUR"}),
        json!({"amount": -5, "currency": "EUR"}),
        json!({"amount": 5, "currency": "EURO"}),
    ] {
        let res = app
            .pos(&path("load"), &m.pos_key, &format!("bad-{bad}"), &bad)
            .await;
        assert_problem(res, 422, "validation").await;
    }
    // Adjustments are for admins.
    let res = app
        .pos(
            &path("adjust"),
            &m.pos_key,
            "a1",
            &json!({"amount": -100, "currency": "EUR", "reason": "till count"}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let a = app
        .pos_ok(
            &path("adjust"),
            &m.admin_key,
            "a1",
            &json!({"amount": -100, "currency": "EUR", "reason": "till count"}),
        )
        .await;
    assert_eq!(a["balance"], 600);

    // A deactivated card refuses everything but reads, and its pass is voided.
    let d = TestApp::expect_json(
        app.post_json(&path("deactivate"), &m.admin_key, &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(d["state"], "deactivated");
    for (op, body) in [
        ("redeem", json!({"amount": 1, "currency": "EUR"})),
        ("load", json!({"amount": 1, "currency": "EUR"})),
        ("refund", json!({"activity_id": redeem_id})),
    ] {
        let res = app
            .pos(&path(op), &m.pos_key, &format!("after-{op}"), &body)
            .await;
        assert_problem(res, 409, "card-inactive").await;
    }
    let read = app
        .get_json(&format!("/api/v1/gift-cards/{gan}"), &m.pos_key)
        .await;
    assert_eq!(
        (read["balance"].as_i64(), read["state"].as_str()),
        (Some(600), Some("deactivated"))
    );
    assert_eq!(app.pass_json_of(&card).await["voided"], true);

    let activities = app.get_json(&path("activities"), &m.pos_key).await;
    let kinds: Vec<&str> = activities["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "activate",
            "redeem",
            "refund",
            "refund",
            "redeem",
            "load",
            "adjust",
            "deactivate"
        ]
    );
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn purchases_earn_points_move_tiers_and_points_never_go_below_zero() {
    let app = spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Loyal", "Ann Lee").await;
    let id = id_of(&member);
    let purchases = format!("/api/v1/members/{id}/purchases");

    // 45.99 EUR at 10 points per euro: 459 points (rounded down), 509 with the welcome 50: Silver.
    let p = app
        .pos_ok(
            &purchases,
            &m.pos_key,
            "p1",
            &json!({"amount": 4599, "currency": "EUR"}),
        )
        .await;
    assert_eq!(
        (
            p["earned"].as_i64(),
            p["points"].as_i64(),
            p["tier"].as_str()
        ),
        (Some(459), Some(509), Some("Silver"))
    );
    let again = app
        .pos(
            &purchases,
            &m.pos_key,
            "p1",
            &json!({"amount": 4599, "currency": "EUR"}),
        )
        .await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(TestApp::expect_json(again, 200).await, p);
    let res = app
        .pos(
            &purchases,
            &m.pos_key,
            "p2",
            &json!({"amount": 100, "currency": "USD"}),
        )
        .await;
    assert_problem(res, 422, "currency-mismatch").await;

    let points = format!("/api/v1/members/{id}/points");
    let res = app
        .pos(
            &points,
            &m.pos_key,
            "x1",
            &json!({"delta": -510, "reason": "reward"}),
        )
        .await;
    let body = assert_problem(res, 409, "insufficient-funds").await;
    assert_eq!(body["points"], 509);
    let x = app
        .pos_ok(
            &points,
            &m.pos_key,
            "x2",
            &json!({"delta": -500, "reason": "free coffee"}),
        )
        .await;
    assert_eq!(
        (x["points"].as_i64(), x["tier"].as_str()),
        (Some(9), Some("Silver")),
        "spending keeps the tier"
    );

    // Gold earns 1.5x: reach Gold with a grant, then buy.
    app.pos_ok(
        &points,
        &m.admin_key,
        "x3",
        &json!({"delta": 1500, "reason": "anniversary"}),
    )
    .await;
    let p = app
        .pos_ok(
            &purchases,
            &m.pos_key,
            "p3",
            &json!({"amount": 1000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(
        (p["earned"].as_i64(), p["tier"].as_str()),
        (Some(150), Some("Gold"))
    );

    let pass = app.pass_json_of(&member).await;
    assert_eq!(pass["storeCard"]["headerFields"][0]["value"], 1659);
    assert_eq!(pass["storeCard"]["primaryFields"][0]["value"], "Gold");
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn customers_check_balances_with_their_pin_and_guessing_is_stopped() {
    let app = spawn_app().await;
    let m = app.create_merchant("Public");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 2500).await;
    let (gan, pin) = (card["gan"].as_str().unwrap(), card["pin"].as_str().unwrap());
    let check = |pin: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/public/gift-cards/balance"))
                .json(&json!({"gan": gan, "pin": pin}))
                .send()
                .await
                .unwrap()
        }
    };
    let ok = TestApp::expect_json(check(pin.to_string()).await, 200).await;
    assert_eq!(
        ok,
        json!({"balance": 2500, "currency": "EUR", "state": "active"})
    );

    let wrong = if pin == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for _ in 0..5 {
        assert_problem(check(wrong.to_string()).await, 404, "not-found").await;
    }
    // Locked now, even with the right PIN, and the answer says when to come back.
    let res = check(pin.to_string()).await;
    assert!(res.headers().get("retry-after").is_some());
    assert_problem(res, 429, "rate-limited").await;

    // Forty guesses at once on another card: still no more than five are judged.
    let other = app.issue_gift_card(&m.admin_key, "EUR", 100).await;
    let other_gan = other["gan"].as_str().unwrap().to_string();
    let guesses = (0..40).map(|i| {
        let (client, url, gan) = (
            app.client.clone(),
            app.url("/api/v1/public/gift-cards/balance"),
            other_gan.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"gan": gan, "pin": format!("{:08}", 10_000_000 + i)}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let judged = statuses.iter().filter(|s| **s == 404).count();
    assert!(judged <= 5, "{judged} guesses judged: {statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        40 - judged,
        "{statuses:?}"
    );

    // A GAN with a bad check digit is refused before any lookup.
    let res = app
        .client
        .post(app.url("/api/v1/public/gift-cards/balance"))
        .json(&json!({"gan": "4111111111111112", "pin": "12345678"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation").await;
}

/// A till kept waiting past the lock timeout (10 s) by another transaction, on the card
/// (the one-statement redemption, or a load) or on its idempotency key (storing the answer),
/// is told to retry (409 idempotency-key-in-use): the database reports such waits by a
/// constraint name.
#[tokio::test]
async fn waiting_past_the_lock_timeout_answers_in_use() {
    use diesel::prelude::*;
    use diesel::sql_types::{Text, Uuid as SqlUuid};
    let app = spawn_app().await;
    let m = app.create_merchant("Locks");
    let busy = app.issue_gift_card(&m.admin_key, "EUR", 5000).await["gan"]
        .as_str()
        .unwrap()
        .to_string();
    let free = app.issue_gift_card(&m.admin_key, "EUR", 5000).await["gan"]
        .as_str()
        .unwrap()
        .to_string();

    // Another session holds the busy card's row and an uncommitted answer under "held".
    let mut conn = app.db.connect();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (merchant, held_gan) = (m.id, busy.clone());
    let holder = std::thread::spawn(move || {
        conn.transaction::<(), diesel::result::Error, _>(|conn| {
            diesel::sql_query("SELECT 1 FROM gift_cards WHERE gan = $1 FOR UPDATE")
                .bind::<Text, _>(&held_gan)
                .execute(conn)?;
            diesel::sql_query(
                "INSERT INTO idempotency_keys (merchant_id, key, fingerprint, response_status,
                                               response_body, response_content_type)
                 VALUES ($1, 'held', '\\x00', 200, '\\x7b7d', 'application/json')",
            )
            .bind::<SqlUuid, _>(merchant)
            .execute(conn)?;
            let _ = locked_tx.send(());
            let _ = release_rx.recv();
            Err(diesel::result::Error::RollbackTransaction)
        })
    });
    locked_rx.await.expect("the holder took its locks");

    let body = json!({"amount": 100, "currency": "EUR"});
    let (redeem, load) = (
        format!("/api/v1/gift-cards/{busy}/redeem"),
        format!("/api/v1/gift-cards/{free}/load"),
    );
    // Loads, refunds and adjustments wait in a guarding function too (000029).
    let load_busy = format!("/api/v1/gift-cards/{busy}/load");
    let (on_card, on_key, load_on_card) = tokio::join!(
        app.pos(&redeem, &m.pos_key, "fresh", &body),
        app.pos(&load, &m.pos_key, "held", &body),
        app.pos(&load_busy, &m.pos_key, "fresh-load", &body),
    );
    let _ = release_tx.send(());
    let _ = holder.join();
    for res in [on_card, on_key, load_on_card] {
        assert_eq!(res.headers()["retry-after"], "1");
        assert_problem(res, 409, "idempotency-key-in-use").await;
    }
    // Nothing was written by either: the balances are as issued.
    for gan in [&busy, &free] {
        let card = app
            .get_with_key(&format!("/api/v1/gift-cards/{gan}"), &m.pos_key)
            .await;
        assert_eq!(TestApp::expect_json(card, 200).await["balance"], 5000);
    }
}

/// One redemption answer, built by `passfold_redeem` alone: a partial redemption (which
/// the fast path now takes too) and one settled by the general path (a load raced in)
/// answer in the very bytes a full one does, values aside, and replay the same bytes.
#[tokio::test]
async fn a_partial_redemption_answers_like_a_full_one_and_replays_byte_for_byte() {
    let app = spawn_app().await;
    let m = app.create_merchant("Answers");
    let gan = app.issue_gift_card(&m.admin_key, "EUR", 5000).await["gan"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/gift-cards/{gan}/redeem");
    let raw = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 200);
        let replay = replayed(&res);
        (res.text().await.expect("body"), replay)
    };
    // Values out, layout kept: the activity id and every number become placeholders.
    let shape = |body: &str| {
        let v: Value = serde_json::from_str(body).expect("JSON");
        let body = body.replace(v["activity_id"].as_str().expect("id"), "ID");
        let mut out = String::new();
        for c in body.chars() {
            if c.is_ascii_digit() {
                if !out.ends_with('N') {
                    out.push('N');
                }
            } else {
                out.push(c);
            }
        }
        out
    };

    let full = json!({"amount": 1000, "currency": "EUR"});
    let (full_body, _) = raw(app.pos(&path, &m.pos_key, "full", &full).await).await;
    let partial = json!({"amount": 9999, "currency": "EUR", "allow_partial": true});
    let (first, was_replayed) = raw(app.pos(&path, &m.pos_key, "part", &partial).await).await;
    assert!(!was_replayed);
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (v["amount"].as_i64(), v["balance"].as_i64()),
        (Some(4000), Some(0))
    );
    assert_eq!(v["currency"], "EUR");
    assert_eq!(v["state"], "active");
    assert_eq!(shape(&first), shape(&full_body), "{first} vs {full_body}");

    let (again, was_replayed) = raw(app.pos(&path, &m.pos_key, "part", &partial).await).await;
    assert!(was_replayed);
    assert_eq!(again, first);

    // The ledger agrees with the answer: -4000 recorded, nothing left.
    let activities = app
        .get_json(&format!("/api/v1/gift-cards/{gan}/activities"), &m.pos_key)
        .await;
    let last = activities["activities"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["id"], v["activity_id"]);
    assert_eq!(
        (last["amount"].as_i64(), last["balance_after"].as_i64()),
        (Some(-4000), Some(0))
    );
    app.verify_ledger(&m.admin_key).await;

    // The general path answers in the same bytes: a load racing in (held uncommitted by
    // another session) makes the one statement pass the card by, and the general path,
    // waiting on the card's row lock, then finds enough and redeems through the same SQL.
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    let raced = app.issue_gift_card(&m.admin_key, "EUR", 5000).await["gan"]
        .as_str()
        .unwrap()
        .to_string();
    let mut conn = app.db.connect();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let held = raced.clone();
    let holder = std::thread::spawn(move || {
        conn.transaction::<(), diesel::result::Error, _>(|conn| {
            // Only the balance: this test checks answers, not the ledger, from here on.
            diesel::sql_query("UPDATE gift_cards SET balance = balance + 5000 WHERE gan = $1")
                .bind::<Text, _>(&held)
                .execute(conn)?;
            let _ = locked_tx.send(());
            let _ = release_rx.recv();
            Ok(())
        })
        .expect("the load commits")
    });
    locked_rx.await.expect("the holder took the card");
    let path = format!("/api/v1/gift-cards/{raced}/redeem");
    let body = json!({"amount": 8000, "currency": "EUR"});
    let started = std::time::Instant::now();
    let (res, ()) = tokio::join!(app.pos(&path, &m.pos_key, "race", &body), async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let _ = release_tx.send(());
    });
    holder.join().unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "it waited"
    );
    let (first, was_replayed) = raw(res).await;
    assert!(!was_replayed);
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (v["amount"].as_i64(), v["balance"].as_i64()),
        (Some(8000), Some(2000))
    );
    assert_eq!(shape(&first), shape(&full_body), "{first} vs {full_body}");
    let (again, was_replayed) = raw(app.pos(&path, &m.pos_key, "race", &body).await).await;
    assert!(was_replayed);
    assert_eq!(again, first);
}

/// The checks find what the writers never leave behind: a balance that is not its
/// activities' sum, and (the points ledger has no foreign keys) an activity of no member of
/// its merchant.
#[tokio::test]
async fn ledger_verification_names_a_wrong_balance_and_an_activity_without_a_member() {
    use diesel::RunQueryDsl;
    let app = spawn_app().await;
    let (m, _program, member) = app.merchant_with_member("Books", "Ada").await;
    let member_id = id_of(&member).to_string();
    let res = app.purchase(&m.pos_key, &member_id, "p-1", 1_000).await;
    assert_eq!(res.status(), 200);
    app.verify_ledger(&m.admin_key).await;

    let mut conn = app.db.connect();
    diesel::sql_query(format!(
        "UPDATE members SET points = points + 7 WHERE id = '{member_id}'"
    ))
    .execute(&mut conn)
    .unwrap();
    let stranger = uuid::Uuid::new_v4();
    diesel::sql_query(format!(
        "INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after,
                                       reason, qualifying)
         SELECT gen_random_uuid(), merchant_id, '{stranger}', 'adjust', 0, 0, 'test', 0
           FROM members WHERE id = '{member_id}'"
    ))
    .execute(&mut conn)
    .unwrap();
    let report = app.get_json("/api/v1/ledger/verify", &m.admin_key).await;
    let problems: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("but activities sum to")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&format!("no member {stranger} of its merchant"))),
        "{problems:?}"
    );
}

/// A message to a gift card beside movements of it: the message wrote the pass and then
/// waited on the card, which a redemption or load held while it waited on the pass. The
/// database broke the deadlock by failing one of them with a 500.
#[tokio::test]
async fn messages_to_a_gift_card_beside_its_movements_never_deadlock() {
    let app = Arc::new(spawn_app_with(|s| s.limits.requests_per_client = 10_000).await);
    let m = Arc::new(app.create_merchant("Busy Card"));
    let gan = app.issue_gift_card(&m.admin_key, "EUR", 100_000).await["gan"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let (app, m, gan) = (app.clone(), m.clone(), gan.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..25 {
                let (path, body) = match lane {
                    0 | 1 => (
                        format!("/api/v1/gift-cards/{gan}/messages"),
                        json!({"header": "Hello", "body": format!("message {lane}-{n}")}),
                    ),
                    2 => (
                        format!("/api/v1/gift-cards/{gan}/redeem"),
                        json!({"amount": 1, "currency": "EUR"}),
                    ),
                    _ => (
                        format!("/api/v1/gift-cards/{gan}/load"),
                        json!({"amount": 1, "currency": "EUR"}),
                    ),
                };
                let res = app
                    .pos(&path, &m.admin_key, &format!("busy-{lane}-{n}"), &body)
                    .await;
                let status = res.status().as_u16();
                statuses.push((path, status, res.text().await.unwrap()));
            }
            statuses
        }));
    }
    for task in tasks {
        for (path, status, body) in task.await.unwrap() {
            assert!(status == 200 || status == 202, "{path}: {status} {body}");
        }
    }
}
