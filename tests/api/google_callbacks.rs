//! Google's save and delete callbacks, signed the way Google's recipient library (Tink's
//! `PaymentMethodTokenRecipient`, sender id `GooglePayPasses`) verifies them, and installs
//! per program from both wallets.

use crate::helpers::{id_of, spawn_app_with};
use base64::Engine;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISSUER: &str = "3388000000022345678";

fn ec_key() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn spki(key: &PKey<Private>) -> String {
    b64(&key.public_key_to_der().unwrap())
}

fn lv(parts: &[&str]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| (p.len() as u32).to_le_bytes().into_iter().chain(p.bytes()))
        .collect()
}

fn sign(key: &PKey<Private>, data: &[u8]) -> String {
    let digest = hash(MessageDigest::sha256(), data).unwrap();
    b64(&EcdsaSig::sign(&digest, &key.ec_key().unwrap())
        .unwrap()
        .to_der()
        .unwrap())
}

const SENDER: &str = "GooglePayPasses";
const PROTOCOL: &str = "ECv2SigningOnly";

struct Google {
    root: PKey<Private>,
    intermediate: PKey<Private>,
}

impl Google {
    fn new() -> Self {
        Google {
            root: ec_key(),
            intermediate: ec_key(),
        }
    }
}

impl Google {
    /// A callback as Google sends it, signed for `recipient`.
    fn callback(
        &self,
        recipient: &str,
        object_id: &str,
        event: &str,
        nonce: &str,
        expires_in_ms: i64,
    ) -> Value {
        self.callback_with_key(recipient, object_id, event, nonce, expires_in_ms, 3_600_000)
    }

    /// The same, with the intermediate key expiring in `key_expires_in_ms`.
    fn callback_with_key(
        &self,
        recipient: &str,
        object_id: &str,
        event: &str,
        nonce: &str,
        expires_in_ms: i64,
        key_expires_in_ms: i64,
    ) -> Value {
        let now = chrono::Utc::now().timestamp_millis();
        let signed_key = json!({"keyValue": spki(&self.intermediate), "keyExpiration": (now + key_expires_in_ms).to_string()}).to_string();
        let message = json!({
            "classId": format!("{ISSUER}.program_x"),
            "objectId": object_id,
            "eventType": event,
            "nonce": nonce,
            "expTimeMillis": now + expires_in_ms,
        })
        .to_string();
        json!({
            "protocolVersion": PROTOCOL,
            "intermediateSigningKey": {
                "signedKey": signed_key,
                // signedStringForIntermediateSigningKeySignature: the same sender id as the message's.
                "signatures": [sign(&self.root, &lv(&[SENDER, PROTOCOL, &signed_key]))],
            },
            "signature": sign(&self.intermediate, &lv(&[SENDER, recipient, PROTOCOL, &message])),
            "signedMessage": message,
        })
    }
}

/// Serves Google's root keys document on loopback (`keyExpiration` in milliseconds, as
/// Google publishes it; `None` leaves it out).
async fn keys_server(root: &PKey<Private>, expiration: Option<i64>) -> String {
    let mut key = json!({"keyValue": spki(root), "protocolVersion": PROTOCOL});
    if let Some(at) = expiration {
        key["keyExpiration"] = json!(at.to_string());
    }
    let body = json!({ "keys": [key] }).to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let response = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn signed_callbacks_record_saves_and_deletions_once() {
    let google = Google::new();
    let far = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let keys = keys_server(&google.root, Some(far)).await;
    let app = spawn_app_with(move |s| {
        s.google.callback_keys_url = keys;
        s.webhooks_allow_private = true;
    })
    .await;
    let m = app.create_merchant("Callbacks");
    // The merchant's systems hear of saves and deletions too.
    let receiver = crate::webhook_receiver::Receiver::start().await;
    let res = app
        .post_json(
            "/api/v1/webhooks",
            &m.admin_key,
            &json!({"url": receiver.url, "events": ["pass.installed", "pass.removed"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Ann").await;
    let installs_url = format!(
        "/api/v1/programs/{}/installs",
        program["id"].as_str().unwrap()
    );
    let installs = || async { app.get_json(&installs_url, &m.admin_key).await };
    assert_eq!(
        installs().await,
        json!({"members": 1, "apple": 0, "google": 0})
    );

    let object_id = format!("{ISSUER}.pass_{}", member["serial"].as_str().unwrap());
    let post = |body: Value| {
        let (client, url) = (app.client.clone(), app.url("/google/callbacks"));
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(google.callback(ISSUER, &object_id, "save", "n-1", 60_000)).await,
        200
    );
    assert_eq!(installs().await["google"], 1);
    // A duplicate delivery changes nothing; a deletion does.
    assert_eq!(
        post(google.callback(ISSUER, &object_id, "save", "n-1", 60_000)).await,
        200
    );
    assert_eq!(
        post(google.callback(ISSUER, &object_id, "del", "n-2", 60_000)).await,
        200
    );
    assert_eq!(installs().await["google"], 0);
    // The same nonce again, even for a save, is the duplicate it is.
    assert_eq!(
        post(google.callback(ISSUER, &object_id, "save", "n-2", 60_000)).await,
        200
    );
    assert_eq!(installs().await["google"], 0);

    // Forged, misaddressed, expired or tampered callbacks are refused.
    let impostor = Google::new();
    assert_eq!(
        post(impostor.callback(ISSUER, &object_id, "save", "f-1", 60_000)).await,
        401
    );
    assert_eq!(
        post(google.callback("9999999999", &object_id, "save", "f-2", 60_000)).await,
        401
    );
    assert_eq!(
        post(google.callback(ISSUER, &object_id, "save", "f-3", -1_000)).await,
        401
    );
    let mut tampered = google.callback(ISSUER, &object_id, "save", "f-4", 60_000);
    tampered["signedMessage"] = json!(tampered["signedMessage"]
        .as_str()
        .unwrap()
        .replace("save", "del"));
    assert_eq!(post(tampered).await, 401);
    // The old way: the intermediate key signed over sender "Google".
    let mut old = google.callback(ISSUER, &object_id, "save", "f-5", 60_000);
    let signed_key = old["intermediateSigningKey"]["signedKey"]
        .as_str()
        .unwrap()
        .to_string();
    old["intermediateSigningKey"]["signatures"] =
        json!([sign(&google.root, &lv(&["Google", PROTOCOL, &signed_key]))]);
    assert_eq!(post(old).await, 401);
    // An expired intermediate key.
    assert_eq!(
        post(google.callback_with_key(ISSUER, &object_id, "save", "f-6", 60_000, -1_000)).await,
        401
    );
    assert_eq!(post(json!({"hello": "world"})).await, 401);
    assert_eq!(installs().await["google"], 0);

    // An iPhone registering the pass counts for Apple.
    let pass = app.pass_json_of(&member).await;
    assert_eq!(
        app.register_device(&pass, "phone1", "abcdef0123456789")
            .await,
        201
    );
    assert_eq!(
        installs().await,
        json!({"members": 1, "apple": 1, "google": 0})
    );
    // One event per change of state, in order, with the wallet.
    let events = receiver
        .wait_for("three pass events", |d| d.len() == 3)
        .await;
    let seen: Vec<(String, Value)> = events
        .iter()
        .map(|r| (r.kind(), r.json()["data"]["wallet"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("pass.installed".to_string(), json!("google")),
            ("pass.removed".to_string(), json!("google")),
            ("pass.installed".to_string(), json!("apple")),
        ]
    );
    assert!(events
        .iter()
        .all(|r| r.json()["data"]["member_id"] == member["id"]));
}

#[tokio::test]
async fn root_keys_without_expiration_are_not_trusted() {
    let google = Google::new();
    let keys = keys_server(&google.root, None).await;
    let app = spawn_app_with(move |s| s.google.callback_keys_url = keys).await;
    let res = app
        .client
        .post(app.url("/google/callbacks"))
        .json(&google.callback(ISSUER, &format!("{ISSUER}.pass_x"), "save", "n", 60_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn a_callback_with_thousands_of_signatures_is_refused_quickly() {
    let google = Google::new();
    let far = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let keys = keys_server(&google.root, Some(far)).await;
    let app = spawn_app_with(move |s| s.google.callback_keys_url = keys).await;
    let mut body = google.callback(ISSUER, &format!("{ISSUER}.pass_x"), "save", "n", 60_000);
    // Forged signatures first, the real one last: every one would be tried before.
    let real = body["intermediateSigningKey"]["signatures"][0].clone();
    let forged = sign(&ec_key(), b"not the key");
    let mut signatures = vec![json!(forged); 1_500];
    signatures.push(real);
    body["intermediateSigningKey"]["signatures"] = json!(signatures);
    let started = std::time::Instant::now();
    let res = app
        .client
        .post(app.url("/google/callbacks"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 401 | 413),
        "{}",
        res.status()
    );
    // The status shows that not every signature was tried (the real one is last); the time
    // is a loose bound only, as a loaded 2-core test run took 509 ms for the refusal.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // Under the 64 KiB limit too: a few hundred signatures are refused by count.
    body["intermediateSigningKey"]["signatures"] = json!(vec![json!(forged); 200]);
    let res = app
        .client
        .post(app.url("/google/callbacks"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("200 signatures"),
        "{problem}"
    );
}
