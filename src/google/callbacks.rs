//! Google Wallet's save and delete callbacks, signed with the `ECv2SigningOnly` protocol
//! as Google's recipient library (Tink's `PaymentMethodTokenRecipient`) verifies them:
//! Google's root keys (fetched from `GOOGLE_CALLBACK_KEYS_URL`, cached for an hour) sign
//! the intermediate key over `sender || protocol || signedKey`, and the intermediate key
//! signs `sender || recipient || protocol || signedMessage`, with the one sender id
//! `GooglePayPasses` in both and the issuer id as recipient. Each piece is prefixed by its
//! 4-byte little-endian length.

use base64::Engine;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Public};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const PROTOCOL: &str = "ECv2SigningOnly";
const SENDER: &str = "GooglePayPasses";
const KEYS_TTL: Duration = Duration::from_secs(3600);
/// Signatures over the intermediate key a callback may carry: Google sends one per root
/// key in use (one or two around a rotation). More is refused before any is checked, so
/// no request can buy unbounded signature checks.
pub const MAX_SIGNATURES: usize = 4;
/// Largest callback body read; Google's are about 2 KB.
pub const MAX_BODY: usize = 64 * 1024;

/// A verified callback.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Callback {
    pub class_id: String,
    pub object_id: String,
    pub event_type: String,
    pub nonce: String,
    pub exp_time_millis: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    protocol_version: String,
    signature: String,
    intermediate_signing_key: Intermediate,
    signed_message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Intermediate {
    signed_key: String,
    signatures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedKey {
    key_value: String,
    key_expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootKey {
    key_value: String,
    protocol_version: String,
    key_expiration: Option<String>,
}

#[derive(Deserialize)]
struct RootKeys {
    keys: Vec<RootKey>,
}

/// `4-byte little-endian length || bytes` of each part, as the protocol signs them.
fn length_prefixed(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn b64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| "not base64".to_string())
}

fn public_key(der_b64: &str) -> Result<PKey<Public>, String> {
    PKey::public_key_from_der(&b64(der_b64)?).map_err(|_| "not an EC public key".to_string())
}

fn verifies(key: &PKey<Public>, data: &[u8], signature_b64: &str) -> bool {
    let (Ok(sig), Ok(ec), Ok(digest)) = (
        b64(signature_b64).and_then(|der| EcdsaSig::from_der(&der).map_err(|e| e.to_string())),
        key.ec_key(),
        hash(MessageDigest::sha256(), data),
    ) else {
        return false;
    };
    sig.verify(&digest, &ec).unwrap_or(false)
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Checks a callback body against Google's root keys; the message when it holds.
pub fn verify(roots: &[PKey<Public>], issuer_id: &str, body: &[u8]) -> Result<Callback, String> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| format!("not a signed callback: {e}"))?;
    if envelope.protocol_version != PROTOCOL {
        return Err(format!(
            "protocol {:?} is not {PROTOCOL}",
            envelope.protocol_version
        ));
    }
    let signatures = &envelope.intermediate_signing_key.signatures;
    if signatures.is_empty() || signatures.len() > MAX_SIGNATURES {
        return Err(format!(
            "{} signatures over the intermediate key (1 to {MAX_SIGNATURES} accepted)",
            signatures.len()
        ));
    }
    let key_signed = length_prefixed(&[
        SENDER,
        PROTOCOL,
        &envelope.intermediate_signing_key.signed_key,
    ]);
    let by_root = signatures
        .iter()
        .any(|s| roots.iter().any(|root| verifies(root, &key_signed, s)));
    if !by_root {
        return Err("the intermediate signing key is not signed by a Google root key".into());
    }
    let signed_key: SignedKey = serde_json::from_str(&envelope.intermediate_signing_key.signed_key)
        .map_err(|_| "the intermediate signing key is malformed".to_string())?;
    let expires: i64 = signed_key
        .key_expiration
        .parse()
        .map_err(|_| "bad keyExpiration".to_string())?;
    if expires <= now_millis() {
        return Err("the intermediate signing key has expired".into());
    }
    let intermediate = public_key(&signed_key.key_value)?;
    let message_signed = length_prefixed(&[SENDER, issuer_id, PROTOCOL, &envelope.signed_message]);
    if !verifies(&intermediate, &message_signed, &envelope.signature) {
        return Err("the message signature does not verify".into());
    }
    let callback: Callback = serde_json::from_str(&envelope.signed_message)
        .map_err(|e| format!("the signed message is malformed: {e}"))?;
    if callback.exp_time_millis <= now_millis() {
        return Err("the callback has expired".into());
    }
    Ok(callback)
}

/// Google's root signing keys, fetched on first need and kept for an hour.
pub struct RootKeyCache {
    url: String,
    http: reqwest::Client,
    cached: Mutex<Option<(Vec<PKey<Public>>, Instant)>>,
}

impl RootKeyCache {
    pub fn new(url: &str) -> Self {
        RootKeyCache {
            url: url.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            cached: Mutex::new(None),
        }
    }

    pub async fn keys(&self) -> Result<Vec<PKey<Public>>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((keys, at)) = cached.as_ref() {
            if at.elapsed() < KEYS_TTL {
                return Ok(keys.clone());
            }
        }
        let fetched: RootKeys = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch Google's signing keys: {e}"))?
            .json()
            .await
            .map_err(|e| format!("Google's signing keys are malformed: {e}"))?;
        let now = now_millis();
        let keys: Vec<PKey<Public>> = fetched
            .keys
            .iter()
            .filter(|k| k.protocol_version == PROTOCOL)
            // Google's recipient library refuses root keys without an expiration too.
            .filter(|k| {
                k.key_expiration
                    .as_deref()
                    .and_then(|e| e.trim().parse::<i64>().ok())
                    .is_some_and(|e| e > now)
            })
            .filter_map(|k| public_key(&k.key_value).ok())
            .collect();
        *cached = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }
}
