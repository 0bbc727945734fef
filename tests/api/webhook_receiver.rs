#![allow(dead_code)]
//! A loopback webhook receiver for the tests: records every POST (headers and body) and
//! answers 200, or 500 for the first requests when told to. Signatures are checked here with
//! an implementation of HMAC-SHA256 written from RFC 2104 over `sha2` (not the service's
//! code, which uses OpenSSL), per the Standard Webhooks scheme.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// One request as received, and what it was answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }

    /// Whether one of the `v1,` signatures is the HMAC of `id.timestamp.body` keyed with
    /// `secret` (`whsec_` + base64).
    pub fn verifies_with(&self, secret: &str) -> bool {
        let Some(key) = secret
            .strip_prefix("whsec_")
            .and_then(|k| STANDARD.decode(k).ok())
        else {
            return false;
        };
        let mut signed = format!("{}.{}.", self.id, self.timestamp).into_bytes();
        signed.extend_from_slice(&self.body);
        let expected = STANDARD.encode(hmac_sha256(&key, &signed));
        self.signature
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|s| s == expected)
    }
}

/// HMAC (RFC 2104) with SHA-256: 64-byte blocks.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Requests still to be answered 500.
    failures_left: usize,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub async fn start() -> Self {
        Self::failing_first(0).await
    }

    /// A receiver answering 500 to its first `n` requests.
    pub async fn failing_first(n: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            failures_left: n,
            ..State::default()
        }));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(req, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Receiver { url, state, server }
    }

    /// Makes the next `n` requests fail with 500.
    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().failures_left = n;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Those answered 200, in the order received.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }

    /// Waits (up to 30 s) until `done` holds for what was delivered; returns it.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..300 {
            let delivered = self.delivered();
            if done(&delivered) {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let kinds: Vec<String> = self
            .received()
            .iter()
            .map(|r| format!("{} {}", r.kind(), r.status))
            .collect();
        panic!("timed out waiting for {what}; received {kinds:?}");
    }

    /// Waits until a message of each of `kinds` was delivered; returns every delivery.
    pub async fn wait_for_kinds(&self, kinds: &[&str]) -> Vec<Received> {
        self.wait_for(&format!("{kinds:?}"), |d| {
            kinds.iter().all(|k| d.iter().any(|r| r.kind() == *k))
        })
        .await
    }
}

async fn handle(req: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let mut state = state.lock().unwrap();
    let status = if state.failures_left > 0 {
        state.failures_left -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    state.received.push(Received {
        id,
        timestamp,
        signature,
        body,
        status: status.as_u16(),
    });
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"ok")))
        .unwrap()
}
