//! Campaigns: a message to a segment's passes with a holdout. The audience expected is
//! worked out here from the histories the test sent (the merchant's RFM thresholds applied
//! by hand), and what reached the APNs and Google stand-ins is compared member by member.

use crate::apns_mock::ApnsMock;
use crate::google_mock::GoogleMock;
use crate::helpers::{assert_problem, id_of, replayed, spawn_app_on, TestApp};
use crate::webhook_receiver::Receiver;
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Noon UTC today: within sending hours in UTC, and close to real time (Google's
/// notification budget and the idempotency window run on real time).
fn noon_today() -> DateTime<Utc> {
    Utc.from_utc_datetime(&Utc::now().date_naive().and_hms_opt(12, 0, 0).unwrap())
}

/// The app on `clock`, its APNs client on `apns` and its Google client on `google`.
async fn spawn(clock: Clock, apns: &ApnsMock, google: &GoogleMock) -> TestApp {
    let (url, ca) = (apns.url.clone(), apns.ca_file.clone());
    let (api, token) = (google.api_url.clone(), google.token_url.clone());
    spawn_app_on(clock, move |s| {
        s.apns = passfold::configuration::ApnsSettings {
            url,
            ca_file: Some(ca),
        };
        s.google.api_url = api;
        s.google.token_url = token;
        s.webhooks_allow_private = true;
    })
    .await
}

async fn create_campaign(
    app: &TestApp,
    key: &str,
    program: &str,
    idempotency_key: &str,
    body: &Value,
) -> reqwest::Response {
    app.pos(
        &format!("/api/v1/programs/{program}/campaigns"),
        key,
        idempotency_key,
        body,
    )
    .await
}

/// Runs the campaigns job in this process as of `at`, like `worker --once --at` does.
fn run_job(app: &TestApp, at: DateTime<Utc>) -> usize {
    let job = passfold::jobs::campaigns::Campaigns {
        channels: Channels::new(true),
    };
    job.run(&mut app.db.connect(), at).unwrap()
}

/// The group the documented mapping gives a member of these purchases (days ago, amount)
/// under the thresholds below: R 3 within 30 days, 2 within 90; F 3 from 3 purchases, 2
/// from 2; M 3 from 100.00, 2 from 50.00.
fn group_of(purchases: &[(i64, i64)]) -> &'static str {
    if purchases.is_empty() {
        return "no_purchases";
    }
    let days = purchases.iter().map(|p| p.0).min().unwrap();
    let (f, money) = (purchases.len(), purchases.iter().map(|p| p.1).sum::<i64>());
    let r = if days <= 30 {
        3
    } else if days <= 90 {
        2
    } else {
        1
    };
    let f = if f >= 3 {
        3
    } else if f >= 2 {
        2
    } else {
        1
    };
    let m = if money >= 10_000 {
        3
    } else if money >= 5_000 {
        2
    } else {
        1
    };
    match (r, f, m) {
        (3, 3, 3) | (3, 3, 2) => "champions",
        (3, 1, 1) | (3, 1, 2) => "new",
        (1, 1, 1) | (1, 1, 2) => "lost",
        (r, f, m) => panic!("the test only makes a few groups: {r}{f}{m}"),
    }
}

#[tokio::test]
async fn a_campaign_to_a_group_reaches_the_sent_group_only_and_measures_against_the_holdout() {
    let (apns, google) = (ApnsMock::start().await, GoogleMock::start().await);
    let start = noon_today();
    let clock = Clock::manual(start);
    let app = spawn(clock.clone(), &apns, &google).await;
    let m = app.create_merchant("Campaigns");
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 10, "point_value": 2,
                "rfm_thresholds": {"recency_days": [30, 90], "frequency": [3, 2],
                                   "monetary": [10000, 5000]},
            }),
        )
        .await,
        201,
    )
    .await;
    let pid = id_of(&program).to_string();
    // Histories as (days ago, amount): ten champions, three new, three lost, two without.
    let mut histories: Vec<Vec<(i64, i64)>> = Vec::new();
    for i in 0..10 {
        histories.push(vec![(2 + i, 4_000), (20, 3_500), (25, 3_000)]);
    }
    for i in 0..3 {
        histories.push(vec![(5 + i, 1_000)]);
    }
    for i in 0..3 {
        histories.push(vec![(200 + i, 1_500)]);
    }
    histories.push(vec![]);
    histories.push(vec![]);
    let mut members = Vec::new();
    for (i, history) in histories.iter().enumerate() {
        let member = app.enroll(&m.admin_key, &pid, &format!("Member {i}")).await;
        for (k, (days, amount)) in history.iter().enumerate() {
            app.pos_ok(
                &format!("/api/v1/members/{}/purchases", id_of(&member)),
                &m.admin_key,
                &format!("buy-{i}-{k}"),
                &json!({"amount": amount, "currency": "EUR",
                        "purchased_at": (start - Duration::days(*days)).to_rfc3339()}),
            )
            .await;
        }
        members.push(member);
    }
    TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/programs/{pid}/segments/recompute"),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    let ids: Vec<String> = members.iter().map(|m| id_of(m).to_string()).collect();
    let expected: BTreeSet<String> = ids
        .iter()
        .zip(&histories)
        .filter(|(_, h)| group_of(h) == "champions")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(expected.len(), 10);
    // Every member has an iPhone and a Google save; a token per member.
    let token = |i: usize| format!("{:064x}", 9_000 + i);
    let mut conn = app.db.connect();
    for (i, member) in members.iter().enumerate() {
        let pass = app.pass_json_of(member).await;
        assert_eq!(
            app.register_device(&pass, &format!("phone-{i}"), &token(i))
                .await,
            201
        );
        // What Google's save callback records (tests/api/google_callbacks.rs covers it).
        diesel::sql_query(
            "INSERT INTO google_installs (pass_id, saved, updated_at, merchant_id)
             SELECT id, true, now(), merchant_id FROM passes WHERE member_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(id_of(member)).unwrap())
        .execute(&mut conn)
        .unwrap();
    }
    let objects: Vec<String> = members
        .iter()
        .map(|m| crate::google_wallet::save_link_object_id(&m["google_save_url"], "loyaltyObjects"))
        .collect();
    // Let the purchases' deliveries settle before counting what the campaign adds.
    for _ in 0..100 {
        let queued: i64 = passfold::schema::outbox::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        if queued == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The odd-numbered members' passes have spent today's three Google notifications
    // (whatever the purchases spent is forgotten: a day has passed).
    diesel::sql_query("DELETE FROM google_notifications")
        .execute(&mut conn)
        .unwrap();
    for member in members.iter().skip(1).step_by(2) {
        diesel::sql_query(
            "INSERT INTO google_notifications (pass_id, merchant_id, sent_at)
             SELECT p.id, p.merchant_id, now() - make_interval(hours => k)
               FROM passes p, generate_series(1, 3) k WHERE p.member_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(id_of(member)).unwrap())
        .execute(&mut conn)
        .unwrap();
    }
    let mut pushes_before = Vec::new();
    for i in 0..members.len() {
        pushes_before.push(apns.accepted_for(&token(i)).await);
    }
    let messages_before = google
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/addMessage"))
        .count();
    let points_before: Vec<i64> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(app.member_points(&m.admin_key, id).await);
        }
        v
    };

    let body = json!({
        "audience": {"groups": ["champions"]},
        "holdout_percent": 20,
        "message": {"en": "Double points this weekend", "ru": "Двойные баллы в выходные"},
        "header": {"en": "This weekend"},
        "bonus_points": 50,
        "cost_per_message": 3,
        "offer": {"text": "A free cake with any coffee", "coupon_code": "CAKE",
                  "valid_until": "2030-01-31"},
    });
    let created = TestApp::expect_json(
        create_campaign(&app, &m.admin_key, &pid, "camp-1", &body).await,
        201,
    )
    .await;
    assert_eq!(created["state"], "scheduled");
    let send_at: DateTime<Utc> = created["send_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(send_at, start, "now, within sending hours");
    let cid = id_of(&created).to_string();
    // The merchant's CRM hears when the campaign has gone.
    let receiver = Receiver::start().await;
    let hook = TestApp::expect_json(
        app.post_json(
            "/api/v1/webhooks",
            &m.admin_key,
            &json!({"url": receiver.url, "events": ["campaign.sent"]}),
        )
        .await,
        201,
    )
    .await;

    // Two workers at once (and the app's own job loop, which may come by): between them
    // every recipient once.
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking({
            let url = app.db.url.clone();
            move || job_at(&url, start)
        }),
        tokio::task::spawn_blocking({
            let url = app.db.url.clone();
            move || job_at(&url, start)
        }),
    );
    assert!(a.unwrap() + b.unwrap() <= 8, "8 sent, 2 held out");
    assert_eq!(run_job(&app, start), 0, "nothing twice");
    let events = receiver.wait_for_kinds(&["campaign.sent"]).await;
    let sent_event = &events[0];
    assert!(sent_event.verifies_with(hook["secret"].as_str().unwrap()));
    let data = &sent_event.json()["data"];
    assert_eq!(
        (
            &data["campaign_id"],
            &data["targeted"],
            &data["held_out"],
            &data["sent"]
        ),
        (&json!(cid), &json!(10), &json!(2), &json!(8)),
        "{data}"
    );

    let recipients: Vec<(String, bool)> = {
        #[derive(QueryableByName)]
        struct R {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            member_id: uuid::Uuid,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            held_out: bool,
        }
        diesel::sql_query("SELECT member_id, held_out FROM campaign_recipients")
            .load::<R>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| (r.member_id.to_string(), r.held_out))
            .collect()
    };
    let targeted: BTreeSet<String> = recipients.iter().map(|r| r.0.clone()).collect();
    assert_eq!(targeted, expected, "exactly the champions");
    let held: BTreeSet<String> = recipients
        .iter()
        .filter(|r| r.1)
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(held.len(), 2, "20% of 10");

    // Each sent iPhone pushed once; nobody else.
    let sent: Vec<usize> = (0..members.len())
        .filter(|i| expected.contains(&ids[*i]) && !held.contains(&ids[*i]))
        .collect();
    for i in &sent {
        assert!(
            apns.wait_for(
                &token(*i),
                pushes_before[*i] + 1,
                std::time::Duration::from_secs(10)
            )
            .await,
            "member {i} pushed"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    for (i, before) in pushes_before.iter().enumerate() {
        let extra = apns.accepted_for(&token(i)).await - before;
        let want = usize::from(sent.contains(&i));
        assert_eq!(extra, want, "member {i}: pushes");
    }
    // The sent group's passes carry the message and the offer; the others do not.
    for (i, member) in members.iter().enumerate() {
        let pass = app.pass_json_of(member).await;
        let back = pass["storeCard"]["backFields"].as_array().unwrap();
        let note = back.iter().find(|f| f["key"] == "merchant_message");
        if sent.contains(&i) {
            let note = note.expect("the message");
            assert_eq!(note["label"], "This weekend");
            assert_eq!(note["changeMessage"], "%@");
            assert_eq!(
                note["value"],
                "Double points this weekend\n\nA free cake with any coffee\nCode: CAKE\nValid until 2030-01-31"
            );
            assert_eq!(
                app.member_points(&m.admin_key, &ids[i]).await,
                points_before[i] + 50
            );
        } else {
            assert!(note.is_none(), "member {i}: {note:?}");
            assert_eq!(
                app.member_points(&m.admin_key, &ids[i]).await,
                points_before[i]
            );
        }
    }
    // Google: a message on each sent object, on no other.
    let sent_objects: BTreeSet<String> = sent.iter().map(|i| objects[*i].clone()).collect();
    let want = sent_objects.clone();
    assert!(
        google
            .wait_until(
                move |g| {
                    let got: BTreeSet<String> = g
                        .calls()
                        .iter()
                        .filter(|c| c.path.ends_with("/addMessage") && c.status == 200)
                        .filter_map(|c| c.path.split('/').rev().nth(1).map(String::from))
                        .collect();
                    want.is_subset(&got)
                },
                std::time::Duration::from_secs(10)
            )
            .await,
        "every sent object got its message"
    );
    let messaged: Vec<String> = google
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/addMessage"))
        .skip(messages_before)
        .filter_map(|c| c.path.split('/').rev().nth(1).map(String::from))
        .collect();
    assert_eq!(messaged.len(), 8, "{messaged:?}");
    assert_eq!(
        messaged.iter().cloned().collect::<BTreeSet<_>>(),
        sent_objects
    );
    // Within the budget the message notifies; past it, it is added silently.
    for i in &sent {
        let call = google
            .calls()
            .into_iter()
            .skip(messages_before)
            .find(|c| c.path.ends_with(&format!("{}/addMessage", objects[*i])))
            .unwrap();
        let message = &call.body.unwrap()["message"];
        let want = if i % 2 == 0 {
            "TEXT_AND_NOTIFY"
        } else {
            "TEXT"
        };
        assert_eq!(message["messageType"], want, "member {i}: {message}");
        assert_eq!(message["header"], "This weekend");
    }

    // The counts, once the channels have settled.
    let mut view = Value::Null;
    for _ in 0..50 {
        view = app
            .get_json(&format!("/api/v1/campaigns/{cid}"), &m.admin_key)
            .await;
        if view["pushed_apple"] == 8 && view["messaged_google"] == 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(view["state"], "sent", "{view}");
    assert_eq!(view["targeted"], 10);
    assert_eq!(view["held_out"], 2);
    assert_eq!(view["sent"], 8);
    assert_eq!(view["pushed_apple"], 8, "{view}");
    assert_eq!(view["messaged_google"], 8, "{view}");
    assert_eq!(view["no_pass"], 0);
    assert_eq!(view["results"]["sent"]["purchases"], 0);

    // An hour on: one sent member buys twice, one held-out member once, an outsider once;
    // a purchase after the window does not count.
    clock.set(start + Duration::hours(1));
    let buyer = &ids[sent[0]];
    let holdout_buyer = held.iter().next().unwrap().clone();
    let outsider = &ids[12];
    for (who, key, amount) in [
        (buyer.as_str(), "after-1", 2_000),
        (buyer.as_str(), "after-2", 500),
        (holdout_buyer.as_str(), "after-3", 700),
        (outsider.as_str(), "after-4", 900),
    ] {
        TestApp::expect_json(app.purchase(&m.admin_key, who, key, amount).await, 200).await;
    }
    clock.set(start + Duration::days(15));
    TestApp::expect_json(app.purchase(&m.admin_key, buyer, "late", 10_000).await, 200).await;
    let view = app
        .get_json(&format!("/api/v1/campaigns/{cid}"), &m.admin_key)
        .await;
    let r = &view["results"];
    assert_eq!(r["complete"], true);
    assert_eq!(r["sent"]["members"], 8);
    assert_eq!(r["sent"]["converted"], 1);
    assert_eq!(r["sent"]["purchases"], 2);
    assert_eq!(r["sent"]["revenue"], 2_500);
    assert_eq!(r["holdout"]["members"], 2);
    assert_eq!(r["holdout"]["converted"], 1);
    assert_eq!(r["holdout"]["purchases"], 1);
    assert_eq!(r["holdout"]["revenue"], 700);
    // 1/8 - 1/2, and the documented interval.
    let d = r["conversion_difference"].as_f64().unwrap();
    assert!((d - (0.125 - 0.5)).abs() < 1e-9, "{r}");
    let se = (0.125f64 * 0.875 / 8.0 + 0.25 / 2.0).sqrt();
    let low = r["conversion_difference_ci95"]["low"].as_f64().unwrap();
    assert!((low - (d - 1.959_964 * se)).abs() < 1e-5, "{r}");
    // ROMI: 8 members sent 50 points worth 2 cents each and a 3-cent message, for
    // (2,500/8 - 700/2) x 8 = -300 cents of incremental revenue.
    assert_eq!(
        r["cost"],
        json!({"bonus_points": 800, "messages": 24, "total": 824, "point_value": 2}),
        "{r}"
    );
    assert_eq!(r["incremental_revenue"].as_f64(), Some(-300.0), "{r}");
    let romi = r["romi"].as_f64().unwrap();
    assert!((romi - (-300.0 - 824.0) / 824.0).abs() < 1e-12, "{r}");

    // The ledger: one `campaign` activity per sent member.
    let acts = app
        .get_json(&format!("/api/v1/members/{buyer}/activities"), &m.admin_key)
        .await;
    let campaign_rows: Vec<&Value> = acts["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "campaign")
        .collect();
    assert_eq!(campaign_rows.len(), 1);
    assert_eq!(campaign_rows[0]["points"], 50);
    app.verify_ledger(&m.admin_key).await;

    // Listed, newest first; too late to cancel.
    let list = app
        .get_json(&format!("/api/v1/programs/{pid}/campaigns"), &m.admin_key)
        .await;
    assert_eq!(list["campaigns"][0]["id"], cid.as_str());
    assert_eq!(list["campaigns"][0]["targeted"], 10);
    assert_eq!(list["next_cursor"], Value::Null);
    let res = app
        .post_json(
            &format!("/api/v1/campaigns/{cid}/cancel"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
}

/// The job on its own connection (two of these race in the test).
fn job_at(url: &str, at: DateTime<Utc>) -> usize {
    let mut conn = PgConnection::establish(url).unwrap();
    passfold::jobs::campaigns::Campaigns {
        channels: Channels::new(true),
    }
    .run(&mut conn, at)
    .unwrap()
}

#[tokio::test]
async fn quiet_hours_move_a_send_to_the_morning_and_cancel_stops_it() {
    let (apns, google) = (ApnsMock::start().await, GoogleMock::start().await);
    // 23:30 in Moscow.
    let late = noon_today() + Duration::hours(8) + Duration::minutes(30);
    let clock = Clock::manual(late);
    let app = spawn(clock.clone(), &apns, &google).await;
    app.stop_workers().await;
    let m = app.create_merchant("Quiet");
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Tea", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 1, "timezone": "Europe/Moscow"}),
        )
        .await,
        201,
    )
    .await;
    let pid = id_of(&program).to_string();
    let member = app.enroll(&m.admin_key, &pid, "Ann").await;
    let other = app.enroll(&m.admin_key, &pid, "Bob").await;
    let body = |ids: Vec<&str>| {
        json!({"audience": {"member_ids": ids}, "holdout_percent": 0,
               "message": {"ru": "Доброе утро"}})
    };
    let created = TestApp::expect_json(
        create_campaign(&app, &m.admin_key, &pid, "q-1", &body(vec![id_of(&member)])).await,
        201,
    )
    .await;
    let cid = id_of(&created).to_string();
    // The next 09:00 in Moscow: 06:00 UTC tomorrow.
    let morning = Utc.from_utc_datetime(
        &(late.date_naive() + Duration::days(1))
            .and_hms_opt(6, 0, 0)
            .unwrap(),
    );
    let send_at: DateTime<Utc> = created["send_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(send_at, morning, "{created}");
    // A send_at asked for in the night moves the same way; one in the day stays.
    let asked = TestApp::expect_json(
        create_campaign(
            &app,
            &m.admin_key,
            &pid,
            "q-2",
            &json!({"audience": {"member_ids": [id_of(&other)]}, "message": {"en": "Hi"},
                    "send_at": (morning + Duration::hours(16)).to_rfc3339()}),
        )
        .await,
        201,
    )
    .await;
    let moved: DateTime<Utc> = asked["send_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(moved, morning + Duration::days(1));
    assert_eq!(asked["holdout_percent"], 10, "the default");
    // Cancelled before it goes: never sent.
    let cancelled = TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/campaigns/{}/cancel", id_of(&asked)),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled");
    // Cancelling again answers the same.
    let again = app
        .post_json(
            &format!("/api/v1/campaigns/{}/cancel", id_of(&asked)),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), 200);

    // The night and just before 09:00: nothing goes.
    assert_eq!(run_job(&app, late), 0);
    assert_eq!(run_job(&app, morning - Duration::minutes(1)), 0);
    let view = app
        .get_json(&format!("/api/v1/campaigns/{cid}"), &m.admin_key)
        .await;
    assert_eq!(view["state"], "scheduled");
    assert_eq!(view["results"], Value::Null);
    // A worker that comes by only at 22:00 the next evening waits for the morning after.
    assert_eq!(run_job(&app, morning + Duration::hours(13)), 0);
    // `worker --once --at` runs the job (and drains the outbox).
    let report = crate::worker_once::run_at(&app, &apns, morning + Duration::days(1)).await;
    assert_eq!(report["jobs"]["campaigns"], 1, "{report}");
    let view = app
        .get_json(&format!("/api/v1/campaigns/{cid}"), &m.admin_key)
        .await;
    assert_eq!(view["state"], "sent");
    assert_eq!(view["targeted"], 1);
    assert_eq!(view["held_out"], 0);
    // Ann's pass has no device and no Google save: counted, and the message waits on it.
    assert_eq!(view["no_pass"], 1);
    let pass = app.pass_json_of(&member).await;
    let back = pass["storeCard"]["backFields"].as_array().unwrap();
    let note = back
        .iter()
        .find(|f| f["key"] == "merchant_message")
        .unwrap();
    assert_eq!(note["value"], "Доброе утро");
    assert_eq!(
        note["label"], "Tea",
        "the program's name when no header is given"
    );
    // The cancelled one stays cancelled.
    let view = app
        .get_json(
            &format!("/api/v1/campaigns/{}", id_of(&asked)),
            &m.admin_key,
        )
        .await;
    assert_eq!(view["state"], "cancelled");
    assert_eq!(view["targeted"], 0);
}

#[tokio::test]
async fn creation_is_idempotent_and_checked() {
    let (apns, google) = (ApnsMock::start().await, GoogleMock::start().await);
    let app = spawn(Clock::manual(noon_today()), &apns, &google).await;
    app.stop_workers().await;
    let m = app.create_merchant("Idem");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&program).to_string();
    let body = json!({"audience": {"stages": ["registered"]}, "message": {"en": "Welcome"},
                      "send_at": (noon_today() + Duration::days(3)).to_rfc3339()});
    let first = create_campaign(&app, &m.admin_key, &pid, "same", &body).await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let first: Value = first.json().await.unwrap();
    let again = create_campaign(&app, &m.admin_key, &pid, "same", &body).await;
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
    let other = json!({"audience": {"stages": ["lapsed"]}, "message": {"en": "Welcome"}});
    assert_problem(
        create_campaign(&app, &m.admin_key, &pid, "same", &other).await,
        422,
        "idempotency-key-reuse",
    )
    .await;
    let list = app
        .get_json(&format!("/api/v1/programs/{pid}/campaigns"), &m.admin_key)
        .await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);

    // Refusals name their fields.
    let cases: BTreeMap<&str, Value> = BTreeMap::from([
        ("/audience", json!({"audience": {}, "message": {"en": "x"}})),
        (
            "/audience/groups/0",
            json!({"audience": {"groups": ["vip"]}, "message": {"en": "x"}}),
        ),
        (
            "/audience/cells/0",
            json!({"audience": {"cells": ["411"]}, "message": {"en": "x"}}),
        ),
        (
            "/audience/tiers/0",
            json!({"audience": {"tiers": ["Platinum"]}, "message": {"en": "x"}}),
        ),
        (
            "/audience/member_ids/0",
            json!({"audience": {"member_ids": [uuid::Uuid::new_v4()]}, "message": {"en": "x"}}),
        ),
        (
            "/holdout_percent",
            json!({"audience": {"stages": ["repeat"]}, "holdout_percent": 51, "message": {"en": "x"}}),
        ),
        (
            "/message",
            json!({"audience": {"stages": ["repeat"]}, "message": {}}),
        ),
        (
            "/message/en",
            json!({"audience": {"stages": ["repeat"]}, "message": {"en": "  "}}),
        ),
        (
            "/send_at",
            json!({"audience": {"stages": ["repeat"]}, "message": {"en": "x"}, "send_at": "soon"}),
        ),
        (
            "/bonus_points",
            json!({"audience": {"stages": ["repeat"]}, "message": {"en": "x"}, "bonus_points": -5}),
        ),
        (
            "/cost_per_message",
            json!({"audience": {"stages": ["repeat"]}, "message": {"en": "x"}, "cost_per_message": 100_000_001}),
        ),
    ]);
    for (i, (pointer, body)) in cases.iter().enumerate() {
        let res = create_campaign(&app, &m.admin_key, &pid, &format!("bad-{i}"), body).await;
        let problem = assert_problem(res, 422, "validation").await;
        assert!(
            problem.to_string().contains(&format!("\"{pointer}\"")),
            "{pointer}: {problem}"
        );
    }
    // A pos key may not; an unknown program or campaign is 404.
    assert_problem(
        create_campaign(&app, &m.pos_key, &pid, "pos", &body).await,
        403,
        "forbidden",
    )
    .await;
    let nobody = uuid::Uuid::new_v4();
    assert_problem(
        create_campaign(&app, &m.admin_key, &nobody.to_string(), "nobody", &body).await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_with_key(&format!("/api/v1/campaigns/{nobody}"), &m.admin_key)
            .await,
        404,
        "not-found",
    )
    .await;
    // Another merchant's campaign is not found either.
    let stranger = app.create_merchant("Stranger");
    assert_problem(
        app.get_with_key(
            &format!("/api/v1/campaigns/{}", id_of(&first)),
            &stranger.admin_key,
        )
        .await,
        404,
        "not-found",
    )
    .await;
    // Pages of one.
    create_campaign(
        &app,
        &m.admin_key,
        &pid,
        "second",
        &json!({"audience": {"stages": ["lapsed"]}, "message": {"en": "x"}}),
    )
    .await;
    let page = app
        .get_json(
            &format!("/api/v1/programs/{pid}/campaigns?limit=1"),
            &m.admin_key,
        )
        .await;
    assert_eq!(page["campaigns"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = app
        .get_json(
            &format!("/api/v1/programs/{pid}/campaigns?limit=1&cursor={cursor}"),
            &m.admin_key,
        )
        .await;
    // Both made at the same instant (the clock stands still): the id breaks the tie.
    let seen: BTreeSet<&str> = [&page, &next]
        .iter()
        .map(|p| p["campaigns"][0]["id"].as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), 2);
    assert!(seen.contains(first["id"].as_str().unwrap()));
    assert_eq!(next["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_worker_killed_between_batches_leaves_the_rest_to_the_next_run() {
    let (apns, google) = (ApnsMock::start().await, GoogleMock::start().await);
    let at = noon_today();
    let app = spawn(Clock::manual(at), &apns, &google).await;
    app.stop_workers().await;
    let m = app.create_merchant("Restart");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&program).to_string();
    let mut ids = Vec::new();
    for i in 0..5 {
        let member = app.enroll(&m.admin_key, &pid, &format!("M{i}")).await;
        ids.push(id_of(&member).to_string());
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(app.member_points(&m.admin_key, id).await);
    }
    let created = TestApp::expect_json(
        create_campaign(
            &app,
            &m.admin_key,
            &pid,
            "restart",
            &json!({"audience": {"member_ids": ids}, "holdout_percent": 0,
                    "message": {"en": "Thanks"}, "bonus_points": 10}),
        )
        .await,
        201,
    )
    .await;
    let cid = id_of(&created).to_string();
    // One batch of two, then the worker dies.
    let sent = passfold::campaigns::sending::run_with(
        &mut app.db.connect(),
        Channels::new(true),
        at,
        (2, 1),
    )
    .unwrap();
    assert_eq!(sent, 2);
    let view = app
        .get_json(&format!("/api/v1/campaigns/{cid}"), &m.admin_key)
        .await;
    assert_eq!(view["state"], "sending");
    assert_eq!(view["sent"], 2);
    // Too late to cancel now.
    let res = app
        .post_json(
            &format!("/api/v1/campaigns/{cid}/cancel"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    // The next run sends the rest, and only the rest.
    assert_eq!(run_job(&app, at), 3);
    assert_eq!(run_job(&app, at), 0);
    let view = app
        .get_json(&format!("/api/v1/campaigns/{cid}"), &m.admin_key)
        .await;
    assert_eq!(view["state"], "sent");
    assert_eq!(view["sent"], 5);
    assert_eq!(view["targeted"], 5);
    assert_eq!(view["no_pass"], 5);
    for (id, points) in ids.iter().zip(&before) {
        assert_eq!(app.member_points(&m.admin_key, id).await, points + 10);
    }
    app.verify_ledger(&m.admin_key).await;
}
