//! Self-test of the loopback APNs stand-in used by the integration tests (`tests/apns_mock.rs`).

#[path = "api/apns_mock.rs"]
mod apns_mock;

use std::time::{Duration, Instant};

use apns_mock::{certs_example, ApnsMock, Behaviour, EXAMPLE_TOPIC};
use reqwest::{Certificate, Client, Identity, StatusCode, Version};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn read(file: &str) -> Vec<u8> {
    std::fs::read(certs_example(file)).unwrap_or_else(|e| panic!("read {file}: {e}"))
}

/// A reqwest client that trusts the example root CA, optionally presenting the example
/// Pass Type ID certificate as its TLS client identity.
fn client_builder(mock: &ApnsMock, with_identity: bool) -> reqwest::ClientBuilder {
    let ca = std::fs::read(&mock.ca_file).expect("read CA file");
    let mut b = Client::builder()
        .use_native_tls()
        .add_root_certificate(Certificate::from_pem(&ca).expect("CA certificate"))
        .timeout(Duration::from_secs(20));
    if with_identity {
        let identity = Identity::from_pkcs8_pem(&read("pass.pem"), &read("pass.key"))
            .expect("client identity");
        b = b.identity(identity);
    }
    b
}

fn client(mock: &ApnsMock) -> Client {
    client_builder(mock, true).build().expect("client")
}

/// A well-formed Wallet push to `token`.
fn push(client: &Client, mock: &ApnsMock, token: &str) -> reqwest::RequestBuilder {
    push_with(client, mock, token, EXAMPLE_TOPIC, "background")
}

/// A push to `token` with the given topic and push type (`RequestBuilder::header` appends, so
/// these cannot be overridden on the result of [`push`]).
fn push_with(
    client: &Client,
    mock: &ApnsMock,
    token: &str,
    topic: &str,
    push_type: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{}/3/device/{token}", mock.url))
        .header("apns-topic", topic)
        .header("apns-push-type", push_type)
        .header("apns-priority", "5")
        .body("{}")
}

/// Sends the request; returns the status and the `reason` of the JSON error body ("" if none).
async fn send(req: reqwest::RequestBuilder) -> (StatusCode, String) {
    let resp = req.send().await.expect("request");
    assert_eq!(resp.version(), Version::HTTP_2);
    let status = resp.status();
    let body = resp.bytes().await.expect("body");
    let reason = if body.is_empty() {
        String::new()
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
        v["reason"].as_str().expect("reason").to_string()
    };
    (status, reason)
}

#[tokio::test]
async fn accepts_and_records_pushes_on_one_connection() {
    let mock = ApnsMock::start().await;
    let client = client(&mock);

    let resp = push(&client, &mock, TOKEN).send().await.expect("push");
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let apns_id = resp
        .headers()
        .get("apns-id")
        .expect("apns-id header")
        .to_str()
        .unwrap()
        .to_string();
    uuid::Uuid::parse_str(&apns_id).expect("apns-id is a UUID");
    assert!(resp.bytes().await.unwrap().is_empty());

    let accepted = mock.accepted().await;
    assert_eq!(accepted.len(), 1);
    let p = &accepted[0];
    assert_eq!(p.token, TOKEN);
    assert_eq!(p.topic, EXAMPLE_TOPIC);
    assert_eq!(p.push_type, "background");
    assert_eq!(p.priority.as_deref(), Some("5"));
    assert_eq!(p.apns_id, apns_id);
    assert_eq!(p.connection, 1);
    assert_eq!(mock.accepted_for(TOKEN).await, 1);
    assert_eq!(mock.client_uids().await, vec![EXAMPLE_TOPIC.to_string()]);

    // The request's own apns-id is echoed back.
    let own_id = "8f1e5a7c-3b2d-4c6e-9f0a-1b2c3d4e5f60";
    let resp = push(&client, &mock, TOKEN)
        .header("apns-id", own_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["apns-id"], own_id);
    assert_eq!(mock.accepted().await[1].apns_id, own_id);

    // 50 concurrent pushes to distinct tokens share the already-open HTTP/2 connection.
    let tokens: Vec<String> = (0..50).map(|i| format!("{i:064x}")).collect();
    let sends = tokens.iter().map(|t| push(&client, &mock, t).send());
    for resp in futures_util::future::join_all(sends).await {
        let resp = resp.expect("concurrent push");
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.status(), StatusCode::OK);
    }
    for t in &tokens {
        assert_eq!(mock.accepted_for(t).await, 1, "token {t}");
    }
    assert_eq!(mock.accepted().await.len(), 52);
    assert!(
        mock.wait_for(&tokens[49], 1, Duration::from_millis(10))
            .await
    );
    assert_eq!(mock.connections().await, 1);
    assert_eq!(mock.handshake_failures().await, 0);
    assert!(mock.rejected().await.is_empty());
}

#[tokio::test]
async fn rejects_like_apns_and_follows_configured_behaviour() {
    let mock = ApnsMock::start().await;
    let client = client(&mock);
    let url = format!("{}/3/device/{TOKEN}", mock.url);

    // Request checks.
    let wrong_topic = push_with(&client, &mock, TOKEN, "pass.other.example", "background");
    assert_eq!(
        send(wrong_topic).await,
        (StatusCode::BAD_REQUEST, "TopicDisallowed".into())
    );
    let no_topic = client
        .post(&url)
        .header("apns-push-type", "background")
        .body("{}");
    assert_eq!(
        send(no_topic).await,
        (StatusCode::BAD_REQUEST, "MissingTopic".into())
    );
    let no_push_type = client
        .post(&url)
        .header("apns-topic", EXAMPLE_TOPIC)
        .body("{}");
    assert_eq!(
        send(no_push_type).await,
        (StatusCode::BAD_REQUEST, "InvalidPushType".into())
    );
    let alert = push_with(&client, &mock, TOKEN, EXAMPLE_TOPIC, "alert");
    assert_eq!(
        send(alert).await,
        (StatusCode::BAD_REQUEST, "InvalidPushType".into())
    );
    assert_eq!(
        send(client.get(&url)).await,
        (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed".into())
    );
    let bad_path = client
        .post(format!("{}/3/devices/{TOKEN}", mock.url))
        .header("apns-topic", EXAMPLE_TOPIC)
        .header("apns-push-type", "background")
        .body("{}");
    assert_eq!(
        send(bad_path).await,
        (StatusCode::NOT_FOUND, "BadPath".into())
    );
    assert_eq!(
        send(push(&client, &mock, "not-hex")).await,
        (StatusCode::BAD_REQUEST, "BadDeviceToken".into())
    );
    assert_eq!(
        send(push(&client, &mock, TOKEN).body("")).await,
        (StatusCode::BAD_REQUEST, "PayloadEmpty".into())
    );
    assert_eq!(
        send(push(&client, &mock, TOKEN).body(r#"{"aps":{}}"#)).await,
        (StatusCode::BAD_REQUEST, "BadPayload".into())
    );
    assert_eq!(
        send(push(&client, &mock, TOKEN).body(" {}\n")).await,
        (StatusCode::OK, String::new())
    );

    // Unregistered: 410 with a millisecond timestamp.
    let gone = "aa".repeat(32);
    mock.behave(&gone, Behaviour::Unregistered);
    let resp = push(&client, &mock, &gone).send().await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.headers().contains_key("apns-id"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "Unregistered");
    assert!(body["timestamp"].as_u64().unwrap() > 1_600_000_000_000);

    // BadDeviceToken behaviour.
    let bad = "bb".repeat(32);
    mock.behave(&bad, Behaviour::BadDeviceToken);
    assert_eq!(
        send(push(&client, &mock, &bad)).await,
        (StatusCode::BAD_REQUEST, "BadDeviceToken".into())
    );

    // FailTimes(2, 500): 500, 500, then accepted.
    let flaky = "cc".repeat(32);
    mock.behave(&flaky, Behaviour::FailTimes(2, 500));
    let ise = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError".to_string(),
    );
    assert_eq!(send(push(&client, &mock, &flaky)).await, ise);
    assert_eq!(send(push(&client, &mock, &flaky)).await, ise);
    assert_eq!(
        send(push(&client, &mock, &flaky)).await,
        (StatusCode::OK, String::new())
    );
    assert_eq!(mock.accepted_for(&flaky).await, 1);

    // FailTimes(1, 429).
    let busy = "dd".repeat(32);
    mock.behave(&busy, Behaviour::FailTimes(1, 429));
    assert_eq!(
        send(push(&client, &mock, &busy)).await,
        (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests".into())
    );
    assert_eq!(
        send(push(&client, &mock, &busy)).await,
        (StatusCode::OK, String::new())
    );

    let rejected = mock.rejected().await;
    let expected: Vec<(u16, String)> = [
        (400, "TopicDisallowed"),
        (400, "MissingTopic"),
        (400, "InvalidPushType"),
        (400, "InvalidPushType"),
        (405, "MethodNotAllowed"),
        (404, "BadPath"),
        (400, "BadDeviceToken"),
        (400, "PayloadEmpty"),
        (400, "BadPayload"),
        (410, "Unregistered"),
        (400, "BadDeviceToken"),
        (500, "InternalServerError"),
        (500, "InternalServerError"),
        (429, "TooManyRequests"),
    ]
    .iter()
    .map(|(s, r)| (*s, r.to_string()))
    .collect();
    assert_eq!(rejected, expected);
    assert_eq!(mock.accepted().await.len(), 3);
    assert_eq!(mock.accepted_for(&gone).await, 0);
    assert_eq!(mock.connections().await, 1);
}

#[tokio::test]
async fn delay_and_wait_for() {
    let mock = ApnsMock::start().await;
    let client = client(&mock);
    mock.set_delay(Duration::from_millis(300));

    let started = Instant::now();
    let task = tokio::spawn(push(&client, &mock, TOKEN).send());
    // Not answered (nor recorded) before the delay has passed.
    assert!(!mock.wait_for(TOKEN, 1, Duration::from_millis(100)).await);
    assert!(mock.wait_for(TOKEN, 1, Duration::from_secs(10)).await);
    let resp = task.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    mock.set_delay(Duration::ZERO);
    let started = Instant::now();
    assert_eq!(
        send(push(&client, &mock, TOKEN)).await,
        (StatusCode::OK, String::new())
    );
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(mock.wait_for(TOKEN, 2, Duration::from_secs(1)).await);
    assert!(!mock.wait_for(TOKEN, 3, Duration::from_millis(50)).await);
}

#[tokio::test]
async fn refuses_clients_without_certificate_or_h2() {
    let mock = ApnsMock::start().await;

    // No client certificate: the handshake fails, no request gets through.
    let anonymous = client_builder(&mock, false).build().unwrap();
    let result = push(&anonymous, &mock, TOKEN).send().await;
    assert!(result.is_err(), "request without client cert: {result:?}");

    // HTTP/1.1 only (ALPN without h2): refused too.
    let http1 = client_builder(&mock, true).http1_only().build().unwrap();
    let result = push(&http1, &mock, TOKEN).send().await;
    assert!(result.is_err(), "HTTP/1.1 request: {result:?}");

    assert!(mock.handshake_failures().await >= 2);
    assert_eq!(mock.connections().await, 0);
    assert!(mock.accepted().await.is_empty());
    assert!(mock.client_uids().await.is_empty());
}
