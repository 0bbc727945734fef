//! Malformed requests of every kind get a 4xx problem+json, never a 500 or a dropped
//! connection.

use crate::helpers::{assert_problem, spawn_app_with};
use reqwest::Method;

#[tokio::test]
async fn malformed_requests_get_problem_documents() {
    let app = spawn_app_with(|s| s.body_limit = 64 * 1024).await;
    let m = app.create_merchant("Errors Inc");
    let keys = app.url("/api/v1/api-keys");

    struct Case {
        name: &'static str,
        method: Method,
        url: String,
        content_type: Option<&'static str>,
        body: Vec<u8>,
        status: u16,
        type_: &'static str,
    }
    let json = Some("application/json");
    let cases = vec![
        Case {
            name: "broken JSON",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: b"{\"scope\": ".to_vec(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "wrong type",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: br#"{"scope": 7}"#.to_vec(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "unknown field",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: br#"{"scope": "pos", "admin": true}"#.to_vec(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "huge number",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: br#"{"scope": 1e999999}"#.to_vec(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "invalid UTF-8",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: b"{\"scope\": \"po\xff\xfes\"}".to_vec(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "array instead of object",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: b"[1,2,3]".to_vec(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "empty body",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: Vec::new(),
            status: 400,
            type_: "validation",
        },
        Case {
            name: "wrong content type",
            method: Method::POST,
            url: keys.clone(),
            content_type: Some("text/plain"),
            body: br#"{"scope":"pos"}"#.to_vec(),
            status: 415,
            type_: "unsupported-media-type",
        },
        Case {
            name: "oversize body",
            method: Method::POST,
            url: keys.clone(),
            content_type: json,
            body: format!("{{\"label\": \"{}\"}}", "x".repeat(200 * 1024)).into_bytes(),
            status: 413,
            type_: "payload-too-large",
        },
        Case {
            name: "unknown route",
            method: Method::GET,
            url: app.url("/api/v1/nothing-here"),
            content_type: None,
            body: Vec::new(),
            status: 404,
            type_: "not-found",
        },
        Case {
            name: "wrong method",
            method: Method::PATCH,
            url: keys.clone(),
            content_type: json,
            body: b"{}".to_vec(),
            status: 405,
            type_: "method-not-allowed",
        },
        Case {
            name: "bad id in path",
            method: Method::DELETE,
            url: app.url("/api/v1/api-keys/not-a-uuid"),
            content_type: None,
            body: Vec::new(),
            status: 404,
            type_: "not-found",
        },
        Case {
            name: "encoded garbage in path",
            method: Method::DELETE,
            url: app.url("/api/v1/api-keys/%ff%fe%00"),
            content_type: None,
            body: Vec::new(),
            status: 400,
            type_: "validation",
        },
    ];
    for case in cases {
        let mut req = app
            .client
            .request(case.method.clone(), &case.url)
            .bearer_auth(&m.admin_key)
            .body(case.body);
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", case.name));
        assert_eq!(res.status().as_u16(), case.status, "{}", case.name);
        assert_problem(res, case.status, case.type_).await;
    }

    // A header that is not text, and an absurdly long one.
    let res = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;

    // The service is still healthy afterwards.
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
}
