//! Member search and cursor-paginated member lists (`GET /programs/{id}/members`): every
//! kind of term finds the right members of the merchant's own program, in any script and
//! on a C-locale database; pages walk each member exactly once; bad input is a 422.

use crate::helpers::{
    assert_problem, spawn_app, spawn_app_in, TestApp, TestDatabase, TestMerchant,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeSet;

async fn program(app: &TestApp, m: &TestMerchant) -> String {
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1}),
        )
        .await,
        201,
    )
    .await;
    program["id"].as_str().unwrap().to_string()
}

async fn enroll(app: &TestApp, m: &TestMerchant, program: &str, person: Value) -> Value {
    TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/programs/{program}/members"),
            &m.pos_key,
            &person,
        )
        .await,
        201,
    )
    .await
}

async fn search_raw(
    app: &TestApp,
    key: &str,
    program: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/programs/{program}/members")))
        .bearer_auth(key)
        .query(query)
        .send()
        .await
        .expect("request")
}

async fn search(app: &TestApp, key: &str, program: &str, query: &[(&str, &str)]) -> Value {
    TestApp::expect_json(search_raw(app, key, program, query).await, 200).await
}

fn names(page: &Value) -> Vec<String> {
    page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// The people both merchants have, with the same names, emails and phones.
fn people() -> Vec<Value> {
    vec![
        json!({"name": "Иван Петров", "email": "ivan.petrov@mail.ru", "phone": "+7 (912) 345-67-89", "external_id": "c-1"}),
        json!({"name": "Мария Иванова", "email": "maria@example.com", "phone": "+79001112233", "external_id": "c-2"}),
        json!({"name": "АННА ПЕТРОВА", "email": "anna@example.com", "phone": "+7 900 555 00 11", "external_id": "c-3"}),
        json!({"name": "John Smith", "email": "John.Smith@Example.com", "phone": "15551234567", "external_id": "c-4"}),
        json!({"name": "Zoë 50% _off_", "external_id": "c-5"}),
    ]
}

/// Two merchants with the same people; the first merchant's program id and members.
async fn two_merchants(app: &TestApp) -> (TestMerchant, String, Vec<Value>) {
    let ours = app.create_merchant("Ours");
    let theirs = app.create_merchant("Theirs");
    let our_program = program(app, &ours).await;
    let their_program = program(app, &theirs).await;
    let mut members = Vec::new();
    for person in people() {
        members.push(enroll(app, &ours, &our_program, person.clone()).await);
        enroll(app, &theirs, &their_program, person).await;
    }
    (ours, our_program, members)
}

async fn every_kind_of_term(app: &TestApp) {
    let (m, program, members) = two_merchants(app).await;
    let our_ids: BTreeSet<&str> = members.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        // No term: everyone, by folded name (byte order: Latin before Cyrillic).
        (
            "",
            vec![
                "John Smith",
                "Zoë 50% _off_",
                "АННА ПЕТРОВА",
                "Иван Петров",
                "Мария Иванова",
            ],
        ),
        // Substrings of names, any case, Cyrillic included.
        ("петр", vec!["АННА ПЕТРОВА", "Иван Петров"]),
        ("ИВАН", vec!["Иван Петров", "Мария Иванова"]),
        ("mith", vec!["John Smith"]),
        ("oË 5", vec!["Zoë 50% _off_"]),
        ("zoË", vec!["Zoë 50% _off_"]),
        // LIKE's wildcards are plain characters.
        ("50%", vec!["Zoë 50% _off_"]),
        ("_of", vec!["Zoë 50% _off_"]),
        ("n_s", vec![]),
        ("_", vec![]),
        ("%", vec![]),
        // The start of an email, without or with @; exact, any case.
        ("ivan.pe", vec!["Иван Петров"]),
        ("john.smith@example.COM", vec!["John Smith"]),
        ("maria@", vec!["Мария Иванова"]),
        ("mail.ru", vec![]),
        // Phone digits, written any way.
        ("+7 (912) 345", vec!["Иван Петров"]),
        ("79123456789", vec!["Иван Петров"]),
        // Ordered by the digits found.
        ("7-900", vec!["Мария Иванова", "АННА ПЕТРОВА"]),
        ("912 345", vec![]),
        // Short terms: the start of the name or email.
        ("ив", vec!["Иван Петров"]),
        ("jo", vec!["John Smith"]),
        ("m", vec!["Мария Иванова"]),
        ("ов", vec![]),
    ];
    for (q, expected) in cases {
        for key in [&m.admin_key, &m.pos_key] {
            let page = search(app, key, &program, &[("q", q)]).await;
            assert_eq!(names(&page), expected, "q={q:?}");
            assert_eq!(page["next_cursor"], Value::Null, "q={q:?}");
            for found in page["members"].as_array().unwrap() {
                assert!(our_ids.contains(found["id"].as_str().unwrap()), "q={q:?}");
            }
        }
    }
    // Card numbers: a prefix, typed in groups, finds the card (and only cards or phones
    // that start so).
    for member in &members {
        let card = member["card_number"].as_str().unwrap();
        let prefix = &card[..10];
        let typed = format!("{} {}", &card[..4], &card[4..10]);
        let page = search(app, &m.pos_key, &program, &[("q", &typed)]).await;
        let found = page["members"].as_array().unwrap();
        assert!(found.iter().any(|f| f["id"] == member["id"]), "{typed}");
        for f in found {
            let phone: String = f["phone"]
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let found_card = f["card_number"].as_str().unwrap();
            assert!(found_card.starts_with(prefix) || phone.starts_with(prefix));
        }
        let whole = search(app, &m.pos_key, &program, &[("q", card)]).await;
        assert_eq!(whole["members"].as_array().unwrap().len(), 1);
    }
    // The view is the member's own, with the external id.
    let page = search(app, &m.pos_key, &program, &[("q", "Иван Петров")]).await;
    let one = app
        .member(&m.pos_key, members[0]["id"].as_str().unwrap())
        .await;
    let listed = &page["members"][0];
    for field in [
        "id",
        "program_id",
        "name",
        "email",
        "phone",
        "external_id",
        "serial",
        "card_number",
        "points",
        "tier",
        "referral_url",
        "apple_pass_url",
    ] {
        assert_eq!(listed[field], one[field], "{field}");
    }
    assert_eq!(listed["external_id"], "c-1");
    assert_eq!(listed["google_save_url"], Value::Null);
}

#[tokio::test]
async fn each_kind_of_term_finds_only_the_merchants_own_members() {
    every_kind_of_term(&spawn_app().await).await;
}

/// The private cluster's database has ctype C, where lower() folds only ASCII and pg_trgm
/// sees no letters in Cyrillic: the search must not depend on the locale.
#[tokio::test]
async fn search_works_the_same_on_a_c_locale_database() {
    every_kind_of_term(
        &spawn_app_in(
            TestDatabase::create_c_locale(),
            passfold::clock::Clock::system(),
            |_| {},
        )
        .await,
    )
    .await;
}

/// Follows `next_cursor` to the end; the names of every page in order.
async fn walk(app: &TestApp, key: &str, program: &str, q: &str, limit: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("q", q), ("limit", limit)];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let page = search(app, key, program, &query).await;
        let members = page["members"].as_array().unwrap().clone();
        assert!(members.len() <= limit.parse::<usize>().unwrap());
        all.extend(members);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
        assert!(all.len() < 1000, "the pages do not end");
    }
}

#[tokio::test]
async fn cursors_page_through_every_member_exactly_once() {
    let app = spawn_app().await;
    let m = app.create_merchant("Pages");
    let program = program(&app, &m).await;
    let other = app.create_merchant("Other");
    let other_program = program_of(&app, &other).await;
    let mut expected = BTreeSet::new();
    for i in 0..23 {
        // Equal names, so that ids break the ties; emails that start like names.
        let name = if i % 3 == 0 {
            "Пётр Петров".to_string()
        } else {
            format!("Guest {}", i % 5)
        };
        let person = json!({"name": name, "email": format!("petr{i}@example.com"), "phone": format!("+7900{i:07}")});
        let member = enroll(&app, &m, &program, person.clone()).await;
        expected.insert(member["id"].as_str().unwrap().to_string());
        enroll(&app, &other, &other_program, person).await;
    }
    for (q, limit, count) in [
        ("", "4", 23),
        ("", "1", 23),
        ("", "23", 23),
        ("", "200", 23),
        // Names and emails both match "петр"/"petr": two branches, each member once.
        ("petr", "3", 23),
        ("петр", "2", 8),
        ("+7 900", "5", 23),
        ("7900000001", "2", 10),
        ("g", "4", 15),
    ] {
        let all = walk(&app, &m.pos_key, &program, q, limit).await;
        let ids: Vec<String> = all
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(ids.len(), unique.len(), "q={q:?} limit={limit}: repeated");
        assert_eq!(ids.len(), count, "q={q:?} limit={limit}");
        assert!(unique.is_subset(&expected), "q={q:?}: another merchant's");
    }
}

async fn program_of(app: &TestApp, m: &TestMerchant) -> String {
    program(app, m).await
}

#[tokio::test]
async fn bad_limits_cursors_and_terms_are_422_and_other_programs_404() {
    let app = spawn_app().await;
    let m = app.create_merchant("Strict");
    let program = program(&app, &m).await;
    for i in 0..3 {
        enroll(&app, &m, &program, json!({"name": format!("Member {i}")})).await;
    }
    let page = search(&app, &m.pos_key, &program, &[("limit", "2")]).await;
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let mut tampered = cursor.clone();
    tampered.replace_range(0..2, "!!");
    let truncated = cursor[..10].to_string();
    let huge = "A".repeat(3000);
    let long_term = "я".repeat(255);
    let cursor_of = |key: &[u8]| {
        let mut bytes = vec![0u8; 16];
        bytes.extend_from_slice(key);
        URL_SAFE_NO_PAD.encode(bytes)
    };
    let nul_key = cursor_of(b"a\0b");
    let not_utf8 = cursor_of(&[0xff, 0xfe]);
    let bad: Vec<Vec<(&str, &str)>> = vec![
        vec![("limit", "201")],
        vec![("limit", "1000000")],
        vec![("limit", "99999999999999999999999999")],
        vec![("limit", "0")],
        vec![("limit", "-5")],
        vec![("limit", "ten")],
        vec![("cursor", &tampered)],
        vec![("cursor", &truncated)],
        vec![("cursor", "")],
        vec![("cursor", &nul_key)],
        vec![("cursor", &not_utf8)],
        vec![("cursor", &huge)],
        vec![("q", &long_term)],
        vec![("q", "a\u{7}b")],
    ];
    for query in bad {
        let res = search_raw(&app, &m.pos_key, &program, &query).await;
        assert_problem(res, 422, "validation").await;
    }
    // NUL, which no database text holds, is refused before the handler, as everywhere.
    let res = search_raw(&app, &m.pos_key, &program, &[("q", "a\u{0}b")]).await;
    assert_problem(res, 400, "validation").await;
    // A well-formed cursor of no page is only a position.
    let after_all = cursor_of("zzz".as_bytes());
    let page = search(&app, &m.pos_key, &program, &[("cursor", &after_all)]).await;
    assert_eq!(page["members"], json!([]));
    let before_all = cursor_of(b"");
    let page = search(&app, &m.pos_key, &program, &[("cursor", &before_all)]).await;
    assert_eq!(names(&page).len(), 3);
    // Another merchant's program, and none at all.
    let other = app.create_merchant("Other");
    let res = search_raw(&app, &other.pos_key, &program, &[]).await;
    assert_problem(res, 404, "not-found").await;
    let res = search_raw(&app, &m.pos_key, &uuid::Uuid::new_v4().to_string(), &[]).await;
    assert_problem(res, 404, "not-found").await;
    // No key.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/programs/{program}/members")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// A name fragment shared by a few members spread far apart in the name order pages in
/// that order, each member once, whatever the page size.
#[tokio::test]
async fn sparse_name_fragments_page_in_name_order() {
    let app = spawn_app().await;
    let m = app.create_merchant("Window");
    let program = program(&app, &m).await;
    let matching = [7, 100, 129];
    for i in 0..130 {
        let name = if matching.contains(&i) {
            format!("Anna {i:03} Zedova")
        } else {
            format!("Anna {i:03}")
        };
        enroll(&app, &m, &program, json!({ "name": name })).await;
    }
    for limit in ["1", "2", "50"] {
        let found: Vec<String> = walk(&app, &m.pos_key, &program, "zedova", limit)
            .await
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            found,
            ["Anna 007 Zedova", "Anna 100 Zedova", "Anna 129 Zedova"],
            "limit={limit}"
        );
    }
}
