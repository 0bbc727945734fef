//! CSV imports: members with their points, purchase history and gift cards, through the
//! API and the `imports` job of the test app's worker loop.

use crate::helpers::{assert_problem, id_of, spawn_app, TestApp};
use crate::pass_check::check_pkpass;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn upload(app: &TestApp, key: &str, query: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/imports?{query}")))
        .bearer_auth(key)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("upload")
}

/// Uploads the file and waits for its import to finish; returns the import.
async fn import(app: &TestApp, key: &str, query: &str, body: impl Into<Vec<u8>>) -> Value {
    let accepted = TestApp::expect_json(upload(app, key, query, body.into()).await, 202).await;
    let path = format!("/api/v1/imports/{}", id_of(&accepted));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = app.get_json(&path, key).await;
        if view["state"] == "done" || view["state"] == "failed" {
            return view;
        }
        assert!(Instant::now() < deadline, "import still {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn errors_of(view: &Value) -> Vec<(i64, Option<String>)> {
    view["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["column"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn count(app: &TestApp, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.connect();
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .expect("count")
        .n
}

const MEMBERS: &[u8] = b"external_id,name,email,phone,points,tier,birth_date,joined_at\n\
c-1,Anna Petrova,anna@example.com,+7 912 345 67 89,1200,Silver,1990-05-17,2021-03-01\n\
c-2,Boris,not-an-email,,10,,,\n\
c-3,\"Vera, with a comma\",vera@example.com,,0,Platinum,,\n\
c-4,Gleb,gleb@example.com,,-5,,,\n\
,Dasha,dasha@example.com,,5,,,\n\
c-6,Egor,egor@example.com,,5,,1990-13-45,\n\
c-7,Zhanna\x00,zhanna@example.com,,5,,,\n\
c-8,Ivan,ivan@example.com,,5,,,,extra\n\
c-9,\"Kira\nKirova\",kira@example.com,,300,,,\n\
c-10,Lev,,,0,,,\n\
c-11,Kira,kira@example.com,,300,,--02-29,2024-02-29T10:00:00Z\n";

#[tokio::test]
async fn a_members_file_imports_the_good_rows_reports_the_bad_and_runs_twice_without_doubling() {
    let app = spawn_app().await;
    let m = app.create_merchant("Importer");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&program).to_string();
    let query = format!("kind=members&program_id={pid}");

    // A dry run reports what a real run would, and writes nothing.
    let dry = import(
        &app,
        &m.admin_key,
        &format!("{query}&dry_run=true"),
        MEMBERS,
    )
    .await;
    assert_eq!(dry["state"], "done", "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rows"], 11, "{dry}");
    assert_eq!(dry["imported"], 0);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM members"), 0);
    let expected = vec![
        (3, Some("email".to_string())),
        (4, Some("tier".to_string())),
        (5, Some("points".to_string())),
        (6, Some("external_id".to_string())),
        (7, Some("birth_date".to_string())),
        (8, Some("name".to_string())),
        (9, None),
        // A quoted field spanning lines 10-11: the row is reported by its first line, and
        // the lines after it keep their numbers.
        (10, Some("name".to_string())),
    ];
    assert_eq!(errors_of(&dry), expected, "{dry}");
    assert_eq!(dry["error_count"], 8);

    let first = import(&app, &m.admin_key, &query, MEMBERS).await;
    assert_eq!(first["state"], "done", "{first}");
    assert_eq!(first["dry_run"], false);
    assert_eq!(
        (&first["rows"], &first["imported"], &first["skipped"]),
        (&json!(11), &json!(3), &json!(0)),
        "{first}"
    );
    assert_eq!(errors_of(&first), expected, "{first}");
    assert!(first["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("email"));
    assert!(first["finished_at"].is_string());

    // Anna: points, tier, contacts, birth date, joined date; an `import` activity; no
    // welcome points.
    let mut conn = app.db.connect();
    let anna = member_by_external_id(&mut conn, "c-1");
    let member = app
        .get_json(&format!("/api/v1/members/{anna}"), &m.admin_key)
        .await;
    assert_eq!(member["points"], 1200, "{member}");
    assert_eq!(member["lifetime_points"], 1200);
    assert_eq!(member["tier"], "Silver");
    assert_eq!(member["phone"], "+79123456789");
    assert_eq!(member["birth_date"], "1990-05-17");
    assert_eq!(member["created_at"], "2021-03-01T00:00:00Z");
    let activities = app
        .get_json(&format!("/api/v1/members/{anna}/activities"), &m.admin_key)
        .await;
    let kinds: Vec<&str> = activities["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["import"], "{activities}");
    assert_eq!(activities["activities"][0]["points"], 1200);
    // The pass shows the imported points.
    let pass = check_pkpass(
        &app.download_pass(member["apple_pass_url"].as_str().unwrap())
            .await,
    );
    let points = pass.pass_json["storeCard"]["headerFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "points")
        .cloned()
        .unwrap();
    assert_eq!(points["value"], 1200, "{}", pass.pass_json);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM point_lots WHERE points = 1200 AND remaining = 1200"
        ),
        1
    );
    let kira = member_by_external_id(&mut conn, "c-11");
    let kira = app
        .get_json(&format!("/api/v1/members/{kira}"), &m.admin_key)
        .await;
    assert_eq!(kira["points"], 300);
    assert_eq!(kira["birth_date"], "--02-29");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM point_activities WHERE type = 'welcome'"
        ),
        0
    );
    app.verify_ledger(&m.admin_key).await;

    // The same file again: everything present is skipped, nothing changes.
    let activities_before = count(&app, "SELECT count(*) AS n FROM point_activities");
    let second = import(&app, &m.admin_key, &query, MEMBERS).await;
    assert_eq!(
        (
            &second["imported"],
            &second["skipped"],
            &second["error_count"]
        ),
        (&json!(0), &json!(3), &json!(8)),
        "{second}"
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM members"), 3);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM passes"), 3);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM point_activities"),
        activities_before
    );

    // Purchase history attaches to members by external id, earning nothing.
    let purchases = b"external_id,amount,currency,purchased_at,purchase_id\n\
c-1,1250,EUR,2025-06-01T10:00:00Z,p-1\n\
c-1,990,EUR,2025-07-01,\n\
c-11,500,,2025-08-01T12:00:00+03:00,p-3\n\
nobody,100,EUR,2025-06-01,p-4\n\
c-1,100,USD,2025-06-01,p-5\n\
c-1,0,EUR,2025-06-01,p-6\n";
    let q = format!("kind=purchases&program_id={pid}");
    let bought = import(&app, &m.admin_key, &q, &purchases[..]).await;
    assert_eq!(
        (&bought["rows"], &bought["imported"], &bought["skipped"]),
        (&json!(6), &json!(3), &json!(0)),
        "{bought}"
    );
    assert_eq!(
        errors_of(&bought),
        vec![
            (5, Some("external_id".to_string())),
            (6, Some("currency".to_string())),
            (7, Some("amount".to_string())),
        ]
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM purchases WHERE member_id = '{anna}' AND points_earned = 0")
        ),
        2
    );
    let again = import(&app, &m.admin_key, &q, &purchases[..]).await;
    assert_eq!(
        (&again["imported"], &again["skipped"]),
        (&json!(0), &json!(3))
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM purchases"), 3);
    assert_eq!(app.member_points(&m.admin_key, &anna).await, 1200);
    app.verify_ledger(&m.admin_key).await;

    // The list pages through every import, newest first, exactly once.
    let page = app.get_json("/api/v1/imports?limit=3", &m.admin_key).await;
    assert_eq!(page["imports"].as_array().unwrap().len(), 3);
    assert_eq!(page["imports"][0]["kind"], "purchases");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let rest = app
        .get_json(
            &format!("/api/v1/imports?limit=3&cursor={cursor}"),
            &m.admin_key,
        )
        .await;
    assert_eq!(rest["imports"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(rest["imports"][1]["dry_run"], true);
}

fn member_by_external_id(conn: &mut diesel::PgConnection, external_id: &str) -> String {
    use diesel::prelude::*;
    passfold::schema::members::table
        .filter(passfold::schema::members::external_id.eq(external_id))
        .select(passfold::schema::members::id)
        .first::<uuid::Uuid>(conn)
        .expect("imported member")
        .to_string()
}

#[tokio::test]
async fn gift_cards_import_with_their_balances_and_a_second_run_changes_nothing() {
    let app = spawn_app().await;
    let m = app.create_merchant("Cards");
    let existing = app.issue_gift_card(&m.admin_key, "EUR", 100).await;
    let file = format!(
        "gan,balance,currency,pin,state\n\
4000000000000002,2500,EUR,12345678,active\n\
,1000,EUR,,\n\
4000000000000010,700,EUR,,inactive\n\
{},999,EUR,,active\n\
4000000000000003,10,EUR,,\n\
4000000000000028,10,XXY,,\n\
4000000000000036,-1,EUR,,\n\
4000000000000044,10,EUR,1234,paused\n",
        existing["gan"].as_str().unwrap()
    );
    let first = import(&app, &m.admin_key, "kind=gift_cards", file.clone()).await;
    assert_eq!(
        (&first["rows"], &first["imported"], &first["skipped"]),
        (&json!(8), &json!(3), &json!(1)),
        "{first}"
    );
    assert_eq!(
        errors_of(&first),
        vec![
            (6, Some("gan".to_string())),
            (7, Some("currency".to_string())),
            (8, Some("balance".to_string())),
            (9, Some("pin".to_string())),
            (9, Some("state".to_string())),
        ]
    );
    let card = app
        .get_json("/api/v1/gift-cards/4000000000000002", &m.admin_key)
        .await;
    assert_eq!(
        (&card["balance"], &card["state"]),
        (&json!(2500), &json!("active"))
    );
    let pass = check_pkpass(
        &app.download_pass(card["apple_pass_url"].as_str().unwrap())
            .await,
    );
    let balance = pass.pass_json["storeCard"]["headerFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "balance")
        .cloned()
        .unwrap();
    assert_eq!(balance["value"], 25.0, "{}", pass.pass_json);
    let activities = app
        .get_json(
            "/api/v1/gift-cards/4000000000000002/activities",
            &m.admin_key,
        )
        .await;
    assert_eq!(activities["activities"][0]["type"], "activate");
    assert_eq!(activities["activities"][0]["amount"], 2500);
    // The PIN given is the card's PIN.
    let checked = app
        .client
        .post(app.url("/api/v1/public/gift-cards/balance"))
        .json(&json!({"gan": "4000000000000002", "pin": "12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(TestApp::expect_json(checked, 200).await["balance"], 2500);
    let inactive = app
        .get_json("/api/v1/gift-cards/4000000000000010", &m.admin_key)
        .await;
    assert_eq!(
        (&inactive["balance"], &inactive["state"]),
        (&json!(700), &json!("deactivated"))
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM gift_cards"), 4);

    let second = import(&app, &m.admin_key, "kind=gift_cards", file).await;
    // The card without a GAN is recognised by the file's hash and its line.
    assert_eq!(
        (&second["imported"], &second["skipped"]),
        (&json!(0), &json!(4)),
        "{second}"
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM gift_cards"), 4);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM gift_card_activities WHERE gift_card_id IN (SELECT id FROM gift_cards WHERE gan = '4000000000000002')"), 1);
    // Another file asking for a card without a GAN on the same line gets a new card.
    let other = import(
        &app,
        &m.admin_key,
        "kind=gift_cards",
        "gan,balance,currency\n,1000,EUR\n",
    )
    .await;
    assert_eq!(
        (&other["imported"], &other["skipped"]),
        (&json!(1), &json!(0)),
        "{other}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM gift_cards WHERE balance = 1000"
        ),
        2
    );
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn twenty_thousand_members_with_one_percent_bad_import_in_seconds() {
    let app = spawn_app().await;
    let m = app.create_merchant("Big");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let mut file = String::from("external_id,name,email,points\n");
    let mut bad = Vec::new();
    for i in 0..20_000 {
        if i % 100 == 7 {
            file.push_str(&format!("x{i},Member {i},broken-{i},10\n"));
            bad.push(i + 2);
        } else {
            file.push_str(&format!("x{i},Member {i},m{i}@example.com,{}\n", i % 3000));
        }
    }
    let started = Instant::now();
    let view = import(
        &app,
        &m.admin_key,
        &format!("kind=members&program_id={}", id_of(&program)),
        file,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        (&view["rows"], &view["imported"], &view["error_count"]),
        (&json!(20_000), &json!(19_800), &json!(200)),
        "{}",
        view["failure"]
    );
    let lines: Vec<i64> = errors_of(&view).iter().map(|e| e.0).collect();
    assert_eq!(lines, bad);
    eprintln!("20,000 members imported in {took:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn an_external_id_twice_in_one_file_makes_one_member_from_its_first_row() {
    let app = spawn_app().await;
    let m = app.create_merchant("Twice");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let query = format!("kind=members&program_id={}", id_of(&program));
    // The repeats sit in the same batch as their first row (the batch's own dedup, not the
    // database's, must catch them): a later row neither replaces nor adds to the first.
    let file = "external_id,name,email,points\n\
d-1,Anna,anna@example.com,100\n\
d-2,Boris,,50\n\
d-1,Anna Again,anna2@example.com,300\n\
d-1,Anna Thrice,,7\n";
    let view = import(&app, &m.admin_key, &query, file).await;
    assert_eq!(
        (&view["imported"], &view["skipped"], &view["error_count"]),
        (&json!(2), &json!(2), &json!(0)),
        "{view}"
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM members"), 2);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM passes"), 2);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM members WHERE external_id = 'd-1' AND name = 'Anna' \
             AND email = 'anna@example.com' AND points = 100"
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT coalesce(sum(delta), 0)::bigint AS n FROM point_activities \
             WHERE type = 'import'"
        ),
        150
    );
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn an_import_stopped_between_batches_resumes_and_writes_every_row_once() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let m = app.create_merchant("Stopped");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let batch = passfold::imports::BATCH;
    let total = batch + 2000;
    let mut file = String::from("external_id,name,email,points\n");
    for i in 0..total {
        file.push_str(&format!("r-{i},Member {i},r{i}@example.com,{}\n", i % 7));
    }
    // The second batch fails inside its transaction, as a worker killed in the middle of
    // it would leave it: the first batch committed, nothing of the second.
    let mut conn = app.db.connect();
    conn.batch_execute(&format!(
        "CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'worker stopped'; END $$;
         CREATE TRIGGER test_boom BEFORE INSERT ON members FOR EACH ROW
           WHEN (NEW.external_id = 'r-{}') EXECUTE FUNCTION test_boom();",
        batch + 1000
    ))
    .unwrap();
    let accepted = TestApp::expect_json(
        upload(
            &app,
            &m.admin_key,
            &format!("kind=members&program_id={}", id_of(&program)),
            file.into_bytes(),
        )
        .await,
        202,
    )
    .await;
    let id = id_of(&accepted).to_string();
    let path = format!("/api/v1/imports/{id}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = app.get_json(&path, &m.admin_key).await;
        if view["rows"] == json!(batch) {
            break;
        }
        assert!(
            view["state"] == "queued" || view["state"] == "importing",
            "{view}"
        );
        assert!(Instant::now() < deadline, "import still {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The failed batch was tried, and its worker's lease keeps the import from being retried
    // at once: it stays at its checkpoint.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stopped = app.get_json(&path, &m.admin_key).await;
    assert_eq!(
        (&stopped["state"], &stopped["rows"], &stopped["imported"]),
        (&json!("importing"), &json!(batch), &json!(batch)),
        "{stopped}"
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM members"),
        batch as i64
    );
    // The cause is gone and the lease lapses: the next worker resumes at the checkpoint.
    conn.batch_execute(&format!(
        "DROP TRIGGER test_boom ON members;
         UPDATE imports SET leased_until = now() - interval '1 second' WHERE id = '{id}';"
    ))
    .unwrap();
    let view = loop {
        let view = app.get_json(&path, &m.admin_key).await;
        if view["state"] == "done" || view["state"] == "failed" {
            break view;
        }
        assert!(Instant::now() < deadline, "import still {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (
            &view["state"],
            &view["rows"],
            &view["imported"],
            &view["skipped"],
            &view["error_count"]
        ),
        (
            &json!("done"),
            &json!(total),
            &json!(total),
            &json!(0),
            &json!(0)
        ),
        "{view}"
    );
    let total = total as i64;
    assert_eq!(
        count(&app, "SELECT count(DISTINCT external_id) AS n FROM members"),
        total
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM members"), total);
    assert_eq!(
        count(&app, "SELECT count(DISTINCT member_id) AS n FROM passes"),
        total
    );
    let with_points = (0..total).filter(|i| i % 7 != 0).count() as i64;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM point_activities WHERE type = 'import'"
        ),
        with_points
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM point_lots"),
        with_points
    );
    // Each new pass is announced once (its creation queued for Google Wallet), none twice.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM (SELECT pass_id FROM outbox WHERE reason = 'created' \
             GROUP BY pass_id, channel HAVING count(*) > 1) AS twice"
        ),
        0
    );
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn hostile_uploads_are_refused_or_reported_never_a_500() {
    let app = spawn_app().await;
    let m = app.create_merchant("Hostile");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let other = app.create_merchant("Other");
    let query = format!("kind=members&program_id={}", id_of(&program));

    let empty = upload(&app, &m.admin_key, &query, Vec::new()).await;
    assert_problem(empty, 400, "validation").await;
    let wrong_type = app
        .client
        .post(app.url(&format!("/api/v1/imports?{query}")))
        .bearer_auth(&m.admin_key)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 415, "unsupported-media-type").await;
    let foreign = upload(
        &app,
        &other.admin_key,
        &query,
        b"external_id,name\nx,y\n".to_vec(),
    )
    .await;
    assert_problem(foreign, 404, "not-found").await;
    let pos = upload(
        &app,
        &m.pos_key,
        &query,
        b"external_id,name\nx,y\n".to_vec(),
    )
    .await;
    assert_eq!(pos.status(), 403);
    let bad_kind = upload(&app, &m.admin_key, "kind=orders", b"a\n".to_vec()).await;
    assert_problem(bad_kind, 422, "validation").await;

    // Bytes that are not CSV text: the header cannot be used, the import fails, saying why.
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let failed = import(&app, &m.admin_key, &query, binary).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["failure"].is_string());
    let unknown = import(
        &app,
        &m.admin_key,
        &query,
        "external_id,name,shoe_size\nx,y,42\n",
    )
    .await;
    assert_eq!(unknown["state"], "failed");
    assert!(
        unknown["failure"].as_str().unwrap().contains("shoe_size"),
        "{unknown}"
    );
    // Unbalanced quotes and bad UTF-8 inside a field: reported per row.
    let messy = import(
        &app,
        &m.admin_key,
        &query,
        b"external_id,name\nq1,\"open quote\nq2,\xff\xfe\n".to_vec(),
    )
    .await;
    assert_eq!(messy["state"], "done", "{messy}");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM members"), 0);
    let missing = app
        .get_with_key(
            &format!("/api/v1/imports/{}", uuid::Uuid::new_v4()),
            &m.admin_key,
        )
        .await;
    assert_eq!(missing.status(), 404);
    let foreign_view = app
        .get_with_key(
            &format!("/api/v1/imports/{}", id_of(&failed)),
            &other.admin_key,
        )
        .await;
    assert_eq!(foreign_view.status(), 404);
}
