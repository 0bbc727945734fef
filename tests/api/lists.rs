//! List endpoints and CSV exports (docs/INTEGRATIONS.md): every list pages through its rows
//! exactly once while rows are added between pages; `updated_since` syncs pick up changes;
//! filters narrow; bad cursors, limits and filters are 422; another merchant's rows never
//! show; exports parse as CSV, hold every row and carry pass links that work.

use crate::helpers::{assert_problem, id_of, spawn_app, TestApp, TestMerchant};
use diesel::connection::SimpleConnection;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Follows `next_cursor` from `path` (which has a query) with pages of `limit`, calling
/// `between` after each page; the items of every page in order.
async fn walk<F, Fut>(
    app: &TestApp,
    key: &str,
    path: &str,
    items: &str,
    limit: usize,
    mut between: F,
) -> Vec<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = app.get_json(&url, key).await;
        let rows = page[items].as_array().expect(items).clone();
        assert!(rows.len() <= limit, "{url}: {page}");
        all.extend(rows);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
        between().await;
    }
    panic!("{path} never ended");
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| id_of(r).to_string()).collect()
}

/// Each id at most once, and every one of `before` among them.
fn once_each(path: &str, got: &[String], before: &[String]) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "{path}: duplicates in {got:?}");
    for id in before {
        assert!(unique.contains(id), "{path}: {id} missing from {got:?}");
    }
}

async fn purchase(app: &TestApp, m: &TestMerchant, member: &str, n: usize) {
    let res = app
        .purchase(&m.pos_key, member, &format!("p-{member}-{n}"), 1000)
        .await;
    assert_eq!(res.status(), 200);
}

async fn redeem(app: &TestApp, m: &TestMerchant, gan: &str, n: usize) {
    let res = app
        .redeem(&m.pos_key, gan, &format!("r-{gan}-{n}"), 10)
        .await;
    assert_eq!(res.status(), 200);
}

/// A merchant with a program of 7 members (each with a purchase) and 5 gift cards (each
/// redeemed once): `(merchant, program id, member ids, gans)`.
async fn seeded(app: &TestApp, name: &str) -> (TestMerchant, String, Vec<String>, Vec<String>) {
    // Lists need no delivery; without it no Google retry (to a closed port) is logged.
    app.stop_workers().await;
    let m = app.create_merchant(name);
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let program = id_of(&program).to_string();
    let mut members = Vec::new();
    for i in 0..7 {
        let member = app
            .enroll(&m.pos_key, &program, &format!("Member {i}"))
            .await;
        purchase(app, &m, id_of(&member), 0).await;
        members.push(id_of(&member).to_string());
    }
    let mut gans = Vec::new();
    for _ in 0..5 {
        let card = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
        let gan = card["gan"].as_str().unwrap().to_string();
        redeem(app, &m, &gan, 0).await;
        gans.push(gan);
    }
    (m, program, members, gans)
}

#[tokio::test]
async fn every_list_pages_through_each_row_once_while_rows_are_added() {
    let app = &spawn_app().await;
    let (m, program, members, gans) = seeded(app, "Pages").await;
    let (m, program, members, gans) = (&m, program.as_str(), &members, &gans);
    let counter = std::cell::Cell::new(100);
    let next = || {
        counter.set(counter.get() + 1);
        counter.get()
    };

    // Members by name, and by joining time: a member joins after every page.
    for path in [
        format!("/api/v1/programs/{program}/members"),
        format!("/api/v1/programs/{program}/members?created_since=2000-01-01T00:00:00Z"),
        format!("/api/v1/programs/{program}/members?updated_since=2000-01-01T00:00:00Z"),
    ] {
        let got = walk(app, &m.pos_key, &path, "members", 2, || {
            let n = next();
            async move {
                app.enroll(&m.pos_key, program, &format!("Late {n}")).await;
            }
        })
        .await;
        once_each(&path, &ids(&got), members);
    }

    // Gift cards: a card is issued after every page.
    let cards = walk(
        app,
        &m.admin_key,
        "/api/v1/gift-cards",
        "gift_cards",
        2,
        || async move {
            app.issue_gift_card(&m.admin_key, "EUR", 100).await;
        },
    )
    .await;
    let card_ids: Vec<String> = cards.iter().map(|c| id_of(c).to_string()).collect();
    once_each("/api/v1/gift-cards", &card_ids, &[]);
    let listed_gans: HashSet<&str> = cards.iter().map(|c| c["gan"].as_str().unwrap()).collect();
    assert!(gans.iter().all(|g| listed_gans.contains(g.as_str())));
    assert!(
        cards.iter().all(|c| c.get("pin").is_none()),
        "no PINs in lists"
    );

    // The ledgers: a purchase or a redemption after every page.
    let before = ids(&app
        .get_json(
            &format!("/api/v1/programs/{program}/activities?limit=200"),
            &m.admin_key,
        )
        .await["activities"]
        .as_array()
        .unwrap()
        .clone());
    let path = format!("/api/v1/programs/{program}/activities");
    let got = walk(app, &m.admin_key, &path, "activities", 3, || {
        let n = next();
        async move { purchase(app, m, &members[0], n).await }
    })
    .await;
    once_each(&path, &ids(&got), &before);
    let seqs: Vec<&str> = got
        .iter()
        .map(|a| a["created_at"].as_str().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    let before = ids(&app
        .get_json("/api/v1/gift-card-activities?limit=200", &m.admin_key)
        .await["activities"]
        .as_array()
        .unwrap()
        .clone());
    let got = walk(
        app,
        &m.admin_key,
        "/api/v1/gift-card-activities",
        "activities",
        3,
        || {
            let n = next();
            async move { redeem(app, m, &gans[0], n).await }
        },
    )
    .await;
    once_each("/api/v1/gift-card-activities", &ids(&got), &before);

    // One member's and one card's ledger keep their shape, now with pages.
    let path = format!("/api/v1/members/{}/activities", members[1]);
    let before = ids(&app.get_json(&path, &m.pos_key).await["activities"]
        .as_array()
        .unwrap()
        .clone());
    let got = walk(app, &m.pos_key, &path, "activities", 1, || {
        let n = next();
        async move { purchase(app, m, &members[1], n).await }
    })
    .await;
    once_each(&path, &ids(&got), &before);
    let path = format!("/api/v1/gift-cards/{}/activities", gans[1]);
    let whole = app.get_json(&path, &m.pos_key).await;
    assert_eq!(whole["next_cursor"], Value::Null);
    let before = ids(whole["activities"].as_array().unwrap());
    // Oldest first: two read for each one added, so the walk catches up.
    let got = walk(app, &m.pos_key, &path, "activities", 2, || {
        let n = next();
        async move { redeem(app, m, &gans[1], n).await }
    })
    .await;
    once_each(&path, &ids(&got), &before);
    app.verify_ledger(&m.admin_key).await;
}

#[tokio::test]
async fn updated_since_syncs_changes_and_filters_narrow() {
    let app = spawn_app().await;
    let (m, program, members, gans) = seeded(&app, "Sync").await;
    let list = format!("/api/v1/programs/{program}/members");

    // First pass: everything changed since long ago, in order of change.
    let first = walk(
        &app,
        &m.admin_key,
        &format!("{list}?updated_since=2000-01-01T00:00:00Z"),
        "members",
        3,
        || async {},
    )
    .await;
    assert_eq!(first.len(), members.len());
    let times: Vec<&str> = first
        .iter()
        .map(|r| r["updated_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let high_water = *times.last().unwrap();

    // A member changes; the next pass from the high-water mark finds them.
    let changed = &members[2];
    app.pos_ok(
        &format!("/api/v1/members/{changed}/points"),
        &m.pos_key,
        "sync-adjust",
        &json!({"delta": 5, "reason": "sync test"}),
    )
    .await;
    let second = app
        .get_json(&format!("{list}?updated_since={high_water}"), &m.admin_key)
        .await;
    let second_ids = ids(second["members"].as_array().unwrap());
    assert!(second_ids.contains(changed), "{second}");
    assert!(
        second_ids.len() < members.len(),
        "only the recent changes: {second}"
    );
    let row = second["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| id_of(r) == changed)
        .unwrap();
    assert!(row["updated_at"].as_str().unwrap() > high_water);

    // created_since: nobody joined in the future; everyone since long ago.
    let future = app
        .get_json(
            &format!("{list}?created_since=2999-01-01T00:00:00Z"),
            &m.admin_key,
        )
        .await;
    assert_eq!(future["members"], json!([]));

    // Tier and segment: every member has 50 welcome points plus a purchase (Bronze); nobody
    // is Gold. `segment` takes a stage or an RFM group, as the members show them.
    let bronze = app
        .get_json(&format!("{list}?tier=Bronze&limit=200"), &m.admin_key)
        .await;
    assert_eq!(bronze["members"].as_array().unwrap().len(), members.len());
    let gold = app
        .get_json(&format!("{list}?tier=Gold"), &m.admin_key)
        .await;
    assert_eq!(gold["members"], json!([]));
    let everyone = bronze["members"].as_array().unwrap();
    for member in everyone {
        let group = member["rfm"]["group"].as_str().unwrap_or("no_purchases");
        for segment in [member["lifecycle_stage"].as_str().unwrap(), group] {
            let expected = everyone
                .iter()
                .filter(|o| {
                    o["lifecycle_stage"] == segment
                        || o["rfm"]["group"].as_str().unwrap_or("no_purchases") == segment
                })
                .count();
            let page = app
                .get_json(&format!("{list}?segment={segment}&limit=200"), &m.admin_key)
                .await;
            assert_eq!(
                page["members"].as_array().unwrap().len(),
                expected,
                "{segment}"
            );
        }
    }
    let lapsed = app
        .get_json(&format!("{list}?segment=lapsed"), &m.admin_key)
        .await;
    assert_eq!(lapsed["members"], json!([]), "nobody has lapsed yet");

    // Gift cards: by state, and changed since the first pass.
    let all_cards = app
        .get_json(
            "/api/v1/gift-cards?updated_since=2000-01-01T00:00:00Z&limit=200",
            &m.admin_key,
        )
        .await;
    let card_mark = all_cards["gift_cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["created_at"].as_str().unwrap().to_string())
        .max()
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/gift-cards/{}/deactivate", gans[3])))
        .bearer_auth(&m.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let deactivated = app
        .get_json("/api/v1/gift-cards?state=deactivated", &m.admin_key)
        .await;
    let gans_of = |page: &Value| -> Vec<String> {
        page["gift_cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["gan"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(gans_of(&deactivated), vec![gans[3].clone()]);
    let active = app
        .get_json("/api/v1/gift-cards?state=active&limit=200", &m.admin_key)
        .await;
    assert_eq!(gans_of(&active).len(), gans.len() - 1);
    let since = app
        .get_json(
            &format!("/api/v1/gift-cards?updated_since={card_mark}"),
            &m.admin_key,
        )
        .await;
    assert!(gans_of(&since).contains(&gans[3]), "{since}");

    // Activities by type and time.
    let redeems = app
        .get_json(
            "/api/v1/gift-card-activities?type=redeem&limit=200",
            &m.admin_key,
        )
        .await;
    let redeems = redeems["activities"].as_array().unwrap();
    assert_eq!(redeems.len(), gans.len());
    assert!(redeems
        .iter()
        .all(|a| a["type"] == "redeem" && a["gan"].is_string()));
    let earns = app
        .get_json(
            &format!("/api/v1/programs/{program}/activities?type=earn,welcome&limit=200"),
            &m.admin_key,
        )
        .await;
    let kinds: HashSet<&str> = earns["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, HashSet::from(["earn", "welcome"]));
    let none = app
        .get_json(
            &format!("/api/v1/programs/{program}/activities?since=2999-01-01T00:00:00Z"),
            &m.admin_key,
        )
        .await;
    assert_eq!(none["activities"], json!([]));
}

#[tokio::test]
async fn bad_cursors_limits_and_filters_are_422_and_other_merchants_see_nothing() {
    let app = spawn_app().await;
    let (m, program, members, gans) = seeded(&app, "Strict lists").await;
    let lists = [
        format!("/api/v1/programs/{program}/members?x=1"),
        format!("/api/v1/programs/{program}/members?updated_since=2000-01-01T00:00:00Z"),
        "/api/v1/gift-cards?x=1".to_string(),
        format!("/api/v1/programs/{program}/activities?x=1"),
        "/api/v1/gift-card-activities?x=1".to_string(),
        format!("/api/v1/members/{}/activities?x=1", members[0]),
        format!("/api/v1/gift-cards/{}/activities?x=1", gans[0]),
        format!("/api/v1/programs/{program}/campaigns?x=1"),
    ];
    // A name cursor (from the plain member list) is no instant or sequence number.
    let page = app
        .get_json(
            &format!("/api/v1/programs/{program}/members?limit=1"),
            &m.admin_key,
        )
        .await;
    let name_cursor = page["next_cursor"].as_str().unwrap().to_string();
    for list in &lists {
        for (param, value) in [
            ("cursor", "!!"),
            ("cursor", ""),
            ("cursor", &"A".repeat(3000)),
            ("limit", "0"),
            ("limit", "100001"),
            ("limit", "99999999999999999999999"),
            ("limit", "ten"),
        ] {
            let res = app
                .get_with_key(&format!("{list}&{param}={value}"), &m.admin_key)
                .await;
            let body = assert_problem(res, 422, "validation").await;
            assert!(
                body.to_string().contains(&format!("/{param}")),
                "{list} {param}: {body}"
            );
        }
        if !list.contains("/members?x=1") {
            let res = app
                .get_with_key(&format!("{list}&cursor={name_cursor}"), &m.admin_key)
                .await;
            assert_problem(res, 422, "validation").await;
        }
    }
    for bad in [
        format!("/api/v1/programs/{program}/members?created_since=yesterday"),
        format!("/api/v1/programs/{program}/members?updated_since=2026-13-01T00:00:00Z"),
        format!("/api/v1/programs/{program}/members?segment=vip"),
        format!("/api/v1/programs/{program}/members?segment=champions&stage=lapsed"),
        format!(
            "/api/v1/programs/{program}/members?tier={}",
            "x".repeat(101)
        ),
        "/api/v1/gift-cards?state=lost".to_string(),
        "/api/v1/gift-cards?created_since=0".to_string(),
        format!("/api/v1/programs/{program}/activities?type=earn,steal"),
        "/api/v1/gift-card-activities?since=tomorrow".to_string(),
        "/api/v1/exports/members.csv".to_string(),
        "/api/v1/exports/members.csv?program_id=nope".to_string(),
        "/api/v1/exports/gift-cards.csv?state=lost".to_string(),
        format!("/api/v1/exports/activities.csv?program_id={program}&since=x"),
    ] {
        let res = app.get_with_key(&bad, &m.admin_key).await;
        assert_problem(res, 422, "validation").await;
    }
    // A year PostgreSQL has no such thing as (0) is still an instant to compare with.
    let page = app
        .get_json(
            &format!("/api/v1/programs/{program}/members?updated_since=0000-01-01T00:00:00Z"),
            &m.admin_key,
        )
        .await;
    assert_eq!(page["members"].as_array().unwrap().len(), members.len());

    // Another merchant: the program's lists are 404, the merchant-wide lists empty.
    let other = app.create_merchant("Other");
    for path in [
        format!("/api/v1/programs/{program}/members"),
        format!("/api/v1/programs/{program}/activities"),
        format!("/api/v1/members/{}/activities", members[0]),
        format!("/api/v1/gift-cards/{}/activities", gans[0]),
        format!("/api/v1/exports/members.csv?program_id={program}"),
        format!("/api/v1/exports/activities.csv?program_id={program}"),
    ] {
        let res = app.get_with_key(&path, &other.admin_key).await;
        assert_problem(res, 404, "not-found").await;
    }
    for (path, items) in [
        ("/api/v1/gift-cards", "gift_cards"),
        ("/api/v1/gift-card-activities", "activities"),
    ] {
        let page = app.get_json(path, &other.admin_key).await;
        assert_eq!(page[items], json!([]), "{path}");
    }
    let csv = app
        .get_with_key("/api/v1/exports/gift-cards.csv", &other.admin_key)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1, "the header alone: {csv}");
    // Merchant-wide lists and exports need an admin key.
    for path in ["/api/v1/gift-cards", "/api/v1/exports/gift-cards.csv"] {
        let res = app.get_with_key(path, &m.pos_key).await;
        assert_problem(res, 403, "forbidden").await;
    }
}

/// The rows of a CSV answer, by the csv crate, after checking the content type.
async fn csv_rows(app: &TestApp, key: &str, path: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let res = app.get_with_key(path, key).await;
    assert_eq!(res.status(), 200, "{path}");
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let body = res.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_ref());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader.records().map(|r| r.expect("a CSV row")).collect();
    (header, rows)
}

#[tokio::test]
async fn exports_stream_every_row_as_csv_with_working_pass_links() {
    let app = spawn_app().await;
    let (m, program, members, _gans) = seeded(&app, "Exports").await;
    // A name a spreadsheet would run, and more members than one page of the export holds.
    app.enroll(&m.pos_key, &program, "=HYPERLINK(\"http://x\")")
        .await;
    let mut conn = app.db.connect();
    conn.batch_execute(&format!(
        "INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code)
           SELECT gen_random_uuid(), '{merchant}', '{program}', 'Bulk ' || g,
                  (5000000000000000 + g)::text, 'BULK' || g
             FROM generate_series(1, 1200) g;
         INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id,
                             authentication_token, download_token)
           SELECT gen_random_uuid(), '{merchant}', 'bulk' || card_number, id, 'loyalty-default',
                  md5(card_number || 'a'), md5(card_number || 'd')
             FROM members WHERE program_id = '{program}' AND name LIKE 'Bulk %';",
        merchant = m.id,
    ))
    .unwrap();
    let total = members.len() + 1 + 1200;

    let (header, rows) = csv_rows(
        &app,
        &m.admin_key,
        &format!("/api/v1/exports/members.csv?program_id={program}"),
    )
    .await;
    for column in [
        "external_id",
        "name",
        "email",
        "phone",
        "card_number",
        "points",
        "tier",
        "stage",
        "created_at",
        "apple_pass_url",
        "google_save_url",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    assert_eq!(rows.len(), total);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let ids: HashSet<&str> = rows.iter().map(|r| &r[col("id")]).collect();
    assert_eq!(ids.len(), total, "each member once");
    assert!(rows
        .iter()
        .any(|r| &r[col("name")] == "'=HYPERLINK(\"http://x\")"));
    assert!(rows.iter().all(|r| !r[col("name")].starts_with('=')));

    // The links work: the pass downloads, the Google link redirects to a signed save link.
    let seeded_row = rows
        .iter()
        .find(|r| &r[col("id")] == members[0].as_str())
        .unwrap();
    assert_eq!(&seeded_row[col("points")], "150", "50 welcome + 100 earned");
    assert_eq!(&seeded_row[col("tier")], "Bronze");
    app.download_pass(&seeded_row[col("apple_pass_url")]).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for row in [seeded_row, rows.last().unwrap()] {
        let res = no_redirects
            .get(&row[col("google_save_url")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("https://pay.google.com/gp/v/save/"),
            "{location}"
        );
    }
    let res = no_redirects
        .get(app.url("/passes/0123456789abcdef0123456789abcdef/google"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Filters apply to the export as to the list.
    let (_, gold) = csv_rows(
        &app,
        &m.admin_key,
        &format!("/api/v1/exports/members.csv?program_id={program}&tier=Bronze"),
    )
    .await;
    assert_eq!(
        gold.len(),
        members.len() + 1,
        "the bulk members have no tier"
    );

    let (header, cards) = csv_rows(&app, &m.admin_key, "/api/v1/exports/gift-cards.csv").await;
    assert_eq!(cards.len(), 5);
    assert!(header.iter().any(|h| h == "google_save_url"));
    let url = &cards[0][header.iter().position(|h| h == "apple_pass_url").unwrap()];
    app.download_pass(url).await;

    let listed = app
        .get_json(
            &format!("/api/v1/programs/{program}/activities?limit=200"),
            &m.admin_key,
        )
        .await;
    let (_, activities) = csv_rows(
        &app,
        &m.admin_key,
        &format!("/api/v1/exports/activities.csv?program_id={program}"),
    )
    .await;
    assert_eq!(
        activities.len(),
        listed["activities"].as_array().unwrap().len()
    );
    let (_, card_activities) = csv_rows(
        &app,
        &m.admin_key,
        "/api/v1/exports/gift-card-activities.csv?type=redeem",
    )
    .await;
    assert_eq!(card_activities.len(), 5);
}
