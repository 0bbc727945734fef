use crate::helpers::spawn_app;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let id = res
            .headers()
            .get("x-request-id")
            .expect("request id")
            .to_str()
            .unwrap()
            .to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    let mut admin =
        <diesel::PgConnection as diesel::Connection>::establish(&crate::helpers::admin_url())
            .unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE {} WITH (FORCE)", app.db.name)),
        &mut admin,
    )
    .unwrap();
    let res = app.get("/readyz").await;
    crate::helpers::assert_problem(res, 503, "unavailable").await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/api/v1/api-keys").await;
    let text = app.text_of("/metrics").await;
    assert!(
        text.contains(
            r#"passfold_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"passfold_http_requests_total{method="GET",route="/api/v1/api-keys",status="401"} 1"#
    ));
    assert!(text.contains("passfold_http_request_duration_seconds_bucket"));
    assert!(text.contains("passfold_db_pool_connections"));
}

#[tokio::test]
async fn openapi_names_every_route_and_docs_work_offline() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/v1/api-keys", "get"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/members/{id}/referrals", "get"),
        ("/api/v1/programs/{id}/referral-stats", "get"),
        ("/r/{code}", "get"),
        ("/r/{code}", "post"),
        ("/r/{code}/{format}", "get"),
        ("/join/{code}", "get"),
        ("/welcome/{token}", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }

    let res = app.get("/docs").await;
    assert!(res.status().is_redirection());
    let html = app.text_of("/docs/").await;
    assert!(html.contains("swagger-ui"));
    // Every asset the page loads comes from this server.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let res = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(res.status(), 200, "{asset}");
    }
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(attr),
            "the docs page loads from another host: {attr}"
        );
    }
    let init = app.text_of("/docs/swagger-initializer.js").await;
    assert!(init.contains("/openapi.json"));
}
