//! Personal data (issue 17): a member's export names everything held about them, consents
//! are recorded with time and source, and erasure leaves the person nowhere (database,
//! API, other members' exports) while the ledger still adds up.

use crate::helpers::{assert_problem, id_of, spawn_app_with, TestApp, TestMerchant};
use crate::pass_check::check_pkpass;
use crate::webhook_receiver::Receiver;
use diesel::prelude::*;
use serde_json::{json, Value};

/// A program paying 100 points to a referrer and 30 to the friend when the friend joins.
async fn referral_program(app: &TestApp, m: &TestMerchant) -> Value {
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 10, "tiers": [{"name": "Bronze", "min_points": 0}],
                "welcome_points": 50,
                "referral": {"referrer_points": 100, "referee_points": 30, "trigger": "join"}
            }),
        )
        .await;
    TestApp::expect_json(res, 201).await
}

async fn enroll_with(app: &TestApp, key: &str, program: &Value, body: Value) -> Value {
    let path = format!("/api/v1/programs/{}/members", id_of(program));
    TestApp::expect_json(app.post_json(&path, key, &body).await, 201).await
}

async fn export_of(app: &TestApp, m: &TestMerchant, member: &str) -> Value {
    app.get_json(&format!("/api/v1/members/{member}/export"), &m.admin_key)
        .await
}

#[tokio::test]
async fn the_export_holds_profile_consents_ledger_devices_referrals_and_purchases() {
    let app = spawn_app_with(|_| {}).await;
    let m = app.create_merchant("Export Cafe");
    let program = referral_program(&app, &m).await;
    let ann = enroll_with(
        &app,
        &m.admin_key,
        &program,
        json!({"name": "Ann Export", "email": "ann@example.org", "phone": "+49 151 1234567",
               "external_id": "crm-1", "birth_date": "1990-05-17",
               "consents": {"marketing": true}}),
    )
    .await;
    let ann_id = id_of(&ann).to_string();
    let bob = enroll_with(
        &app,
        &m.pos_key,
        &program,
        json!({"name": "Bob Friend", "referral_code": ann["referral_code"]}),
    )
    .await;
    let res = app.purchase(&m.pos_key, &ann_id, "export-p1", 1250).await;
    assert_eq!(res.status(), 200);
    let pass = app.pass_json_of(&ann).await;
    let push_token = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    assert_eq!(
        app.register_device(&pass, "device-export", push_token)
            .await,
        201
    );
    let res = app
        .patch_json(
            &format!("/api/v1/members/{ann_id}"),
            &m.pos_key,
            &json!({"consents": {"marketing_email": false}}),
        )
        .await;
    assert_eq!(res.status(), 200);

    // Admin only.
    let res = app
        .get_with_key(&format!("/api/v1/members/{ann_id}/export"), &m.pos_key)
        .await;
    assert_problem(res, 403, "forbidden").await;

    let export = export_of(&app, &m, &ann_id).await;
    assert_eq!(export["format"], "passfold.member-export.v1");
    let profile = &export["member"];
    assert_eq!(profile["name"], "Ann Export");
    assert_eq!(profile["email"], "ann@example.org");
    assert_eq!(profile["phone"], "+491511234567");
    assert_eq!(profile["external_id"], "crm-1");
    assert_eq!(profile["birth_date"], "1990-05-17");
    assert_eq!(profile["card_number"], ann["card_number"]);
    assert_eq!(profile["tier"], "Bronze");
    // 50 welcome + 100 for referring Bob + 125 earned.
    assert_eq!(profile["points"], 275);

    // Consents: terms implied by joining, marketing given (api: an admin key), then
    // email marketing withdrawn by a till (pos), each with its time.
    let consents: Vec<(String, bool, String)> = export["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["at"].as_str().is_some_and(|t| t.contains('T')), "{c}");
            (
                c["kind"].as_str().unwrap().to_string(),
                c["granted"].as_bool().unwrap(),
                c["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("terms", true, "api"),
        ("marketing_push", true, "api"),
        ("marketing_email", true, "api"),
        ("marketing_email", false, "pos"),
    ]
    .map(|(k, g, s)| (k.to_string(), g, s.to_string()));
    assert_eq!(consents, expected);
    let bob_export = export_of(&app, &m, id_of(&bob)).await;
    assert_eq!(bob_export["consents"][0]["source"], "pos");

    // Ledger: the activities and lots, and the purchase.
    let types: Vec<&str> = export["point_activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["welcome", "referral", "earn"], "{export}");
    assert_eq!(export["point_lots"].as_array().unwrap().len(), 3);
    assert_eq!(export["purchases"][0]["amount"], 1250);
    assert_eq!(export["purchases"][0]["points_earned"], 125);

    // The pass and the device, without their secrets.
    assert_eq!(export["passes"][0]["serial_number"], ann["serial"]);
    assert_eq!(
        export["apple_devices"][0]["device_library_identifier"],
        "device-export"
    );
    let text = export.to_string();
    assert!(!text.contains(push_token), "push token exported: {text}");
    let token = pass["authenticationToken"].as_str().unwrap();
    assert!(!text.contains(token), "pass token exported");
    assert!(export["passes"][0].get("authentication_token").is_none());

    // Referrals made, and received on the friend's side.
    assert_eq!(export["referrals"]["made"][0]["referee_id"], bob["id"]);
    assert_eq!(
        bob_export["referrals"]["received"][0]["referrer_id"],
        ann["id"]
    );
    assert!(export["segment"].is_object() || export["segment"].is_null());
    for section in [
        "campaigns",
        "surveys",
        "webhook_messages",
        "audit_log",
        "stage_changes",
    ] {
        assert!(export[section].is_array(), "{section}: {export}");
    }

    // Another merchant's key sees nothing.
    let other = app.create_merchant("Elsewhere");
    let res = app
        .get_with_key(
            &format!("/api/v1/members/{ann_id}/export"),
            &other.admin_key,
        )
        .await;
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn every_table_naming_a_member_or_a_pass_is_covered_by_the_export() {
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
    }
    let app = spawn_app_with(|_| {}).await;
    let mut conn = app.db.connect();
    let tables: Vec<Table> = diesel::sql_query(
        "SELECT DISTINCT c.table_name::text AS table_name
           FROM information_schema.columns c
           JOIN information_schema.tables t
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
            AND c.column_name = ANY($1) ORDER BY 1",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(
        passfold::privacy::export::MEMBER_COLUMNS,
    )
    .load(&mut conn)
    .unwrap();
    let covered: Vec<&str> = passfold::privacy::export::TABLES
        .iter()
        .map(|(t, _)| *t)
        .collect();
    let missing: Vec<&str> = tables
        .iter()
        .map(|t| t.table_name.as_str())
        .filter(|t| !covered.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "tables naming a member or a pass that privacy::export::TABLES does not cover: {missing:?}"
    );
}

#[tokio::test]
async fn the_join_page_records_the_terms_with_the_address_and_browser() {
    let app = spawn_app_with(|_| {}).await;
    let m = app.create_merchant("Join Cafe");
    let program = referral_program(&app, &m).await;
    let ann = enroll_with(&app, &m.pos_key, &program, json!({"name": "Ann Referrer"})).await;
    let link = format!("/r/{}", ann["referral_code"].as_str().unwrap());
    let page = app.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let visitor = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pf_visitor="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a visitor cookie");
    let html = page.text().await.unwrap();
    let start = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = html[start..].split('"').next().unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", "Jo Joiner"),
            ("email", "jo@example.org"),
            ("consent", "yes"),
            ("csrf", csrf),
        ])
        .finish();
    let res = app
        .client
        .post(app.url(&link))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("pf_visitor={visitor}"))
        .header("user-agent", "PrivacyTest/1.0 (Phone)")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let found = app
        .get_json(
            &format!(
                "/api/v1/programs/{}/members?q=jo@example.org",
                id_of(&program)
            ),
            &m.admin_key,
        )
        .await;
    let jo = id_of(&found["members"][0]).to_string();
    let export = export_of(&app, &m, &jo).await;
    let consent = &export["consents"][0];
    assert_eq!(consent["kind"], "terms");
    assert_eq!(consent["granted"], true);
    assert_eq!(consent["source"], "join_page");
    assert_eq!(consent["ip"], "127.0.0.1");
    assert_eq!(consent["user_agent"], "PrivacyTest/1.0 (Phone)");
    assert_eq!(export["consents"].as_array().unwrap().len(), 1);
}

/// Every place in the database (every column of every table, bytes decoded) that holds
/// any of `needles`, as `table.column: needle`.
fn found_in_database(app: &TestApp, needles: &[&str]) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        data_type: String,
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.connect();
    let columns: Vec<Column> = diesel::sql_query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name,
                c.data_type::text AS data_type
           FROM information_schema.columns c
           JOIN information_schema.tables t
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
          ORDER BY 1, 2",
    )
    .load(&mut conn)
    .unwrap();
    assert!(columns.len() > 100, "the whole schema is searched");
    let mut found = Vec::new();
    for c in &columns {
        let value = if c.data_type == "bytea" {
            format!("encode(\"{}\", 'escape')", c.column_name)
        } else {
            format!("\"{}\"::text", c.column_name)
        };
        for needle in needles {
            let n: Count = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM \"{}\" WHERE strpos(lower({value}), lower($1)) > 0",
                c.table_name
            ))
            .bind::<diesel::sql_types::Text, _>(*needle)
            .get_result(&mut conn)
            .unwrap();
            if n.n > 0 {
                found.push(format!("{}.{}: {needle}", c.table_name, c.column_name));
            }
        }
    }
    found
}

#[tokio::test]
async fn an_erased_member_is_nowhere_and_the_ledger_still_adds_up() {
    let app = spawn_app_with(|s| s.webhooks_allow_private = true).await;
    let receiver = Receiver::start().await;
    let m = app.create_merchant("Erasure Cafe");
    let res = app
        .post_json(
            "/api/v1/webhooks",
            &m.admin_key,
            &json!({"url": receiver.url, "events": [
                "member.created", "member.updated", "member.erased", "points.changed",
                "purchase.recorded", "referral.joined", "pass.installed", "pass.removed"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let program = referral_program(&app, &m).await;
    let zeb = enroll_with(
        &app,
        &m.admin_key,
        &program,
        json!({"name": "Zebulon Quixote", "email": "zq-unique@example.org",
               "phone": "+1 555 019 9123", "external_id": "zq-ext-4242",
               "birth_date": "1977-03-14", "consents": {"marketing": true}}),
    )
    .await;
    let zeb_id = id_of(&zeb).to_string();
    let old_card = zeb["card_number"].as_str().unwrap().to_string();
    let code = zeb["referral_code"].as_str().unwrap().to_string();
    let friend = enroll_with(
        &app,
        &m.pos_key,
        &program,
        json!({"name": "Fay Friend", "referral_code": code}),
    )
    .await;
    for (key, amount) in [("zq-p1", 2000), ("zq-p2", 990)] {
        assert_eq!(
            app.purchase(&m.pos_key, &zeb_id, key, amount)
                .await
                .status(),
            200
        );
    }
    app.pos_ok(
        &format!("/api/v1/members/{zeb_id}/points"),
        &m.admin_key,
        "zq-adjust",
        &json!({"delta": 5, "reason": "sorry, Zebulon Quixote"}),
    )
    .await;
    let res = app
        .post_json(
            &format!("/api/v1/members/{zeb_id}/messages"),
            &m.admin_key,
            &json!({"header": "Hello Zebulon", "body": "Happy birthday, Zebulon Quixote!"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let pass = app.pass_json_of(&zeb).await;
    assert_eq!(
        app.register_device(&pass, "device-zq", "00ff00ff00ff00ff")
            .await,
        201
    );
    // The messages about Zebulon exist (they were written with their causes) and some
    // have gone out already.
    receiver
        .wait_for_kinds(&["member.created", "purchase.recorded", "pass.installed"])
        .await;
    let needles = [
        "Zebulon",
        "Quixote",
        "zq-unique",
        "5550199123",
        "zq-ext-4242",
        old_card.as_str(),
    ];
    assert!(
        !found_in_database(&app, &needles).is_empty(),
        "the search finds what is there"
    );
    let points_before = app.member_points(&m.admin_key, &zeb_id).await;
    let friend_before = export_of(&app, &m, id_of(&friend)).await;

    let res = app
        .delete_with_key(&format!("/api/v1/members/{zeb_id}"), &m.pos_key)
        .await;
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .delete_with_key(&format!("/api/v1/members/{zeb_id}"), &m.admin_key)
        .await;
    assert_eq!(res.status(), 204);

    // Nowhere in the database.
    let left = found_in_database(&app, &needles);
    assert!(left.is_empty(), "still held after erasure: {left:?}");

    // Not in the API: the member (wiped, points kept), searches, lists, activities, the
    // friend's export; the old card number finds nobody.
    let erased = app.member(&m.admin_key, &zeb_id).await;
    assert_eq!(erased["name"], "Erased member");
    assert!(erased["email"].is_null() && erased["phone"].is_null());
    assert!(erased["external_id"].is_null() && erased["birth_date"].is_null());
    assert!(erased["erased_at"].is_string());
    assert_ne!(erased["card_number"], old_card.as_str());
    assert_eq!(erased["points"], points_before);
    let program_id = id_of(&program);
    let mut answers = vec![erased.to_string()];
    for q in [
        "Zebulon",
        "zq-unique",
        "5550199123",
        "zq-ext-4242",
        &old_card,
        "Erased",
    ] {
        let found = app
            .get_json(
                &format!("/api/v1/programs/{program_id}/members?q={q}"),
                &m.admin_key,
            )
            .await;
        assert_eq!(found["members"], json!([]), "search {q}");
    }
    let found = app
        .get_json(
            &format!("/api/v1/members?card_number={old_card}"),
            &m.pos_key,
        )
        .await;
    assert_eq!(found["members"], json!([]));
    answers.push(
        app.get_json(
            &format!("/api/v1/programs/{program_id}/members"),
            &m.admin_key,
        )
        .await
        .to_string(),
    );
    answers.push(
        app.get_json(
            &format!("/api/v1/members/{zeb_id}/activities"),
            &m.admin_key,
        )
        .await
        .to_string(),
    );
    answers.push(
        app.get_json(&format!("/api/v1/members/{zeb_id}/referrals"), &m.admin_key)
            .await
            .to_string(),
    );
    answers.push(export_of(&app, &m, id_of(&friend)).await.to_string());
    let own_export = export_of(&app, &m, &zeb_id).await;
    answers.push(own_export.to_string());
    for answer in &answers {
        for needle in &needles {
            assert!(!answer.contains(needle), "{needle} in {answer}");
        }
    }
    // The friend's export still names the referral (by ids).
    assert_eq!(
        friend_before["referrals"]["received"],
        export_of(&app, &m, id_of(&friend)).await["referrals"]["received"]
    );
    // The ledger is whole.
    assert_eq!(own_export["purchases"].as_array().unwrap().len(), 2);
    app.verify_ledger(&m.admin_key).await;

    // The pass the device fetches is void and names nobody; the device is still
    // registered (so the push and the fetch can happen) until the grace days are over.
    let res = app
        .client
        .get(app.latest_pass_url(&pass))
        .header("authorization", crate::helpers::apple_auth(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let fetched = check_pkpass(&res.bytes().await.unwrap());
    assert_eq!(fetched.pass_json["voided"], true, "{}", fetched.pass_json);
    for (file, bytes) in &fetched.files {
        let text = String::from_utf8_lossy(bytes);
        for needle in &needles {
            assert!(!text.contains(needle), "{needle} in the pass's {file}");
        }
    }
    let mut conn = app.db.connect();
    let registered = |conn: &mut diesel::PgConnection| -> i64 {
        passfold::schema::registrations::table
            .filter(passfold::schema::registrations::device_library_identifier.eq("device-zq"))
            .count()
            .get_result(conn)
            .unwrap()
    };
    assert_eq!(registered(&mut conn), 1);
    let later = chrono::Utc::now()
        + chrono::Duration::days(passfold::privacy::erasure::DEVICE_GRACE_DAYS + 1);
    assert_eq!(
        passfold::privacy::erasure::prune_devices(&mut conn, later).unwrap(),
        1
    );
    assert_eq!(registered(&mut conn), 0);

    // The card neither earns nor changes; the referral link is dead.
    let res = app.purchase(&m.pos_key, &zeb_id, "zq-p3", 500).await;
    assert_problem(res, 410, "gone").await;
    let res = app
        .patch_json(
            &format!("/api/v1/members/{zeb_id}"),
            &m.admin_key,
            &json!({"birth_date": "1977-03-14"}),
        )
        .await;
    assert_problem(res, 410, "gone").await;
    let res = app
        .client
        .get(app.url(&format!("/r/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Webhooks: told once, with ids only.
    let got = receiver
        .wait_for_kinds(&["member.erased", "pass.removed"])
        .await;
    let erasures: Vec<Value> = got
        .iter()
        .filter(|r| r.kind() == "member.erased")
        .map(|r| r.json())
        .collect();
    assert_eq!(erasures.len(), 1);
    let data = erasures[0]["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["erased_at", "id", "program_id"]);
    assert_eq!(data["id"], zeb_id.as_str());
    assert!(
        !got.iter().any(|r| r.kind() == "member.updated"),
        "an erasure is not a profile update"
    );

    // A second erasure answers the same and changes nothing.
    let before = (app.member(&m.admin_key, &zeb_id).await, {
        let mut e = export_of(&app, &m, &zeb_id).await;
        e.as_object_mut().unwrap().remove("exported_at");
        e
    });
    let res = app
        .delete_with_key(&format!("/api/v1/members/{zeb_id}"), &m.admin_key)
        .await;
    assert_eq!(res.status(), 204);
    let after = (app.member(&m.admin_key, &zeb_id).await, {
        let mut e = export_of(&app, &m, &zeb_id).await;
        e.as_object_mut().unwrap().remove("exported_at");
        e
    });
    assert_eq!(before, after);
    let res = app
        .delete_with_key(
            &format!("/api/v1/members/{}", uuid::Uuid::new_v4()),
            &m.admin_key,
        )
        .await;
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn an_erased_members_google_object_expires_and_names_nobody() {
    use crate::google_mock::GoogleMock;
    use std::time::Duration;
    let mock = GoogleMock::start().await;
    let app = crate::wallets::spawn_app_with_google(&mock).await;
    let (m, _, member) = app
        .merchant_with_member("Google Erasure", "Zebulon Quixote")
        .await;
    let id =
        crate::google_wallet::save_link_object_id(&member["google_save_url"], "loyaltyObjects");
    let oid = id.clone();
    assert!(
        mock.wait_until(
            move |g| g.stored("loyaltyObject", &oid).is_some(),
            Duration::from_secs(5)
        )
        .await,
        "the object reached Google"
    );
    let res = app
        .delete_with_key(&format!("/api/v1/members/{}", id_of(&member)), &m.admin_key)
        .await;
    assert_eq!(res.status(), 204);
    let oid = id.clone();
    let expired = mock
        .wait_until(
            move |g| {
                g.stored("loyaltyObject", &oid)
                    .is_some_and(|o| o["state"] == "EXPIRED")
            },
            Duration::from_secs(5),
        )
        .await;
    let stored = mock.stored("loyaltyObject", &id).unwrap();
    assert!(expired, "{stored}");
    assert!(!stored.to_string().contains("Zebulon"), "{stored}");
    assert_eq!(stored["accountName"], "Erased member");
}

#[tokio::test]
async fn a_friend_of_an_erased_referrer_still_buys_and_gets_their_share() {
    let app = spawn_app_with(|_| {}).await;
    let m = app.create_merchant("Referral Erasure");
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Club", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 10, "tiers": [{"name": "Bronze", "min_points": 0}],
                "welcome_points": 0,
                "referral": {"referrer_points": 100, "referee_points": 30,
                             "trigger": "first_purchase"}
            }),
        )
        .await;
    let program = TestApp::expect_json(res, 201).await;
    let ann = enroll_with(&app, &m.pos_key, &program, json!({"name": "Ann Gone"})).await;
    let bob = enroll_with(
        &app,
        &m.pos_key,
        &program,
        json!({"name": "Bob Stays", "referral_code": ann["referral_code"]}),
    )
    .await;
    let res = app
        .delete_with_key(&format!("/api/v1/members/{}", id_of(&ann)), &m.admin_key)
        .await;
    assert_eq!(res.status(), 204);
    let res = app.purchase(&m.pos_key, id_of(&bob), "bob-1", 1000).await;
    let change = TestApp::expect_json(res, 200).await;
    assert_eq!(change["points"], 130, "{change}");
    assert_eq!(change["referral"]["referrer_points"], 0, "{change}");
    assert_eq!(app.member_points(&m.admin_key, id_of(&ann)).await, 0);
    app.verify_ledger(&m.admin_key).await;
}
