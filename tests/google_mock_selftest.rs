//! Self-test of the loopback Google OAuth + Wallet API stand-in (`tests/api/google_mock.rs`).

#[path = "api/google_mock.rs"]
mod google_mock;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use google_mock::{certs_example, GoogleMock, JWT_BEARER_GRANT, KINDS, WALLET_SCOPE};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ISSUER: &str = "3388000000022345678";

fn service_account() -> Value {
    let raw = std::fs::read(certs_example("google-service-account.json"))
        .expect("read google-service-account.json");
    serde_json::from_slice(&raw).expect("parse google-service-account.json")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// The claims a correct client sends for `mock`.
fn good_claims(mock: &GoogleMock) -> Value {
    let iat = now();
    json!({
        "iss": mock.client_email,
        "scope": WALLET_SCOPE,
        "aud": mock.token_url,
        "iat": iat,
        "exp": iat + 3600,
    })
}

/// An RS256 assertion over `claims`, signed with the example service account's private key.
fn assertion(claims: &Value) -> String {
    passfold::google::rs256::install();
    let account = service_account();
    let pem = account["private_key"].as_str().expect("private_key");
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("private key");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = account["private_key_id"].as_str().map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).expect("sign assertion")
}

/// An RS256 assertion over `claims`, signed with a freshly generated (wrong) key.
fn assertion_with_other_key(claims: &Value) -> String {
    passfold::google::rs256::install();
    let rsa = openssl::rsa::Rsa::generate(2048).expect("generate RSA key");
    let pem = rsa.private_key_to_pem().expect("RSA key to PEM");
    let key = EncodingKey::from_rsa_pem(&pem).expect("other key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign assertion")
}

async fn exchange(client: &Client, mock: &GoogleMock, assertion: &str) -> (StatusCode, Value) {
    let res = client
        .post(&mock.token_url)
        .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)])
        .send()
        .await
        .expect("POST /token");
    let status = res.status();
    (status, res.json().await.expect("token answer is JSON"))
}

async fn token(client: &Client, mock: &GoogleMock) -> String {
    let (status, body) = exchange(client, mock, &assertion(&good_claims(mock))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

fn url(mock: &GoogleMock, rest: &str) -> String {
    format!("{}/walletobjects/v1/{rest}", mock.api_url)
}

/// The stand-in's Wallet API as a caller holding `token` sees it.
struct Wallet<'a> {
    client: Client,
    mock: &'a GoogleMock,
    token: String,
}

impl<'a> Wallet<'a> {
    fn new(client: &Client, mock: &'a GoogleMock, token: &str) -> Self {
        Wallet {
            client: client.clone(),
            mock,
            token: token.to_string(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        rest: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, url(self.mock, rest))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        send(req).await
    }

    async fn get(&self, rest: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, rest, None).await
    }

    async fn post(&self, rest: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, rest, Some(body)).await
    }

    async fn patch(&self, rest: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, rest, Some(body)).await
    }

    async fn put(&self, rest: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, rest, Some(body)).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.expect("wallet request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn loyalty_class() -> Value {
    json!({
        "id": format!("{ISSUER}.test"),
        "issuerName": "x",
        "programName": "y",
        "reviewStatus": "UNDER_REVIEW",
    })
}

fn loyalty_object() -> Value {
    json!({
        "id": format!("{ISSUER}.member-1"),
        "classId": format!("{ISSUER}.test"),
        "state": "ACTIVE",
        "accountId": "1",
        "loyaltyPoints": {"balance": {"int": 5}},
    })
}

#[tokio::test]
async fn token_endpoint_checks_the_assertion() {
    let mock = GoogleMock::start().await;
    let client = Client::new();
    assert_eq!(mock.token_url, format!("{}/token", mock.base));
    assert_eq!(mock.issuer_id, ISSUER);

    let first = token(&client, &mock).await;
    let second = token(&client, &mock).await;
    assert_ne!(first, second);
    assert_eq!(mock.tokens_issued(), 2);

    let good = good_claims(&mock);
    let bad_cases: Vec<(&str, String)> = vec![
        ("bad signature", assertion_with_other_key(&good)),
        ("wrong audience", {
            let mut c = good.clone();
            c["aud"] = json!("https://oauth2.googleapis.com/token");
            assertion(&c)
        }),
        ("wrong issuer", {
            let mut c = good.clone();
            c["iss"] = json!("someone@example.com");
            assertion(&c)
        }),
        ("missing wallet scope", {
            let mut c = good.clone();
            c["scope"] = json!("https://www.googleapis.com/auth/cloud-platform");
            assertion(&c)
        }),
        ("lifetime over an hour", {
            let mut c = good.clone();
            c["exp"] = json!(now() + 7200);
            assertion(&c)
        }),
        ("expired", {
            let mut c = good.clone();
            c["iat"] = json!(now() - 7200);
            c["exp"] = json!(now() - 3700);
            assertion(&c)
        }),
        ("no iat", {
            let mut c = good.clone();
            c.as_object_mut().expect("claims").remove("iat");
            assertion(&c)
        }),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (case, bad) in &bad_cases {
        let (status, body) = exchange(&client, &mock, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{case}: {body}");
        assert!(body["error_description"].is_string(), "{case}: {body}");
    }
    let (_, body) = exchange(&client, &mock, &bad_cases[0].1).await;
    assert_eq!(body["error_description"], "Invalid JWT Signature.");

    let res = client
        .post(&mock.token_url)
        .form(&[("grant_type", "client_credentials"), ("assertion", "x")])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");

    assert_eq!(mock.tokens_issued(), 2);
    let rejected = mock.rejected();
    assert_eq!(rejected.len(), bad_cases.len() + 2);
    assert!(rejected.iter().all(|(status, _)| *status == 400));

    mock.fail_token_next(1, 503);
    let (status, _) = exchange(&client, &mock, &assertion(&good_claims(&mock))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    token(&client, &mock).await;
    assert_eq!(mock.tokens_issued(), 3);
}

#[tokio::test]
async fn loyalty_insert_get_patch_put_and_messages() {
    let mock = GoogleMock::start().await;
    let client = Client::new();
    let token = token(&client, &mock).await;
    let wallet = Wallet::new(&client, &mock, &token);
    let class_id = format!("{ISSUER}.test");
    let object_id = format!("{ISSUER}.member-1");

    let (status, body) = wallet.post("loyaltyClass", &loyalty_class()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, loyalty_class());
    assert_eq!(
        mock.stored("loyaltyClass", &class_id),
        Some(loyalty_class())
    );

    let (status, body) = wallet.post("loyaltyClass", &loyalty_class()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], 409);
    assert_eq!(body["error"]["status"], "ALREADY_EXISTS");

    let (status, body) = wallet.post("loyaltyObject", &loyalty_object()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = wallet.get(&format!("loyaltyObject/{object_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, loyalty_object());

    let (status, body) = wallet.get(&format!("loyaltyObject/{ISSUER}.nobody")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["status"], "NOT_FOUND");

    // PATCH merges top-level fields and keeps the others.
    let (status, body) = wallet
        .patch(
            &format!("loyaltyObject/{object_id}"),
            &json!({"loyaltyPoints": {"balance": {"int": 7}, "label": "Points"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = mock
        .stored("loyaltyObject", &object_id)
        .expect("object stored");
    assert_eq!(stored["loyaltyPoints"]["balance"]["int"], 7);
    assert_eq!(stored["loyaltyPoints"]["label"], "Points");
    assert_eq!(stored["accountId"], "1");
    assert_eq!(stored["state"], "ACTIVE");
    assert_eq!(body, stored);

    let (status, _) = wallet
        .patch(
            &format!("loyaltyObject/{ISSUER}.nobody"),
            &json!({"state": "INACTIVE"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // PUT replaces the whole resource, and needs the required fields.
    let replacement = json!({
        "id": object_id,
        "classId": class_id,
        "state": "INACTIVE",
        "accountId": "2",
    });
    let (status, body) = wallet
        .put(&format!("loyaltyObject/{object_id}"), &replacement)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(mock.stored("loyaltyObject", &object_id), Some(replacement));
    let (status, body) = wallet
        .put(
            &format!("loyaltyObject/{object_id}"),
            &json!({"accountId": "3"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // addMessage appends to messages.
    let message = json!({"header": "Hello", "body": "Welcome", "messageType": "TEXT_AND_NOTIFY"});
    let (status, body) = wallet
        .post(
            &format!("loyaltyObject/{object_id}/addMessage"),
            &json!({ "message": message }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resource"]["messages"], json!([message]));
    let (status, body) = wallet
        .post(
            &format!("loyaltyClass/{class_id}/addMessage"),
            &json!({"message": {"header": "h", "bogus": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = wallet
        .get(&format!("loyaltyObject?classId={class_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["resources"].as_array().map(Vec::len), Some(1));
    assert_eq!(mock.all("loyaltyObject").len(), 1);
    assert_eq!(mock.tokens_issued(), 1);
}

#[tokio::test]
async fn bodies_are_validated_against_the_schema() {
    let mock = GoogleMock::start().await;
    let client = Client::new();
    let token = mock.grant_token();
    let wallet = Wallet::new(&client, &mock, &token);
    let class_id = format!("{ISSUER}.test");
    let object_id = format!("{ISSUER}.member-1");

    // An object whose class does not exist: 404.
    let (status, body) = wallet.post("loyaltyObject", &loyalty_object()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&class_id)),
        "{body}"
    );

    mock.seed("loyaltyClass", loyalty_class());
    let (status, _) = wallet.post("loyaltyObject", &loyalty_object()).await;
    assert_eq!(status, StatusCode::OK);

    // Unknown nested field.
    let (status, body) = wallet
        .patch(
            &format!("loyaltyObject/{object_id}"),
            &json!({"loyaltyPoints": {"balance": {"int": 5, "bogus": 1}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "Invalid JSON payload received. Unknown name \"bogus\" at \
         'loyalty_object.loyalty_points.balance': Cannot find field."
    );

    // Unknown top-level field.
    let mut with_unknown = loyalty_class();
    with_unknown["id"] = json!(format!("{ISSUER}.other"));
    with_unknown["colour"] = json!("red");
    let (status, body) = wallet.post("loyaltyClass", &with_unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Invalid JSON payload received. Unknown name \"colour\" at 'loyalty_class': Cannot find field."
    );

    // Unknown field inside a list element.
    let (status, body) = wallet
        .patch(
            &format!("loyaltyObject/{object_id}"),
            &json!({"textModulesData": [{"header": "a"}, {"header": "b", "title": "c"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Invalid JSON payload received. Unknown name \"title\" at \
         'loyalty_object.text_modules_data[1]': Cannot find field."
    );

    // Wrong JSON types and enum values.
    for bad in [
        json!({"accountId": 5}),
        json!({"state": "GLOWING"}),
        json!({"loyaltyPoints": {"balance": {"int": "five"}}}),
        json!({"loyaltyPoints": {"balance": {"int": 3_000_000_000_i64}}}),
        json!({"loyaltyPoints": "5"}),
        json!({"textModulesData": {"header": "a"}}),
        json!({"hasUsers": "yes"}),
        json!({"locations": [{"latitude": "north"}]}),
    ] {
        let (status, body) = wallet
            .patch(&format!("loyaltyObject/{object_id}"), &bad)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Invalid value at 'loyalty_object.")),
            "{bad}: {body}"
        );
    }
    let stored = mock
        .stored("loyaltyObject", &object_id)
        .expect("object stored");
    assert_eq!(stored, loyalty_object(), "rejected patches changed nothing");

    // proto3 JSON leniency: int64 as a number or a string, null for any field.
    let (status, body) = wallet.patch(&format!("loyaltyObject/{object_id}"), &json!({
                "loyaltyPoints": {"balance": {"money": {"micros": 1_500_000, "currencyCode": "EUR"}}},
                "secondaryLoyaltyPoints": {"balance": {"money": {"micros": "2500000", "currencyCode": "EUR"}}},
                "accountName": null,
            })).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Malformed ids, ids of another issuer, and a body id that differs from the path.
    for (bad_id, expected) in [
        ("test", StatusCode::BAD_REQUEST),
        ("3388000000022345678.", StatusCode::BAD_REQUEST),
        ("3388000000022345678.a b", StatusCode::BAD_REQUEST),
        ("abc.def", StatusCode::BAD_REQUEST),
        ("1234.def", StatusCode::FORBIDDEN),
    ] {
        let mut class = loyalty_class();
        class["id"] = json!(bad_id);
        let (status, body) = wallet.post("loyaltyClass", &class).await;
        assert_eq!(status, expected, "{bad_id}: {body}");
    }
    let (status, _) = wallet
        .patch(
            &format!("loyaltyObject/{object_id}"),
            &json!({"id": format!("{ISSUER}.someone-else")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Required fields on insert.
    let (status, body) = wallet
        .post(
            "loyaltyClass",
            &json!({"id": format!("{ISSUER}.bare"), "issuerName": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Not JSON at all.
    let (status, body) = send(
        client
            .post(url(&mock, "loyaltyClass"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The library function gives the same verdicts.
    assert!(google_mock::validate("LoyaltyObject", &loyalty_object()).is_ok());
    assert!(google_mock::validate("GiftCardObject", &json!({"balance": {"micros": "x"}})).is_err());
}

#[tokio::test]
async fn gift_cards_round_trip() {
    let mock = GoogleMock::start().await;
    let client = Client::new();
    let token = token(&client, &mock).await;
    let wallet = Wallet::new(&client, &mock, &token);
    let class = json!({
        "id": format!("{ISSUER}.gift"),
        "issuerName": "Shop",
        "merchantName": "Shop",
        "reviewStatus": "UNDER_REVIEW",
        "programLogo": {"sourceUri": {"uri": "https://example.com/logo.png"}},
        "hexBackgroundColor": "#112233",
    });
    let object = json!({
        "id": format!("{ISSUER}.card-1"),
        "classId": format!("{ISSUER}.gift"),
        "state": "ACTIVE",
        "cardNumber": "6001",
        "balance": {"micros": "25000000", "currencyCode": "EUR"},
        "balanceUpdateTime": {"date": "2025-01-01T12:00:00Z"},
        "barcode": {"type": "QR_CODE", "value": "6001", "alternateText": "6001"},
        "textModulesData": [{"id": "terms", "header": "Terms", "body": "No cash value"}],
        "linksModuleData": {"uris": [{"uri": "https://example.com", "description": "Shop"}]},
    });
    for (kind, body) in [("giftCardClass", &class), ("giftCardObject", &object)] {
        let (status, answer) = wallet.post(kind, body).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {answer}");
    }
    // A gift card object may not point at a loyalty class.
    mock.seed("loyaltyClass", loyalty_class());
    let mut wrong = object.clone();
    wrong["id"] = json!(format!("{ISSUER}.card-2"));
    wrong["classId"] = json!(format!("{ISSUER}.test"));
    let (status, _) = wallet.post("giftCardObject", &wrong).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // cardNumber is required.
    let mut no_number = object.clone();
    no_number["id"] = json!(format!("{ISSUER}.card-3"));
    no_number
        .as_object_mut()
        .expect("object")
        .remove("cardNumber");
    let (status, _) = wallet.post("giftCardObject", &no_number).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(mock.all("giftCardObject"), vec![object.clone()]);
    assert_eq!(mock.all("giftCardClass"), vec![class]);
    assert_eq!(
        mock.stored("giftCardObject", &format!("{ISSUER}.card-1")),
        Some(object)
    );
    for kind in KINDS {
        let _ = mock.all(kind);
    }
}

#[tokio::test]
async fn authentication_and_injected_failures() {
    let mock = GoogleMock::start().await;
    let client = Client::new();
    let class_url = url(&mock, &format!("loyaltyClass/{ISSUER}.test"));

    let (status, body) = send(client.get(&class_url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    let (status, _) = send(client.get(&class_url).bearer_auth("ya29.made-up")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = token(&client, &mock).await;

    let wallet = Wallet::new(&client, &mock, &token);
    let (status, _) = send(client.get(&class_url).bearer_auth(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Two injected 500s, then normal handling again.
    mock.fail_next(2, 500);
    for _ in 0..2 {
        let (status, body) = wallet.post("loyaltyClass", &loyalty_class()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["status"], "INTERNAL");
    }
    let (status, _) = wallet.post("loyaltyClass", &loyalty_class()).await;
    assert_eq!(status, StatusCode::OK);

    mock.fail_next(1, 429);
    let (status, body) = send(client.get(&class_url).bearer_auth(&token)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let (status, _) = send(client.get(&class_url).bearer_auth(&token)).await;
    assert_eq!(status, StatusCode::OK);

    // Expired tokens answer 401 until a new one is fetched.
    mock.expire_tokens();
    let (status, _) = send(client.get(&class_url).bearer_auth(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = self::token(&client, &mock).await;
    let (status, _) = send(client.get(&class_url).bearer_auth(&fresh)).await;
    assert_eq!(status, StatusCode::OK);

    let class_path = format!("/walletobjects/v1/loyaltyClass/{ISSUER}.test");
    let requests = mock.requests();
    let expected: Vec<(String, String, u16)> = vec![
        ("GET".into(), class_path.clone(), 401),
        ("GET".into(), class_path.clone(), 401),
        ("POST".into(), "/token".into(), 200),
        ("GET".into(), class_path.clone(), 404),
        ("POST".into(), "/walletobjects/v1/loyaltyClass".into(), 500),
        ("POST".into(), "/walletobjects/v1/loyaltyClass".into(), 500),
        ("POST".into(), "/walletobjects/v1/loyaltyClass".into(), 200),
        ("GET".into(), class_path.clone(), 429),
        ("GET".into(), class_path.clone(), 200),
        ("GET".into(), class_path.clone(), 401),
        ("POST".into(), "/token".into(), 200),
        ("GET".into(), class_path.clone(), 200),
    ];
    assert_eq!(requests, expected);
    let statuses: Vec<u16> = mock.rejected().iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec![401, 401, 404, 500, 500, 429, 401]);
    let calls = mock.calls();
    assert_eq!(calls[6].body, Some(loyalty_class()));
    assert_eq!(calls[2].body, None);

    // wait_until sees a change made by a concurrent request.
    let waiter = mock.wait_until(
        |m| m.all("loyaltyObject").len() == 1,
        Duration::from_secs(5),
    );
    let insert = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(
            client
                .post(url(&mock, "loyaltyObject"))
                .bearer_auth(&fresh)
                .json(&loyalty_object()),
        )
        .await
    };
    let (seen, (status, _)) = tokio::join!(waiter, insert);
    assert_eq!(status, StatusCode::OK);
    assert!(seen);
    assert!(
        !mock
            .wait_until(|m| m.tokens_issued() > 5, Duration::from_millis(200))
            .await
    );
}

#[test]
fn schema_file_is_self_consistent() {
    let schemas = google_mock::schemas();
    for root in [
        "LoyaltyClass",
        "LoyaltyObject",
        "GiftCardClass",
        "GiftCardObject",
        "AddMessageRequest",
    ] {
        assert!(schemas.contains_key(root), "{root} missing");
    }
    fn refs(descriptor: &Value, out: &mut Vec<String>) {
        if let Some(r) = descriptor.get("$ref").and_then(Value::as_str) {
            out.push(r.to_string());
        }
        if let Some(items) = descriptor.get("items") {
            refs(items, out);
        }
    }
    for (name, schema) in schemas {
        let props = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no properties"));
        for (field, descriptor) in props {
            let mut found = Vec::new();
            refs(descriptor, &mut found);
            for r in found {
                assert!(
                    schemas.contains_key(&r),
                    "{name}.{field} refers to missing schema {r}"
                );
            }
            let has_type = descriptor.get("type").is_some() || descriptor.get("$ref").is_some();
            assert!(has_type, "{name}.{field} has neither type nor $ref");
        }
    }
    for kind in KINDS {
        assert!(schemas.contains_key(google_mock::schema_name(kind)));
    }
}
