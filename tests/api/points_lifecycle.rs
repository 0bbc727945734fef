//! Points that live and die: lots spent soonest-expiring first, expiry once per lot however
//! often and by however many the job runs, lock-screen reminders within sending hours,
//! paying with points under the cap, and returns (including points already spent).

use crate::apns_mock::ApnsMock;
use crate::helpers::{id_of, spawn_app_on, spawn_app_with_apns, TestApp};
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::{json, Value};

async fn program(app: &TestApp, key: &str, rules: Value) -> Value {
    let mut body = json!({
        "name": "Coffee Club",
        "template": "loyalty-default",
        "currency": "EUR",
        "points_per_unit": 10,
        "tiers": [{"name": "Bronze", "min_points": 0}, {"name": "Silver", "min_points": 150}],
    });
    for (k, v) in rules.as_object().unwrap() {
        body[k] = v.clone();
    }
    TestApp::expect_json(app.post_json("/api/v1/programs", key, &body).await, 201).await
}

async fn activities(app: &TestApp, key: &str, member: &str) -> Vec<Value> {
    let page = app
        .get_json(
            &format!("/api/v1/members/{member}/activities?limit=100"),
            key,
        )
        .await;
    page["activities"].as_array().unwrap().clone()
}

fn of_type<'a>(list: &'a [Value], kind: &str) -> Vec<&'a Value> {
    list.iter().filter(|a| a["type"] == kind).collect()
}

fn expire(app: &TestApp, at: DateTime<Utc>) -> usize {
    let job = passfold::jobs::expiry::Expiry {
        channels: Channels::new(false),
    };
    job.run(&mut app.db.connect(), at).unwrap()
}

#[tokio::test]
async fn lots_are_spent_soonest_first_and_expire_once_each() {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Lots");
    let p = program(
        &app,
        &m.admin_key,
        json!({"points_expire_days": 30, "point_value": 1}),
    )
    .await;
    assert_eq!(p["points_expire_days"], 30);
    let member = app.enroll(&m.pos_key, id_of(&p), "Ann").await;
    let id = id_of(&member).to_string();
    // Three days, three lots: 100, 200, 300 points.
    for (day, amount) in [(0, 1000), (1, 2000), (2, 3000)] {
        clock.set(start + Duration::days(day));
        let bought = app
            .pos_ok(
                &format!("/api/v1/members/{id}/purchases"),
                &m.pos_key,
                &format!("buy-{day}"),
                &json!({"amount": amount, "currency": "EUR"}),
            )
            .await;
        assert!(bought["purchase_id"].is_string(), "{bought}");
    }
    // 150 points paid: the first lot (100) and half the second go.
    clock.set(start + Duration::days(3));
    let paid = app
        .pos_ok(
            &format!("/api/v1/members/{id}/points/redeem"),
            &m.pos_key,
            "pay-1",
            &json!({"points": 150, "receipt_amount": 10000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(
        (paid["points"].as_i64(), paid["discount"].as_i64()),
        (Some(450), Some(150))
    );

    // Day 31: the first lot is gone already, the second expires what it still holds (150).
    let day31 = start + Duration::days(31);
    assert_eq!(expire(&app, day31), 1);
    assert_eq!(app.member_points(&m.pos_key, &id).await, 300);
    // Run again at once, and again later the same day: nothing expires twice.
    assert_eq!(expire(&app, day31), 0);
    assert_eq!(expire(&app, day31 + Duration::hours(1)), 0);
    let list = activities(&app, &m.pos_key, &id).await;
    let expired = of_type(&list, "expire");
    assert_eq!(expired.len(), 1, "{list:?}");
    assert_eq!(expired[0]["points"], -150);
    assert_eq!(expired[0]["points_after"], 300);
    // The expiry is dated when the lot ran out, not when the job ran.
    let at: DateTime<Utc> = expired[0]["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, start + Duration::days(31));

    // Two workers at the same instant, racing: the last lot expires once.
    let day40 = start + Duration::days(40);
    let (a, b) = (app.db.url.clone(), app.db.url.clone());
    let run = |url: String| {
        std::thread::spawn(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            passfold::jobs::expiry::Expiry {
                channels: Channels::new(false),
            }
            .run(&mut conn, day40)
            .unwrap()
        })
    };
    let (ra, rb) = (run(a), run(b));
    assert_eq!(ra.join().unwrap() + rb.join().unwrap(), 1);
    assert_eq!(app.member_points(&m.pos_key, &id).await, 0);
    let list = activities(&app, &m.pos_key, &id).await;
    assert_eq!(of_type(&list, "expire").len(), 2);
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn a_batch_cut_short_expires_nothing_twice() {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Batches");
    let p = program(&app, &m.admin_key, json!({"points_expire_days": 10})).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let member = app.enroll(&m.pos_key, id_of(&p), &format!("M{i}")).await;
        let id = id_of(&member).to_string();
        app.pos_ok(
            &format!("/api/v1/members/{id}/purchases"),
            &m.pos_key,
            &format!("b{i}"),
            &json!({"amount": 500, "currency": "EUR"}),
        )
        .await;
        ids.push(id);
    }
    // A worker that stops after one small batch (as if killed), then a full run.
    let at = start + Duration::days(11);
    let mut conn = app.db.connect();
    assert_eq!(
        passfold::jobs::expiry::batch(&mut conn, Channels::new(false), at, 2).unwrap(),
        2
    );
    assert_eq!(expire(&app, at), 3);
    for id in &ids {
        assert_eq!(app.member_points(&m.pos_key, id).await, 0);
        assert_eq!(
            of_type(&activities(&app, &m.pos_key, id).await, "expire").len(),
            1
        );
    }
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn paying_with_points_is_capped_quoted_and_replayed() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Pay");
    let p = program(
        &app,
        &m.admin_key,
        json!({"point_value": 10, "max_points_payment_percent": 30}),
    )
    .await;
    let member = app.enroll(&m.pos_key, id_of(&p), "Bob").await;
    let id = id_of(&member).to_string();
    app.pos_ok(
        &format!("/api/v1/members/{id}/purchases"),
        &m.pos_key,
        "earn",
        &json!({"amount": 5000, "currency": "EUR"}),
    )
    .await; // 500 points
            // A receipt of 20.00: 30% is 6.00, 60 points at 0.10.
    let quote = TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/members/{id}/points/quote"),
            &m.pos_key,
            &json!({"receipt_amount": 2000, "currency": "EUR"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (quote["max_points"].as_i64(), quote["max_discount"].as_i64()),
        (Some(60), Some(600))
    );
    let path = format!("/api/v1/members/{id}/points/redeem");
    let over = app
        .pos(
            &path,
            &m.pos_key,
            "over",
            &json!({"points": 61, "receipt_amount": 2000, "currency": "EUR"}),
        )
        .await;
    let body = crate::helpers::assert_problem(over, 422, "validation").await;
    assert_eq!(body["max_points"], 60);
    let pay = json!({"points": 60, "receipt_amount": 2000, "currency": "EUR"});
    let first = app.pos(&path, &m.pos_key, "pay", &pay).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        (first["points"].as_i64(), first["discount"].as_i64()),
        (Some(440), Some(600))
    );
    let again = app.pos(&path, &m.pos_key, "pay", &pay).await;
    assert!(crate::helpers::replayed(&again));
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.member_points(&m.pos_key, &id).await, 440);
    // More than the balance, on a receipt whose cap would allow it.
    let broke = app
        .pos(
            &path,
            &m.pos_key,
            "broke",
            &json!({"points": 441, "receipt_amount": 1000000, "currency": "EUR"}),
        )
        .await;
    crate::helpers::assert_problem(broke, 409, "insufficient-funds").await;
    // A change of the rules is explained before it is saved.
    let mut change = p.clone();
    for k in ["id", "join_url", "created_at"] {
        change.as_object_mut().unwrap().remove(k);
    }
    change["points_expire_days"] = json!(365);
    change["expiry_reminders_days"] = json!([14, 3]);
    let said = TestApp::expect_json(
        app.put_json(
            &format!("/api/v1/programs/{}?dry_run=true", id_of(&p)),
            &m.admin_key,
            &change,
        )
        .await,
        200,
    )
    .await;
    let summary = said["effects"]["summary"].to_string();
    assert!(summary.contains("expire 365 days after"), "{summary}");
    assert!(
        summary.contains("reminded 14 and 3 days before"),
        "{summary}"
    );
    // A program without a point value takes no points.
    let plain = program(&app, &m.admin_key, json!({})).await;
    let other = app.enroll(&m.pos_key, id_of(&plain), "Cy").await;
    let refused = app
        .pos(
            &format!("/api/v1/members/{}/points/redeem", id_of(&other)),
            &m.pos_key,
            "none",
            &json!({"points": 1, "receipt_amount": 1000, "currency": "EUR"}),
        )
        .await;
    crate::helpers::assert_problem(refused, 422, "validation").await;
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn returns_take_back_earned_points_and_give_back_paid_ones() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Returns");
    let p = program(&app, &m.admin_key, json!({"point_value": 1})).await;
    let member = app.enroll(&m.pos_key, id_of(&p), "Dee").await;
    let id = id_of(&member).to_string();
    let buy = |key: &'static str, amount: i64, redemption: Option<String>| {
        let mut body = json!({"amount": amount, "currency": "EUR"});
        if let Some(r) = redemption {
            body["redemption_id"] = json!(r);
        }
        let path = format!("/api/v1/members/{id}/purchases");
        let app = &app;
        let k = m.pos_key.clone();
        async move { app.pos_ok(&path, &k, key, &body).await }
    };
    // 300 points, then a receipt of 20.00 paying 100 points, 19.00 left paid in money.
    let first = buy("b1", 3000, None).await;
    assert_eq!(first["points"], 300);
    let paid = app
        .pos_ok(
            &format!("/api/v1/members/{id}/points/redeem"),
            &m.pos_key,
            "pay",
            &json!({"points": 100, "receipt_amount": 2000, "currency": "EUR"}),
        )
        .await;
    let second = buy("b2", 1900, paid["redemption_id"].as_str().map(String::from)).await;
    assert_eq!(second["points"], 390); // 300 - 100 + 190
    assert_eq!(second["tier"], "Silver");
    let refund = |purchase: &Value, key: &'static str, body: Value| {
        let path = format!(
            "/api/v1/members/{id}/purchases/{}/refund",
            purchase["purchase_id"].as_str().unwrap()
        );
        let app = &app;
        let k = m.pos_key.clone();
        async move { app.pos(&path, &k, key, &body).await }
    };
    // Half of the second purchase back: 95 earned points taken, 50 paid points given.
    let half = TestApp::expect_json(refund(&second, "r1", json!({"amount": 950})).await, 200).await;
    assert_eq!(
        (
            half["points_taken_back"].as_i64(),
            half["points_given_back"].as_i64(),
            half["points"].as_i64()
        ),
        (Some(95), Some(50), Some(345))
    );
    // The rest: the same again, exactly.
    let rest = TestApp::expect_json(refund(&second, "r2", json!({})).await, 200).await;
    assert_eq!(
        (
            rest["points_taken_back"].as_i64(),
            rest["points_given_back"].as_i64()
        ),
        (Some(95), Some(50))
    );
    assert_eq!(rest["points"], 300);
    // Nothing is left to return.
    crate::helpers::assert_problem(refund(&second, "r3", json!({})).await, 422, "validation").await;

    // Spend most of the first purchase's points, then return it: 300 to take, 20 there.
    app.pos_ok(
        &format!("/api/v1/members/{id}/points/redeem"),
        &m.pos_key,
        "pay2",
        &json!({"points": 280, "receipt_amount": 100000, "currency": "EUR"}),
    )
    .await;
    let back = TestApp::expect_json(refund(&first, "r4", json!({})).await, 200).await;
    assert_eq!(
        (
            back["points_taken_back"].as_i64(),
            back["points_owed"].as_i64(),
            back["points"].as_i64()
        ),
        (Some(20), Some(280), Some(0))
    );
    // Bronze again: the returned points no longer qualify.
    assert_eq!(back["tier"], "Bronze");
    assert_eq!(app.member(&m.pos_key, &id).await["points_owed"], 280);
    // What is owed comes out of the next earnings: 500 earned, 280 to the debt.
    let later = buy("b3", 5000, None).await;
    assert_eq!(later["points"], 220);
    assert_eq!(app.member(&m.pos_key, &id).await["points_owed"], 0);
    let list = activities(&app, &m.pos_key, &id).await;
    assert!(
        list.iter()
            .any(|a| a["type"] == "refund" && a["points"] == -280),
        "{list:?}"
    );
    // A replayed return answers the same and moves nothing.
    let replay = refund(&first, "r4", json!({})).await;
    assert!(crate::helpers::replayed(&replay));
    assert_eq!(app.member_points(&m.pos_key, &id).await, 220);
    app.verify_ledger(&m.admin_key).await;
}

use crate::worker_once::run_at as worker_once;

#[tokio::test]
async fn reminders_reach_the_lock_screen_once_each_within_sending_hours() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let m = app.create_merchant("Remind");
    let p = program(
        &app,
        &m.admin_key,
        json!({"points_expire_days": 20, "expiry_reminders_days": [14, 3], "timezone": "Europe/Moscow"}),
    )
    .await;
    let member = app.enroll(&m.pos_key, id_of(&p), "Eve").await;
    let id = id_of(&member).to_string();
    let pass = app.pass_json_of(&member).await;
    let token = format!("{:064x}", 77);
    assert_eq!(app.register_device(&pass, "phone", &token).await, 201);
    let bought_at = Utc::now();
    app.pos_ok(
        &format!("/api/v1/members/{id}/purchases"),
        &m.pos_key,
        "buy",
        &json!({"amount": 1200, "currency": "EUR"}),
    )
    .await; // 120 points, expiring 20 days on
    assert!(
        mock.wait_for(&token, 1, std::time::Duration::from_secs(5))
            .await
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.stop_workers().await;
    let expires = bought_at + Duration::days(20);
    let moscow = chrono_tz::Europe::Moscow;
    let local_day = expires.with_timezone(&moscow).format("%-d").to_string();
    let mut pushes = mock.accepted_for(&token).await;

    // Day by day at noon in Moscow (09:00 UTC); the 14-day reminder is due on day 6 or 7.
    let noon = |day: i64| {
        let d = (bought_at + Duration::days(day)).date_naive();
        Utc.from_utc_datetime(&d.and_hms_opt(9, 0, 0).unwrap())
    };
    let mut reminded_on = Vec::new();
    for day in 1..=19 {
        let at = noon(day);
        // Late evening in Moscow first: a reminder due then waits for the morning.
        let night = at + Duration::hours(11); // 23:00 Moscow
        let report = worker_once(&app, &mock, night - Duration::days(1)).await;
        assert_eq!(
            report["jobs"]["reminders"], 0,
            "day {day} at night: {report}"
        );
        // Two workers at once: between them one reminder at most.
        let (a, b) = tokio::join!(worker_once(&app, &mock, at), worker_once(&app, &mock, at));
        let sent =
            a["jobs"]["reminders"].as_u64().unwrap() + b["jobs"]["reminders"].as_u64().unwrap();
        assert!(sent <= 1, "day {day}: {a} {b}");
        let now = mock.accepted_for(&token).await;
        if sent == 1 {
            assert_eq!(now, pushes + 1, "one push for the reminder on day {day}");
            reminded_on.push(day);
            let pass = app.checked_pass(&member).await.pass_json;
            let back = pass["storeCard"]["backFields"].as_array().unwrap();
            let note = back
                .iter()
                .find(|f| f["key"] == "merchant_message")
                .expect("the message");
            let text = note["value"].as_str().unwrap();
            assert!(
                text.starts_with("120 points expire on ")
                    && text.contains(&format!(" {local_day} ")),
                "{text}"
            );
            assert_eq!(note["changeMessage"], "%@");
        } else {
            assert_eq!(now, pushes, "no push on day {day}");
        }
        pushes = now;
    }
    assert_eq!(
        reminded_on.len(),
        2,
        "14 and 3 days before: {reminded_on:?}"
    );
    assert!(reminded_on[1] - reminded_on[0] == 11, "{reminded_on:?}");
    // Two workers at once the day after the last reminder: nothing more is sent.
    let at = noon(18);
    let (a, b) = tokio::join!(worker_once(&app, &mock, at), worker_once(&app, &mock, at));
    assert_eq!(
        (
            a["jobs"]["reminders"].as_u64(),
            b["jobs"]["reminders"].as_u64()
        ),
        (Some(0), Some(0))
    );
    // Expiry: one push, one `expire` row of exactly the lot.
    let report = worker_once(&app, &mock, noon(21)).await;
    assert_eq!(report["jobs"]["expiry"], 1, "{report}");
    assert_eq!(mock.accepted_for(&token).await, pushes + 1);
    assert_eq!(app.member_points(&m.pos_key, &id).await, 0);
    let list = activities(&app, &m.pos_key, &id).await;
    let expired = of_type(&list, "expire");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["points"], -120);
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn a_reminder_is_a_google_wallet_message_that_notifies() {
    use crate::google_mock::GoogleMock;
    let google = GoogleMock::start().await;
    let app = crate::wallets::spawn_app_with_google(&google).await;
    let m = app.create_merchant("Remind G");
    let p = program(
        &app,
        &m.admin_key,
        json!({"points_expire_days": 10, "expiry_reminders_days": [3]}),
    )
    .await;
    let member = app.enroll(&m.pos_key, id_of(&p), "Gus").await;
    let object =
        crate::google_wallet::save_link_object_id(&member["google_save_url"], "loyaltyObjects");
    app.pos_ok(
        &format!("/api/v1/members/{}/purchases", id_of(&member)),
        &m.pos_key,
        "buy",
        &json!({"amount": 900, "currency": "EUR"}),
    )
    .await;
    // Eight days on, at noon UTC: the 3-day reminder is due.
    let at = Utc::now() + Duration::days(8);
    let at = Utc.from_utc_datetime(&at.date_naive().and_hms_opt(12, 0, 0).unwrap());
    let job = passfold::jobs::reminders::Reminders {
        channels: Channels::new(true),
    };
    assert_eq!(job.run(&mut app.db.connect(), at).unwrap(), 1);
    assert_eq!(job.run(&mut app.db.connect(), at).unwrap(), 0, "sent once");
    let oid = object.clone();
    assert!(
        google
            .wait_until(
                move |g| g
                    .calls()
                    .iter()
                    .any(|c| c.path.ends_with(&format!("{oid}/addMessage")) && c.status == 200),
                std::time::Duration::from_secs(5)
            )
            .await,
        "no addMessage reached Google"
    );
    let call = google
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with(&format!("{object}/addMessage")))
        .unwrap();
    let message = &call.body.unwrap()["message"];
    assert_eq!(message["header"], "Points expiring");
    assert!(
        message["body"]
            .as_str()
            .unwrap()
            .starts_with("90 points expire on "),
        "{message}"
    );
    assert_eq!(message["messageType"], "TEXT_AND_NOTIFY");
    crate::google_mock::validate("AddMessageRequest", &json!({"message": message})).unwrap();
}
