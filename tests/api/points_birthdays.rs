//! Birthdays and tier requalification: birth dates on members, birthday points once a year
//! on the local day, and tiers judged at the end of each period (down one level, with a
//! ledger row and a message on the card; kept by earning again).

use crate::apns_mock::ApnsMock;
use crate::helpers::{assert_problem, id_of, spawn_app_in, spawn_app_on, TestApp, TestDatabase};
use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::{json, Value};

async fn program(app: &TestApp, key: &str, tiers: Value, rules: Value) -> Value {
    let mut body = json!({
        "name": "Coffee Club",
        "template": "loyalty-default",
        "currency": "EUR",
        "points_per_unit": 10,
        "tiers": tiers,
    });
    for (k, v) in rules.as_object().unwrap() {
        body[k] = v.clone();
    }
    TestApp::expect_json(app.post_json("/api/v1/programs", key, &body).await, 201).await
}

async fn join(app: &TestApp, key: &str, program: &Value, name: &str, birth: &str) -> Value {
    let res = app
        .post_json(
            &format!("/api/v1/programs/{}/members", id_of(program)),
            key,
            &json!({"name": name, "birth_date": birth}),
        )
        .await;
    TestApp::expect_json(res, 201).await
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

fn birthdays(url: &str, at: DateTime<Utc>) -> usize {
    let mut conn = PgConnection::establish(url).unwrap();
    passfold::jobs::birthdays::Birthdays {
        channels: Channels::new(false),
    }
    .run(&mut conn, at)
    .unwrap()
}

/// The message on a card as its pass.json shows it (the back field Wallet announces).
async fn card_message(app: &TestApp, member: &Value) -> Option<String> {
    let pass = app.checked_pass(member).await.pass_json;
    let back = pass["storeCard"]["backFields"].as_array()?;
    let note = back.iter().find(|f| f["key"] == "merchant_message")?;
    assert_eq!(note["changeMessage"], "%@");
    note["value"].as_str().map(String::from)
}

#[tokio::test]
async fn birth_dates_are_taken_shown_and_changed() {
    let app = crate::helpers::spawn_app().await;
    let m = app.create_merchant("Dates");
    let p = program(&app, &m.admin_key, json!([]), json!({})).await;
    let full = join(&app, &m.pos_key, &p, "Ann", "1990-05-17").await;
    assert_eq!(full["birth_date"], "1990-05-17");
    let leap = join(&app, &m.pos_key, &p, "Leo", "--02-29").await;
    assert_eq!(leap["birth_date"], "--02-29");
    let short = join(&app, &m.pos_key, &p, "Max", "12-31").await;
    assert_eq!(short["birth_date"], "--12-31");
    let none = app.enroll(&m.pos_key, id_of(&p), "Nil").await;
    assert_eq!(none["birth_date"], Value::Null);
    for bad in [
        "1990-02-29",
        "--04-31",
        "1990-13-01",
        "17.05.1990",
        "",
        "1899-01-01",
    ] {
        let res = app
            .post_json(
                &format!("/api/v1/programs/{}/members", id_of(&p)),
                &m.pos_key,
                &json!({"name": "Bad", "birth_date": bad}),
            )
            .await;
        let body = assert_problem(res, 422, "validation").await;
        assert_eq!(body["errors"][0]["pointer"], "/birth_date", "{bad}: {body}");
    }
    // Set later by a till, changed, forgotten; the member answers show it.
    let path = format!("/api/v1/members/{}", id_of(&none));
    let set = app
        .patch_json(&path, &m.pos_key, &json!({"birth_date": "--07-04"}))
        .await;
    assert_eq!(
        TestApp::expect_json(set, 200).await["birth_date"],
        "--07-04"
    );
    assert_eq!(
        app.get_json(&path, &m.pos_key).await["birth_date"],
        "--07-04"
    );
    let changed = app
        .patch_json(&path, &m.admin_key, &json!({"birth_date": "1985-07-05"}))
        .await;
    assert_eq!(
        TestApp::expect_json(changed, 200).await["birth_date"],
        "1985-07-05"
    );
    // Absent: nothing changes.
    let same = app.patch_json(&path, &m.pos_key, &json!({})).await;
    assert_eq!(
        TestApp::expect_json(same, 200).await["birth_date"],
        "1985-07-05"
    );
    let bad = app
        .patch_json(&path, &m.pos_key, &json!({"birth_date": "1985-02-30"}))
        .await;
    let body = assert_problem(bad, 422, "validation").await;
    assert_eq!(body["errors"][0]["pointer"], "/birth_date");
    let cleared = app
        .patch_json(&path, &m.pos_key, &json!({"birth_date": null}))
        .await;
    assert_eq!(
        TestApp::expect_json(cleared, 200).await["birth_date"],
        Value::Null
    );
    // Another merchant's member is not found; an unknown field is refused.
    let other = app.create_merchant("Other");
    let res = app
        .patch_json(&path, &other.pos_key, &json!({"birth_date": "--01-01"}))
        .await;
    assert_problem(res, 404, "not-found").await;
    let res = app
        .patch_json(&path, &m.pos_key, &json!({"name": "Renamed"}))
        .await;
    assert_eq!(res.status(), 400);
    let list = app
        .get_json(
            &format!("/api/v1/programs/{}/members", id_of(&p)),
            &m.pos_key,
        )
        .await;
    let leo = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Leo")
        .cloned()
        .unwrap();
    assert_eq!(leo["birth_date"], "--02-29");
}

#[tokio::test]
async fn birthday_points_come_once_a_year_on_the_local_day() {
    let start = Utc.with_ymd_and_hms(2026, 5, 10, 10, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Birthdays");
    let tiers = json!([{"name": "Bronze", "min_points": 0}]);
    let moscow = program(
        &app,
        &m.admin_key,
        tiers.clone(),
        json!({"birthday_points": 100, "points_expire_days": 60, "timezone": "Europe/Moscow"}),
    )
    .await;
    assert_eq!(moscow["birthday_points"], 100);
    let utc = program(
        &app,
        &m.admin_key,
        tiers.clone(),
        json!({"birthday_points": 100}),
    )
    .await;
    let none = program(&app, &m.admin_key, tiers, json!({})).await;
    let ann = join(&app, &m.pos_key, &moscow, "Ann", "1990-05-17").await;
    let bob = join(&app, &m.pos_key, &utc, "Bob", "--05-17").await;
    let cy = join(&app, &m.pos_key, &none, "Cy", "--05-17").await;
    let (ann_id, bob_id) = (id_of(&ann).to_string(), id_of(&bob).to_string());

    // 22:00 UTC on the 16th is already the 17th in Moscow, not yet in London.
    let eve = Utc.with_ymd_and_hms(2026, 5, 16, 22, 0, 0).unwrap();
    clock.set(eve);
    assert_eq!(birthdays(&app.db.url, eve - Duration::hours(2)), 0);
    assert_eq!(birthdays(&app.db.url, eve), 1);
    assert_eq!(birthdays(&app.db.url, eve), 0, "twice at one instant");
    assert_eq!(app.member_points(&m.pos_key, &ann_id).await, 100);
    assert_eq!(app.member_points(&m.pos_key, &bob_id).await, 0);
    let list = activities(&app, &m.pos_key, &ann_id).await;
    let granted = of_type(&list, "birthday");
    assert_eq!(granted.len(), 1, "{list:?}");
    assert_eq!(granted[0]["points"], 100);
    // Dated at the start of the day in Moscow, whenever the job ran that day.
    let at: DateTime<Utc> = granted[0]["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, Utc.with_ymd_and_hms(2026, 5, 16, 21, 0, 0).unwrap());
    assert_eq!(
        card_message(&app, &ann).await.as_deref(),
        Some("Happy birthday! 100 points are yours")
    );

    // The 17th in UTC: Bob, and Bob only, even with two workers racing.
    let day = Utc.with_ymd_and_hms(2026, 5, 17, 1, 0, 0).unwrap();
    clock.set(day);
    let (a, b) = (app.db.url.clone(), app.db.url.clone());
    let (ra, rb) = (
        std::thread::spawn(move || birthdays(&a, day)),
        std::thread::spawn(move || birthdays(&b, day)),
    );
    assert_eq!(ra.join().unwrap() + rb.join().unwrap(), 1);
    assert_eq!(birthdays(&app.db.url, day + Duration::hours(12)), 0);
    assert_eq!(app.member_points(&m.pos_key, &bob_id).await, 100);
    assert_eq!(app.member_points(&m.pos_key, &ann_id).await, 100);
    assert_eq!(
        app.member_points(&m.pos_key, id_of(&cy)).await,
        0,
        "no birthday_points"
    );

    // Changing the date does not make a second birthday this year.
    let res = app
        .patch_json(
            &format!("/api/v1/members/{bob_id}"),
            &m.pos_key,
            &json!({"birth_date": "--05-18"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(birthdays(&app.db.url, day + Duration::days(1)), 0);

    // Catch-up: a worker down on the day grants it up to a week late, not later.
    let late = join(&app, &m.pos_key, &utc, "Dee", "--05-12").await;
    let too_late = join(&app, &m.pos_key, &utc, "Eve", "--05-09").await;
    assert_eq!(birthdays(&app.db.url, day + Duration::hours(2)), 1);
    assert_eq!(app.member_points(&m.pos_key, id_of(&late)).await, 100);
    assert_eq!(app.member_points(&m.pos_key, id_of(&too_late)).await, 0);

    // A year on: Ann (the 17th), Bob (his new date, the 18th) and Dee (within the week),
    // once each.
    let next = Utc.with_ymd_and_hms(2027, 5, 18, 12, 0, 0).unwrap();
    clock.set(next);
    assert_eq!(birthdays(&app.db.url, next), 3);
    assert_eq!(birthdays(&app.db.url, next), 0);
    let list = activities(&app, &m.pos_key, &ann_id).await;
    assert_eq!(of_type(&list, "birthday").len(), 2);
    // The first year's lot (60 days) expired meanwhile; the new one holds 100.
    let mut conn = app.db.connect();
    passfold::jobs::expiry::Expiry {
        channels: Channels::new(false),
    }
    .run(&mut conn, next)
    .unwrap();
    assert_eq!(app.member_points(&m.pos_key, &ann_id).await, 100);
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn february_29_birthdays_are_kept_on_the_28th_in_common_years() {
    let start = Utc.with_ymd_and_hms(2027, 2, 20, 10, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Leap");
    let p = program(
        &app,
        &m.admin_key,
        json!([]),
        json!({"birthday_points": 29, "timezone": "Europe/Moscow"}),
    )
    .await;
    let leo = join(&app, &m.pos_key, &p, "Leo", "2000-02-29").await;
    let ann = join(&app, &m.pos_key, &p, "Ann", "--02-28").await;
    let may = join(&app, &m.pos_key, &p, "May", "--03-01").await;
    let feb28 = Utc.with_ymd_and_hms(2027, 2, 28, 6, 0, 0).unwrap();
    clock.set(feb28);
    assert_eq!(birthdays(&app.db.url, feb28 - Duration::days(1)), 0);
    assert_eq!(birthdays(&app.db.url, feb28), 2);
    assert_eq!(
        birthdays(&app.db.url, feb28 + Duration::days(1)),
        1,
        "March 1"
    );
    for member in [&leo, &ann, &may] {
        assert_eq!(app.member_points(&m.pos_key, id_of(member)).await, 29);
    }
    // In a leap year the 29th is the day: not the 28th.
    let leap28 = Utc.with_ymd_and_hms(2028, 2, 28, 12, 0, 0).unwrap();
    clock.set(leap28);
    assert_eq!(birthdays(&app.db.url, leap28), 1, "only Ann");
    assert_eq!(birthdays(&app.db.url, leap28 + Duration::days(1)), 1, "Leo");
    assert_eq!(app.member_points(&m.pos_key, id_of(&leo)).await, 58);
    assert_eq!(
        card_message(&app, &leo).await.as_deref(),
        Some("Happy birthday! 29 points are yours")
    );
    app.verify_ledger(&m.admin_key).await;
}

use crate::worker_once::run_at as worker_once;

#[tokio::test]
async fn tiers_not_earned_again_drop_one_level_per_period() {
    let mock = ApnsMock::start().await;
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let clock = Clock::manual(t0);
    let (url, ca) = (mock.url.clone(), mock.ca_file.clone());
    let app = spawn_app_in(TestDatabase::create(), clock.clone(), move |s| {
        s.apns = passfold::configuration::ApnsSettings {
            url,
            ca_file: Some(ca),
        }
    })
    .await;
    let m = app.create_merchant("Tiers");
    let p = program(
        &app,
        &m.admin_key,
        json!([
            {"name": "Bronze", "min_points": 0},
            {"name": "Silver", "min_points": 150},
            {"name": "Gold", "min_points": 1000}
        ]),
        json!({"tier_window_days": 30}),
    )
    .await;
    assert_eq!(p["tier_window_days"], 30);
    let ann = app.enroll(&m.pos_key, id_of(&p), "Ann").await;
    let bob = app.enroll(&m.pos_key, id_of(&p), "Bob").await;
    let (ann_id, bob_id) = (id_of(&ann).to_string(), id_of(&bob).to_string());
    let pass = app.pass_json_of(&ann).await;
    let token = format!("{:064x}", 1515);
    assert_eq!(app.register_device(&pass, "phone", &token).await, 201);
    let buy = |id: &str, key: &str, amount: i64| {
        let (path, body) = (
            format!("/api/v1/members/{id}/purchases"),
            json!({"amount": amount, "currency": "EUR"}),
        );
        let (app, k, key) = (&app, m.pos_key.clone(), key.to_string());
        async move { app.pos_ok(&path, &k, &key, &body).await }
    };
    // Ann reaches Gold at once: the card says so.
    let bought = buy(&ann_id, "a1", 10_000).await;
    assert_eq!(bought["tier"], "Gold");
    assert!(
        mock.wait_for(&token, 1, std::time::Duration::from_secs(5))
            .await
    );
    assert_eq!(
        card_message(&app, &ann).await.as_deref(),
        Some("Your tier is now Gold")
    );
    assert_eq!(buy(&bob_id, "b1", 2000).await["tier"], "Silver");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // From here on only `worker --once` runs jobs and delivers.
    app.stop_workers().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let pushed = mock.accepted_for(&token).await;

    // Bob earns again within his period (150 points, Silver's threshold); Ann does not.
    clock.set(t0 + Duration::days(20));
    assert_eq!(buy(&bob_id, "b2", 1500).await["tier"], "Silver");
    let review = t0 + Duration::days(30);
    let before = worker_once(&app, &mock, review - Duration::hours(1)).await;
    assert_eq!(before["jobs"]["requalify"], 0, "{before}");
    let report = worker_once(&app, &mock, review + Duration::days(1)).await;
    assert_eq!(report["jobs"]["requalify"], 2, "both judged: {report}");
    // Gold to Silver, not to Bronze, though nothing was earned.
    let now_ann = app.member(&m.pos_key, &ann_id).await;
    assert_eq!(now_ann["tier"], "Silver");
    assert_eq!(app.member(&m.pos_key, &bob_id).await["tier"], "Silver");
    assert_eq!(mock.accepted_for(&token).await, pushed + 1);
    let list = activities(&app, &m.pos_key, &ann_id).await;
    let moves = of_type(&list, "tier");
    assert_eq!(moves.len(), 1, "{list:?}");
    assert_eq!(
        (moves[0]["points"].as_i64(), moves[0]["tier_after"].as_str()),
        (Some(0), Some("Silver"))
    );
    let at: DateTime<Utc> = moves[0]["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, review, "dated at the end of the period");
    assert_eq!(
        card_message(&app, &ann).await.as_deref(),
        Some("Your tier is now Silver")
    );
    assert!(of_type(&activities(&app, &m.pos_key, &bob_id).await, "tier").is_empty());

    // Again at the same instant: the period was judged.
    let again = worker_once(&app, &mock, review + Duration::days(1)).await;
    assert_eq!(again["jobs"]["requalify"], 0, "{again}");
    assert_eq!(mock.accepted_for(&token).await, pushed + 1);

    // The next period passes without earning: two workers at once judge each member once.
    let second = review + Duration::days(31);
    let (a, b) = tokio::join!(
        worker_once(&app, &mock, second),
        worker_once(&app, &mock, second)
    );
    assert_eq!(
        a["jobs"]["requalify"].as_u64().unwrap() + b["jobs"]["requalify"].as_u64().unwrap(),
        2,
        "{a} {b}"
    );
    assert_eq!(app.member(&m.pos_key, &ann_id).await["tier"], "Bronze");
    assert_eq!(app.member(&m.pos_key, &bob_id).await["tier"], "Bronze");
    assert_eq!(
        of_type(&activities(&app, &m.pos_key, &ann_id).await, "tier").len(),
        2
    );
    assert_eq!(
        of_type(&activities(&app, &m.pos_key, &bob_id).await, "tier").len(),
        1
    );
    assert!(
        mock.wait_for(&token, pushed + 2, std::time::Duration::from_secs(5))
            .await
    );
    app.verify_ledger(&m.admin_key).await;
}
