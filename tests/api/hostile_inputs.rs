//! Input made to break the service: text PostgreSQL cannot store, extreme numbers, wrong
//! methods, doubled headers, invented methods. Each gets a 4xx problem, never a 500.

use crate::helpers::{assert_problem, id_of, spawn_app, TestApp};
use reqwest::Method;
use serde_json::json;

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(key) = key {
        req = req
            .bearer_auth(key)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
    }
    if let Some((content_type, body)) = body {
        req = req.header("content-type", content_type).body(body);
    }
    req.send().await.expect("an answer")
}

fn json_body(value: &str) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", value.as_bytes().to_vec()))
}

#[tokio::test]
async fn nul_characters_are_refused_by_name_with_or_without_a_key() {
    let app = spawn_app().await;
    let m = app.create_merchant("Hostile Inc");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = program["id"].as_str().unwrap().to_string();
    let member = app.enroll(&m.admin_key, &pid, "Ann").await;
    let mid = member["id"].as_str().unwrap().to_string();
    let code = member["referral_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // (what, path, body, the pointer the answer must name)
    let bodies = [
        (
            "api-key label",
            "/api/v1/api-keys".to_string(),
            r#"{"scope": "pos", "label": "till\u0000 2"}"#.to_string(),
            "/label",
        ),
        (
            "program name",
            "/api/v1/programs".to_string(),
            r#"{"name": "Cof\u0000fee", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1}"#
                .to_string(),
            "/name",
        ),
        (
            "tier name in an array",
            "/api/v1/programs".to_string(),
            r#"{"name": "C", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1,
                "tiers": [{"name": "Bronze", "min_points": 0}, {"name": "Go\u0000ld", "min_points": 9}]}"#
                .to_string(),
            "/tiers/1/name",
        ),
        (
            "member external id",
            format!("/api/v1/programs/{pid}/members"),
            r#"{"name": "Bob", "external_id": "\u0000"}"#.to_string(),
            "/external_id",
        ),
        (
            "adjust reason",
            format!("/api/v1/members/{mid}/points"),
            r#"{"delta": 5, "reason": "goodwill\u0000"}"#.to_string(),
            "/reason",
        ),
        (
            "an object key",
            "/api/v1/api-keys".to_string(),
            r#"{"scope": "pos", "la\u0000bel": "x"}"#.to_string(),
            "",
        ),
    ];
    for key in [Some(m.admin_key.as_str()), None] {
        for (what, path, body, pointer) in &bodies {
            let res = send(&app, Method::POST, path, key, json_body(body)).await;
            let problem = assert_problem(res, 422, "validation").await;
            assert_eq!(
                problem["errors"][0]["pointer"],
                *pointer,
                "{what} (key: {}): {problem}",
                key.is_some()
            );
        }

        // A form body: the public join page.
        let res = send(
            &app,
            Method::POST,
            &format!("/r/{code}"),
            key,
            Some((
                "application/x-www-form-urlencoded",
                b"name=Eve&email=eve%00%40example.com&consent=on".to_vec(),
            )),
        )
        .await;
        let problem = assert_problem(res, 422, "validation").await;
        assert_eq!(problem["errors"][0]["pointer"], "/email", "{problem}");

        // Path segments and query strings.
        for (method, path, named) in [
            (
                Method::GET,
                "/api/v1/gift-cards/%00".to_string(),
                "/api/v1/gift-cards/%00",
            ),
            (
                Method::GET,
                format!("/images/{}/loyalty%00/1/logo.png", m.id),
                "loyalty%00",
            ),
            (
                Method::POST,
                "/apple/v1/devices/%00/registrations/pass.x/serial".to_string(),
                "/apple/v1/devices/%00",
            ),
            (
                Method::GET,
                "/api/v1/members?card_number=%00".to_string(),
                "card_number",
            ),
            (
                Method::GET,
                "/api/v1/members?card%00number=1".to_string(),
                "card%00number",
            ),
            (
                Method::GET,
                "/api/v1/gift-cards/%ff%fe".to_string(),
                "UTF-8",
            ),
        ] {
            let res = send(&app, method, &path, key, None).await;
            let problem = assert_problem(res, 400, "validation").await;
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(named), "{path}: {detail}");
        }
    }

    // Nothing got in, and a body without the NUL still works after the guard read it.
    let keys = app.get_with_key("/api/v1/api-keys", &m.admin_key).await;
    let keys = TestApp::expect_json(keys, 200).await;
    assert!(!keys.to_string().contains("\\u0000"), "{keys}");
    let res = app
        .post_json(
            "/api/v1/api-keys",
            &m.admin_key,
            &json!({"scope": "pos", "label": "a\\u0000 is fine as text"}),
        )
        .await;
    let created = TestApp::expect_json(res, 201).await;
    assert_eq!(created["label"], "a\\u0000 is fine as text");
}

#[tokio::test]
async fn extreme_points_deltas_are_refused_not_500() {
    let app = spawn_app().await;
    let m = app.create_merchant("Extremes");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Max").await;
    let path = format!("/api/v1/members/{}/points", member["id"].as_str().unwrap());
    for delta in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let res = app
            .pos(
                &path,
                &m.pos_key,
                &format!("extreme-{delta}"),
                &json!({"delta": delta, "reason": "x"}),
            )
            .await;
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!((400..500).contains(&status), "{delta}: {status} {body}");
    }
    assert_eq!(
        app.member_points(&m.pos_key, member["id"].as_str().unwrap())
            .await,
        50
    );
}

/// A draft keeps any JSON. PostgreSQL hands a jsonb number back written out in full, and
/// the largest double (309 digits that way) was misread as out of range: the draft saved,
/// and from then on every read and write of it answered 500.
#[tokio::test]
async fn a_draft_with_the_largest_doubles_reads_back() {
    let app = spawn_app().await;
    let m = app.create_merchant("Doubles");
    let path = "/api/v1/templates/loyalty-default/draft";
    let raw = r#"{"template": {"x": [1.7976931348623157e308, -1.7976931348623157e308, 5e-324]}}"#;
    let res = send(&app, Method::PUT, path, Some(&m.admin_key), json_body(raw)).await;
    let status = res.status().as_u16();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
    let draft = app.get_json(path, &m.admin_key).await;
    assert_eq!(
        draft["template"]["x"],
        json!([f64::MAX, -f64::MAX, 5e-324]),
        "{draft}"
    );
    let res = send(&app, Method::PUT, path, Some(&m.admin_key), json_body(raw)).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn wrong_methods_doubled_headers_and_invented_methods() {
    let app = spawn_app().await;
    let m = app.create_merchant("Methods");

    // A known path with a method it does not serve: 405 and what it does serve.
    for (method, path, allow) in [
        (Method::POST, "/healthz", "GET"),
        (Method::PATCH, "/api/v1/api-keys", "GET, POST"),
        (Method::DELETE, "/r/somecode", "GET, POST"),
        (Method::POST, "/docs/index.html", "GET"),
        (Method::PUT, "/apple/v1/log", "POST"),
        (Method::POST, "/problems/validation", "GET"),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&m.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        assert_problem(res, 405, "method-not-allowed").await;
    }
    let res = app
        .client
        .post(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;

    // Two Authorization headers (even both valid), or two Idempotency-Keys: refused.
    let res = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .header("authorization", format!("Bearer {}", m.admin_key))
        .header("authorization", format!("Bearer {}", m.pos_key))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400, "validation").await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("authorization"));
    let res = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .header("authorization", format!("Bearer {}", m.admin_key))
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&json!({"scope": "pos"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "validation").await;
    // The scheme's case does not matter.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let res = app
            .client
            .get(app.url("/api/v1/api-keys"))
            .header("authorization", format!("{scheme} {}", m.admin_key))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{scheme}");
    }

    // Fifty invented methods add no metric series.
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("passfold_http_requests_total{"))
            .count()
    };
    let _ = app
        .client
        .request(Method::from_bytes(b"WARMUP").unwrap(), app.url("/healthz"))
        .send()
        .await;
    let before = app.text_of("/metrics").await;
    for i in 0..50 {
        let method = Method::from_bytes(format!("FOOBAR{i}").as_bytes()).unwrap();
        let res = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
    }
    let after = app.text_of("/metrics").await;
    assert!(!after.contains("FOOBAR"));
    // At most the /metrics scrape itself is new.
    assert!(
        series(&after) <= series(&before) + 1,
        "{before}\n---\n{after}"
    );
}

#[tokio::test]
async fn problem_types_point_at_pages_that_explain_them() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/api-keys").await;
    let problem = assert_problem(res, 401, "unauthorized").await;
    let type_ = problem["type"].as_str().unwrap();
    assert_eq!(type_, app.url("/problems/unauthorized"));

    for (lang, words) in [("en", "What to do"), ("ru-RU,ru;q=0.9", "Что делать")] {
        let res = app.get_url_with(type_, &[("accept-language", lang)]).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = res.text().await.unwrap();
        assert!(html.contains(words), "{lang}: {html}");
    }
    let res = app.get("/problems/no-such-problem").await;
    assert_problem(res, 404, "not-found").await;

    // A refusal stored under an idempotency key is replayed with the same absolute type.
    let m = app.create_merchant("Replays");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 100).await;
    let path = format!(
        "/api/v1/gift-cards/{}/redeem",
        card["gan"].as_str().unwrap()
    );
    let body = json!({"amount": 500, "currency": "EUR"});
    let first = assert_problem(
        app.pos(&path, &m.pos_key, "replay-1", &body).await,
        409,
        "insufficient-funds",
    )
    .await;
    let again = app.pos(&path, &m.pos_key, "replay-1", &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = assert_problem(again, 409, "insufficient-funds").await;
    assert_eq!(first["type"], again["type"]);
    assert_eq!(again["type"], app.url("/problems/insufficient-funds"));
}

/// The built binary, its log kept: hostile requests leave no error line and no panic there.
#[tokio::test]
async fn hostile_requests_leave_no_error_or_panic_in_the_service_log() {
    use passfold::domain::MerchantName;
    use passfold::models::Merchant;
    use std::process::{Command, Stdio};

    let db = crate::helpers::TestDatabase::create();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_passfold"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("PASSFOLD_BIND", format!("127.0.0.1:{port}"))
        // The default filter, as the service runs unless told otherwise.
        .env_remove("RUST_LOG")
        .env("PASSFOLD_LOG_FORMAT", "text")
        .env("APNS_URL", "https://127.0.0.1:9")
        .env("GOOGLE_WALLET_API_URL", "http://127.0.0.1:9")
        .env("GOOGLE_OAUTH_TOKEN_URL", "http://127.0.0.1:9/token")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("start the service");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..600 {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await {
            up = res.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the service did not start");
    let key = Merchant::create(&mut db.connect(), &MerchantName::parse("Log Inc").unwrap())
        .unwrap()
        .admin_key;

    let program: serde_json::Value = client
        .post(format!("{base}/api/v1/programs"))
        .bearer_auth(&key)
        .json(&json!({"name": "P", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1, "welcome_points": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let member: serde_json::Value = client
        .post(format!(
            "{base}/api/v1/programs/{}/members",
            program["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .json(&json!({"name": "Ann"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let points = format!("/api/v1/members/{}/points", member["id"].as_str().unwrap());

    let nul_json = r#"{"scope": "pos", "label": "x\u0000"}"#;
    let requests: Vec<(&str, String, Option<String>, bool)> = vec![
        (
            "POST",
            "/api/v1/api-keys".into(),
            Some(nul_json.into()),
            true,
        ),
        (
            "POST",
            "/api/v1/api-keys".into(),
            Some(nul_json.into()),
            false,
        ),
        ("GET", "/api/v1/gift-cards/%00".into(), None, true),
        ("GET", "/api/v1/gift-cards/%00".into(), None, false),
        ("GET", "/images/%00/x/1/logo.png".into(), None, false),
        (
            "DELETE",
            "/apple/v1/devices/%00/registrations/p/s".into(),
            None,
            false,
        ),
        ("GET", "/api/v1/members?card_number=%00".into(), None, true),
        (
            "POST",
            points.clone(),
            Some(json!({"delta": i64::MIN, "reason": "x"}).to_string()),
            true,
        ),
        (
            "POST",
            points.clone(),
            Some(json!({"delta": i64::MAX, "reason": "x"}).to_string()),
            true,
        ),
        ("FOOBAR", "/healthz".into(), None, false),
        ("POST", "/healthz".into(), None, false),
    ];
    for (method, path, body, with_key) in requests {
        let mut req = client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{base}{path}"),
            )
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        if with_key {
            req = req.bearer_auth(&key);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let status = req.send().await.expect("an answer").status().as_u16();
        assert!((400..500).contains(&status), "{method} {path}: {status}");
    }
    let status = client
        .get(format!("{base}/api/v1/api-keys"))
        .header("authorization", format!("Bearer {key}"))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);

    // Requests actix cannot even parse: a NUL in a header, a URI and a head too long.
    let long = "a".repeat(70_000);
    let longer = "a".repeat(300_000);
    for raw in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Test: a\0b\r\n\r\n".to_string(),
        format!("GET /healthz?q={long} HTTP/1.1\r\nHost: x\r\n\r\n"),
        format!("GET /healthz?q={longer} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ] {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // The service may answer and close before it has read it all.
        let _ = stream.write_all(raw.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let head = String::from_utf8_lossy(&answer[..answer.len().min(12)]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 4"),
            "{head:?} for {:?}",
            &raw[..40]
        );
    }

    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(text.contains("INFO"), "the log was captured: {text}");
    for line in text.lines() {
        assert!(
            !line.contains(" ERROR ") && !line.contains("panicked"),
            "{line}\n--- whole log ---\n{text}"
        );
    }
}
