//! Google's save and delete callbacks, signed as Google signs them (ECv2SigningOnly), and
//! installs per program from both wallets.

use crate::helpers::{spawn_app_with, TestApp};
use crate::pass_check::check_pkpass;
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

struct Google {
    root: PKey<Private>,
    intermediate: PKey<Private>,
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
        let now = chrono::Utc::now().timestamp_millis();
        let signed_key = json!({"keyValue": spki(&self.intermediate), "keyExpiration": (now + 3_600_000).to_string()}).to_string();
        let message = json!({
            "classId": format!("{ISSUER}.program_x"),
            "objectId": object_id,
            "eventType": event,
            "nonce": nonce,
            "expTimeMillis": now + expires_in_ms,
        })
        .to_string();
        json!({
            "protocolVersion": "ECv2SigningOnly",
            "intermediateSigningKey": {
                "signedKey": signed_key,
                "signatures": [sign(&self.root, &lv(&["Google", "ECv2SigningOnly", &signed_key]))],
            },
            "signature": sign(&self.intermediate, &lv(&["GooglePayPasses", recipient, "ECv2SigningOnly", &message])),
            "signedMessage": message,
        })
    }
}

/// Serves Google's root keys document on loopback.
async fn keys_server(root: &PKey<Private>) -> String {
    let body = json!({"keys": [{"keyValue": spki(root), "protocolVersion": "ECv2SigningOnly"}]})
        .to_string();
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
    let google = Google {
        root: ec_key(),
        intermediate: ec_key(),
    };
    let keys = keys_server(&google.root).await;
    let app = spawn_app_with(move |s| s.google.callback_keys_url = keys).await;
    let m = app.create_merchant("Callbacks");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app
        .enroll(&m.pos_key, program["id"].as_str().unwrap(), "Ann")
        .await;
    let installs_url = format!(
        "/api/v1/programs/{}/installs",
        program["id"].as_str().unwrap()
    );
    let installs = || async {
        TestApp::expect_json(app.get_with_key(&installs_url, &m.admin_key).await, 200).await
    };
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
    let impostor = Google {
        root: ec_key(),
        intermediate: ec_key(),
    };
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
    assert_eq!(post(json!({"hello": "world"})).await, 401);
    assert_eq!(installs().await["google"], 0);

    // An iPhone registering the pass counts for Apple.
    let pass = check_pkpass(
        &app.download_pass(member["apple_pass_url"].as_str().unwrap())
            .await,
    )
    .pass_json;
    assert_eq!(
        app.register_device(&pass, "phone1", "abcdef0123456789")
            .await,
        201
    );
    assert_eq!(
        installs().await,
        json!({"members": 1, "apple": 1, "google": 0})
    );
}
