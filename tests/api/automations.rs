//! Automations: a standing rule on entering "cooling" fires once per member, run by two
//! `worker --once` processes at the same instant, again after a restart and later in its
//! period; the held-out firings get nothing; the results count purchases after each
//! firing in both groups. Who cools, and when, is worked out here from the purchase dates
//! the test chose and the program's `cooling_days`.

use crate::apns_mock::ApnsMock;
use crate::helpers::{assert_problem, id_of, replayed, spawn_app_on, TestApp};
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Command;

/// Noon UTC today: within sending hours in UTC, close to real time (APNs tokens and the
/// idempotency window run on real time).
fn noon_today() -> DateTime<Utc> {
    Utc.from_utc_datetime(&Utc::now().date_naive().and_hms_opt(12, 0, 0).unwrap())
}

/// The real binary's `worker --once --at` as of `at`, off the test's runtime thread (which
/// serves the APNs stand-in); its report.
async fn worker_once(db_url: &str, apns: &ApnsMock, at: DateTime<Utc>) -> Value {
    let (url, apns_url, ca) = (db_url.to_string(), apns.url.clone(), apns.ca_file.clone());
    tokio::task::spawn_blocking(move || worker_once_on(&url, &apns_url, &ca, at))
        .await
        .unwrap()
}

/// Firings of the automation: (member id, held out, sent).
fn firings(app: &TestApp, automation: &str) -> Vec<(String, bool, bool)> {
    #[derive(QueryableByName)]
    struct F {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        member_id: uuid::Uuid,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        held_out: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        sent: bool,
    }
    diesel::sql_query(
        "SELECT member_id, held_out, sent_at IS NOT NULL AS sent FROM automation_firings
          WHERE automation_id = $1 ORDER BY member_id",
    )
    .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(automation).unwrap())
    .load::<F>(&mut app.db.connect())
    .unwrap()
    .into_iter()
    .map(|f| (f.member_id.to_string(), f.held_out, f.sent))
    .collect()
}

#[tokio::test]
async fn a_cooling_rule_fires_once_per_member_across_workers_restarts_and_its_period() {
    let apns = ApnsMock::start().await;
    let start = noon_today();
    let clock = Clock::manual(start);
    let (url, ca) = (apns.url.clone(), apns.ca_file.clone());
    let app = spawn_app_on(clock.clone(), move |s| {
        s.apns = passfold::configuration::ApnsSettings {
            url,
            ca_file: Some(ca),
        };
    })
    .await;
    let m = app.create_merchant("Automations");
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 10, "cooling_days": 30, "lapsed_days": 120}),
        )
        .await,
        201,
    )
    .await;
    let pid = id_of(&program).to_string();
    // Days before `start` of each member's one purchase: eight bought 20 days ago (cooling
    // 30 days after, at start + 10), three 2 days ago (cooling at start + 28), two never.
    let bought: Vec<Option<i64>> = (0..8)
        .map(|_| Some(20))
        .chain((0..3).map(|_| Some(2)))
        .chain([None, None])
        .collect();
    let token = |i: usize| format!("{:064x}", 7_700 + i);
    let (mut ids, mut members) = (Vec::new(), Vec::new());
    for (i, days) in bought.iter().enumerate() {
        let member = app.enroll(&m.admin_key, &pid, &format!("Member {i}")).await;
        let id = id_of(&member).to_string();
        if let Some(days) = days {
            app.pos_ok(
                &format!("/api/v1/members/{id}/purchases"),
                &m.admin_key,
                &format!("buy-{i}"),
                &json!({"amount": 2_000, "currency": "EUR",
                        "purchased_at": (start - Duration::days(*days)).to_rfc3339()}),
            )
            .await;
        }
        let pass = app.pass_json_of(&member).await;
        assert_eq!(
            app.register_device(&pass, &format!("phone-{i}"), &token(i))
                .await,
            201
        );
        ids.push(id);
        members.push(member);
    }
    let rule = json!({
        "name": "We miss you",
        "trigger": {"kind": "stage_entered", "stage": "cooling"},
        "holdout_percent": 50,
        "message": {"en": "We miss you: +50 points for a week", "ru": "Скучаем: +50 баллов на неделю"},
        "header": {"en": "Come back"},
        "bonus_points": 50,
        "bonus_expire_days": 7,
    });
    let path = format!("/api/v1/programs/{pid}/automations");
    let created = app.pos(&path, &m.admin_key, "rule-1", &rule).await;
    let created = TestApp::expect_json(created, 201).await;
    assert_eq!(
        created["trigger"],
        json!({"kind": "stage_entered", "stage": "cooling"})
    );
    assert_eq!(
        created["period_days"], 90,
        "the stage rule's default period"
    );
    assert_eq!(created["enabled"], true);
    let again = app.pos(&path, &m.admin_key, "rule-1", &rule).await;
    assert!(replayed(&again));
    let aid = id_of(&created).to_string();
    // From here on only the worker processes run jobs and deliver.
    app.stop_workers().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let url = app.db.url.clone();
    let points_before: Vec<i64> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(app.member_points(&m.admin_key, id).await);
        }
        v
    };
    // Let the purchases' own pushes settle before counting.
    worker_once(&url, &apns, start).await;
    let pushes_before: Vec<usize> = {
        let mut v = Vec::new();
        for i in 0..ids.len() {
            v.push(apns.accepted_for(&token(i)).await);
        }
        v
    };
    assert!(firings(&app, &aid).is_empty(), "nobody cools yet");

    // Eleven days on, two workers at the same instant: the eight cool and fire, once.
    let day11 = start + Duration::days(11);
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking({
            let (url, apns_url, ca) = (url.clone(), apns.url.clone(), apns.ca_file.clone());
            move || worker_once_on(&url, &apns_url, &ca, day11)
        }),
        tokio::task::spawn_blocking({
            let (url, apns_url, ca) = (url.clone(), apns.url.clone(), apns.ca_file.clone());
            move || worker_once_on(&url, &apns_url, &ca, day11)
        }),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let sent_by_both =
        a["jobs"]["automations"].as_i64().unwrap() + b["jobs"]["automations"].as_i64().unwrap();
    let fired = firings(&app, &aid);
    let cooling: BTreeSet<String> = ids[..8].iter().cloned().collect();
    assert_eq!(
        fired.iter().map(|f| f.0.clone()).collect::<BTreeSet<_>>(),
        cooling,
        "exactly the members who cooled"
    );
    assert_eq!(fired.len(), 8, "one firing each");
    let held: BTreeSet<String> = fired.iter().filter(|f| f.1).map(|f| f.0.clone()).collect();
    assert!(
        fired.iter().all(|f| f.1 != f.2),
        "held out xor sent: {fired:?}"
    );
    assert_eq!(sent_by_both, (8 - held.len()) as i64, "{a} {b}");
    // A restart at the same instant and the next day fire and send nothing more.
    let again = worker_once(&url, &apns, day11).await;
    assert_eq!(again["jobs"]["automations"], 0, "{again}");
    let next_day = worker_once(&url, &apns, day11 + Duration::days(1)).await;
    assert_eq!(next_day["jobs"]["automations"], 0, "{next_day}");
    assert_eq!(firings(&app, &aid).len(), 8);

    for (i, id) in ids.iter().enumerate() {
        let sent = cooling.contains(id) && !held.contains(id);
        let pushes = apns.accepted_for(&token(i)).await - pushes_before[i];
        assert_eq!(pushes, usize::from(sent), "member {i}: pushes");
        let pass = app.pass_json_of(&members[i]).await;
        let back = pass["storeCard"]["backFields"].as_array().unwrap();
        let note = back.iter().find(|f| f["key"] == "merchant_message");
        let points = app.member_points(&m.admin_key, id).await;
        if sent {
            let note = note.expect("the message on a sent member's pass");
            assert_eq!(note["label"], "Come back");
            assert_eq!(note["value"], "We miss you: +50 points for a week");
            assert_eq!(note["changeMessage"], "%@");
            assert_eq!(points, points_before[i] + 50, "member {i}");
        } else {
            assert!(note.is_none(), "member {i}: {note:?}");
            assert_eq!(points, points_before[i], "member {i}");
        }
    }
    // The bonus lasts the rule's seven days, not the program's rules.
    let lots: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = {
        use passfold::schema::point_lots::dsl as l;
        l::point_lots
            .filter(l::points.eq(50))
            .select((l::earned_at, l::expires_at))
            .load(&mut app.db.connect())
            .unwrap()
    };
    assert_eq!(lots.len(), 8 - held.len());
    for (earned, expires) in &lots {
        assert_eq!(
            (*earned, *expires),
            (day11, Some(day11 + Duration::days(7)))
        );
    }

    // A sent member and a held-out one buy an hour after the firing; the results count
    // each in its group.
    clock.set(day11 + Duration::hours(1));
    let sent_member = ids[..8].iter().find(|id| !held.contains(*id)).cloned();
    let held_member = held.iter().next().cloned();
    for (k, (who, amount)) in [(sent_member.clone(), 3_000), (held_member.clone(), 1_000)]
        .into_iter()
        .enumerate()
    {
        if let Some(id) = who {
            app.pos_ok(
                &format!("/api/v1/members/{id}/purchases"),
                &m.admin_key,
                &format!("after-{k}"),
                &json!({"amount": amount, "currency": "EUR"}),
            )
            .await;
        }
    }
    let view = app
        .get_json(&format!("/api/v1/automations/{aid}"), &m.admin_key)
        .await;
    let n_held = held.len() as i64;
    assert_eq!(view["targeted"], 8);
    assert_eq!(view["held_out"], n_held);
    assert_eq!(view["sent"], 8 - n_held);
    assert_eq!(view["with_apple_device"], 8 - n_held);
    assert_eq!(view["pushed_apple"], 8 - n_held, "{view}");
    assert_eq!(view["no_pass"], 0);
    let r = &view["results"];
    assert_eq!(r["sent"]["members"], 8 - n_held);
    assert_eq!(r["holdout"]["members"], n_held);
    if sent_member.is_some() {
        assert_eq!(r["sent"]["purchases"], 1, "{r}");
        assert_eq!(r["sent"]["revenue"], 3_000);
    }
    if held_member.is_some() {
        assert_eq!(r["holdout"]["purchases"], 1, "{r}");
        assert_eq!(r["holdout"]["revenue"], 1_000);
    }

    // 43 days on: the sent member who bought cooled again (two purchases: the program's
    // 30 days), within the rule's 90-day period, so not fired again; the three who bought
    // two days before the start cooled for the first time, and fire.
    let day43 = start + Duration::days(43);
    worker_once(&url, &apns, day43).await;
    let fired = firings(&app, &aid);
    let want: BTreeSet<String> = ids[..11].iter().cloned().collect();
    let got: BTreeSet<String> = fired.iter().map(|f| f.0.clone()).collect();
    assert_eq!(got, want, "the three newly cooling fired, nobody twice");
    assert_eq!(fired.len(), 11);
    if let Some(id) = &sent_member {
        let stage = app.member(&m.admin_key, id).await["lifecycle_stage"].clone();
        assert_eq!(stage, "cooling", "the sent buyer cooled again");
    }

    // Paused, it fires nothing; resumed, it fires only for what happens from then on.
    let paused = TestApp::expect_json(
        app.patch_json(
            &format!("/api/v1/automations/{aid}"),
            &m.admin_key,
            &json!({"enabled": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(paused["enabled"], false);
    let list = app.get_json(&path, &m.admin_key).await;
    assert_eq!(list["automations"][0]["id"], aid.as_str());
    assert_eq!(list["automations"][0]["targeted"], 11);
    assert!(list["automations"][0]["results"].is_null());
    ledger_holds(&app, &m.admin_key).await;
}

/// `worker --once --at` on this thread.
fn worker_once_on(db_url: &str, apns_url: &str, ca: &std::path::Path, at: DateTime<Utc>) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_passfold"))
        .args(["worker", "--once", "--at", &at.to_rfc3339()])
        .env("DATABASE_URL", db_url)
        .env("APNS_URL", apns_url)
        .env("APNS_CA_FILE", ca)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run passfold worker --once");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

async fn ledger_holds(app: &TestApp, key: &str) {
    let report = app.verify_ledger(key).await;
    assert_eq!(report["problems"], json!([]), "{report}");
    assert!(report["members_checked"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn rules_are_checked_and_other_merchants_cannot_see_them() {
    let app = spawn_app_on(Clock::manual(noon_today()), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Rules");
    let other = app.create_merchant("Other");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&program).to_string();
    let path = format!("/api/v1/programs/{pid}/automations");
    let bad = app
        .pos(
            &path,
            &m.admin_key,
            "bad-1",
            &json!({"trigger": {"kind": "stage_entered", "stage": "asleep"},
                    "message": {"en": ""}, "holdout_percent": 90, "period_days": 0}),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    let pointers: BTreeSet<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect();
    for p in [
        "/trigger/stage",
        "/message/en",
        "/holdout_percent",
        "/period_days",
    ] {
        assert!(pointers.contains(p), "{p} in {pointers:?}");
    }
    let unknown = app
        .pos(
            &path,
            &m.admin_key,
            "bad-2",
            &json!({"trigger": {"kind": "full_moon"}, "message": {"en": "Hi"}}),
        )
        .await;
    assert!(unknown.status() == 400 || unknown.status() == 422);
    let nth = TestApp::expect_json(
        app.pos(
            &path,
            &m.admin_key,
            "ok-1",
            &json!({"trigger": {"kind": "nth_purchase", "n": 5}, "message": {"en": "Fifth!"},
                    "enabled": false}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(nth["trigger"], json!({"kind": "nth_purchase", "n": 5}));
    assert!(nth["period_days"].is_null(), "once per member");
    assert_eq!(nth["enabled"], false);
    assert_eq!(nth["holdout_percent"], 10);
    let id = id_of(&nth);
    let res = app
        .get_with_key(&format!("/api/v1/automations/{id}"), &other.admin_key)
        .await;
    assert_problem(res, 404, "not-found").await;
    let res = app
        .patch_json(
            &format!("/api/v1/automations/{id}"),
            &other.admin_key,
            &json!({"enabled": true}),
        )
        .await;
    assert_problem(res, 404, "not-found").await;
    let resumed = TestApp::expect_json(
        app.patch_json(
            &format!("/api/v1/automations/{id}"),
            &m.admin_key,
            &json!({"enabled": true, "name": "Fifth visit"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(resumed["name"], "Fifth visit");
    assert_eq!(resumed["enabled"], true);
}

#[tokio::test]
async fn purchase_and_birthday_rules_fire_for_what_happens_after_they_exist() {
    let start = noon_today();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |s| s.webhooks_allow_private = true).await;
    app.stop_workers().await;
    let m = app.create_merchant("Triggers");
    // The merchant's CRM hears of each firing (what reaches a receiver is
    // tests/api/webhooks.rs's business; here, what is written with the firing).
    TestApp::expect_json(
        app.post_json(
            "/api/v1/webhooks",
            &m.admin_key,
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["automation.fired"]}),
        )
        .await,
        201,
    )
    .await;
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&program).to_string();
    let join = |name: &'static str, birth: Option<String>| {
        let app = &app;
        let (key, pid) = (m.admin_key.clone(), pid.clone());
        async move {
            let mut body = json!({"name": name});
            if let Some(b) = birth {
                body["birth_date"] = json!(b);
            }
            let res = app
                .post_json(&format!("/api/v1/programs/{pid}/members"), &key, &body)
                .await;
            id_of(&TestApp::expect_json(res, 201).await).to_string()
        }
    };
    // Today's birthday (born 1990), a buyer who bought once before the rules existed, and
    // a new buyer.
    let today = start.date_naive();
    let birthday = join("Birthday", Some(today.format("1990-%m-%d").to_string())).await;
    let old_buyer = join("Old buyer", None).await;
    let new_buyer = join("New buyer", None).await;
    let buy = |who: String, key: &'static str| {
        let app = &app;
        let admin = m.admin_key.clone();
        async move {
            app.pos_ok(
                &format!("/api/v1/members/{who}/purchases"),
                &admin,
                key,
                &json!({"amount": 1_500, "currency": "EUR"}),
            )
            .await;
        }
    };
    clock.set(start - Duration::hours(1));
    buy(old_buyer.clone(), "old-1").await;
    clock.set(start);
    let mut rules = Vec::new();
    for (k, trigger) in [
        json!({"kind": "first_purchase"}),
        json!({"kind": "nth_purchase", "n": 2}),
        json!({"kind": "birthday"}),
    ]
    .into_iter()
    .enumerate()
    {
        let res = app
            .pos(
                &format!("/api/v1/programs/{pid}/automations"),
                &m.admin_key,
                &format!("rule-{k}"),
                &json!({"trigger": trigger, "holdout_percent": 0,
                        "message": {"en": "Thank you"}}),
            )
            .await;
        rules.push(id_of(&TestApp::expect_json(res, 201).await).to_string());
    }
    clock.set(start + Duration::minutes(10));
    buy(new_buyer.clone(), "new-1").await;
    buy(old_buyer.clone(), "old-2").await;
    clock.set(start + Duration::minutes(20));
    buy(new_buyer.clone(), "new-2").await;

    let run = |at: DateTime<Utc>| {
        let url = app.db.url.clone();
        move || {
            use passfold::jobs::Job;
            let job = passfold::jobs::automations::Automations {
                channels: passfold::pass_events::Channels::new(false),
            };
            job.run(&mut PgConnection::establish(&url).unwrap(), at)
                .unwrap()
        }
    };
    let at = start + Duration::hours(1);
    let sent = tokio::task::spawn_blocking(run(at)).await.unwrap();
    let who =
        |rule: &str| -> BTreeSet<String> { firings(&app, rule).into_iter().map(|f| f.0).collect() };
    // The old buyer's first purchase came before the rule; their second is not a first.
    assert_eq!(who(&rules[0]), BTreeSet::from([new_buyer.clone()]));
    // Both made a second purchase after the rule existed.
    assert_eq!(
        who(&rules[1]),
        BTreeSet::from([new_buyer.clone(), old_buyer.clone()])
    );
    // The birthday began before the rule, but had not ended.
    assert_eq!(who(&rules[2]), BTreeSet::from([birthday.clone()]));
    assert_eq!(sent, 4, "holdout 0: every firing sent");
    let told: Vec<serde_json::Value> = {
        use passfold::schema::webhook_messages::dsl as w;
        w::webhook_messages
            .filter(w::type_.eq("automation.fired"))
            .select(w::data)
            .load(&mut app.db.connect())
            .unwrap()
    };
    let mut told: Vec<(String, String, bool)> = told
        .iter()
        .map(|d| {
            (
                d["automation_id"].as_str().unwrap().to_string(),
                d["member_id"].as_str().unwrap().to_string(),
                d["held_out"].as_bool().unwrap(),
            )
        })
        .collect();
    told.sort();
    let mut want = vec![
        (rules[0].clone(), new_buyer.clone(), false),
        (rules[1].clone(), new_buyer.clone(), false),
        (rules[1].clone(), old_buyer.clone(), false),
        (rules[2].clone(), birthday.clone(), false),
    ];
    want.sort();
    assert_eq!(told, want, "one automation.fired per firing");
    assert_eq!(tokio::task::spawn_blocking(run(at)).await.unwrap(), 0);
    // A year on the birthday fires again (its period is 300 days); the purchases never.
    let next_year = start + Duration::days(365);
    let next_year = if next_year.date_naive().format("%m-%d").to_string()
        == today.format("%m-%d").to_string()
    {
        next_year
    } else {
        start + Duration::days(366)
    };
    tokio::task::spawn_blocking(run(next_year)).await.unwrap();
    assert_eq!(firings(&app, &rules[2]).len(), 2);
    assert_eq!(firings(&app, &rules[0]).len(), 1);
    assert_eq!(firings(&app, &rules[1]).len(), 2);
}
