//! A loopback stand-in for Apple's Push Notification service (APNs), for integration tests.
//!
//! Include it from a test binary with
//!
//! ```ignore
//! #[path = "apns_mock.rs"]
//! mod apns_mock;
//! ```
//!
//! [`ApnsMock::start`] binds `127.0.0.1` on a random port and serves HTTP/2 over TLS the way
//! APNs does for Apple Wallet pass updates:
//!
//! * TLS with `certs-example/apns-server.pem` (valid for `localhost` and `127.0.0.1`, signed by
//!   `certs-example/root-ca.pem`, see [`ApnsMock::ca_file`]). ALPN must select `h2`: a client that
//!   offers ALPN without `h2` gets a fatal alert, a client that offers no ALPN at all is dropped
//!   right after the handshake.
//! * A client certificate is required and verified against `root-ca.pem` + `wwdr.pem` (the client
//!   identity is the Pass Type ID certificate `certs-example/pass.pem` + `pass.key`). The subject
//!   UID of the client certificate (`pass.dev.passfold.example` for the example one) is the only
//!   topic the connection may push to, as with APNs certificate-based authentication.
//! * Every request is checked like APNs checks it, in this order, and rejected with APNs's JSON
//!   error body `{"reason":"..."}`:
//!
//!   | check | status | reason |
//!   |---|---|---|
//!   | method is not `POST` | 405 | `MethodNotAllowed` |
//!   | path is not `/3/device/<token>` | 404 | `BadPath` |
//!   | token is empty | 400 | `MissingDeviceToken` |
//!   | token is not 1..=200 hex characters | 400 | `BadDeviceToken` |
//!   | no `apns-topic` header | 400 | `MissingTopic` |
//!   | `apns-topic` differs from the client certificate's UID | 400 | `TopicDisallowed` |
//!   | `apns-push-type` missing or not `background` | 400 | `InvalidPushType` |
//!   | `apns-id` present but not a UUID | 400 | `BadMessageId` |
//!   | body larger than 4096 bytes | 413 | `PayloadTooLarge` |
//!   | body empty (after trimming whitespace) | 400 | `PayloadEmpty` |
//!   | body not exactly `{}` (after trimming whitespace) | 400 | `BadPayload` |
//!
//!   (Real APNs accepts any JSON dictionary; Wallet pass pushes always send `{}`, so the mock is
//!   stricter on purpose.)
//! * A request that passes the checks gets the [`Behaviour`] configured for its token with
//!   [`ApnsMock::behave`] (default [`Behaviour::Accept`]: 200, empty body). Every response carries
//!   an `apns-id` header: the request's own `apns-id` if it sent one, else a fresh UUID.
//! * [`ApnsMock::set_delay`] slows every answer down. The delay runs before the behaviour is
//!   applied and anything is recorded, so a request whose client goes away during the delay
//!   (connection closed, process killed) is neither answered nor recorded, and does not use up a
//!   [`Behaviour::FailTimes`] failure.
//!
//! The server stops when the [`ApnsMock`] is dropped (all its connections are closed).
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use openssl::nid::Nid;
use openssl::ssl::{AlpnError, Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_openssl::SslStream;

/// The APNs topic of the example Pass Type ID certificate (`certs-example/pass.pem`).
pub const EXAMPLE_TOPIC: &str = "pass.dev.passfold.example";

/// Largest payload APNs accepts for a regular push, in bytes.
const MAX_PAYLOAD: usize = 4096;
/// Longest device token the mock accepts, in hex characters (Apple's are 64 in practice).
const MAX_TOKEN_HEX: usize = 200;
/// HTTP/2 streams a client may open at once on one connection.
const MAX_CONCURRENT_STREAMS: u32 = 1000;
/// A TLS handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Path of a file in the repository's `certs-example/` folder.
pub fn certs_example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("certs-example")
        .join(file)
}

/// What the mock answers to a well-formed push for a given device token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with an `apns-id` header and an empty body (the default).
    Accept,
    /// 410 `{"reason":"Unregistered","timestamp":<ms since the Unix epoch>}`.
    Unregistered,
    /// 400 `{"reason":"BadDeviceToken"}`.
    BadDeviceToken,
    /// Answer the given status (e.g. 500 `InternalServerError`, 503 `ServiceUnavailable`,
    /// 429 `TooManyRequests`) this many times, then behave as [`Behaviour::Accept`].
    FailTimes(u32, u16),
}

/// A push the mock accepted (answered 200).
#[derive(Clone, Debug)]
pub struct Push {
    /// Device token from the path, as sent.
    pub token: String,
    /// `apns-topic` header.
    pub topic: String,
    /// `apns-push-type` header (always `background` for an accepted push).
    pub push_type: String,
    /// `apns-priority` header, if sent.
    pub priority: Option<String>,
    /// The `apns-id` answered: the request's own, or the one the mock made up.
    pub apns_id: String,
    /// When the request arrived (before any [`ApnsMock::set_delay`] delay).
    pub received: Instant,
    /// Which TLS connection carried it: 1 for the first connection, 2 for the second, ...
    pub connection: usize,
}

/// A running APNs stand-in. Dropping it stops the server.
pub struct ApnsMock {
    /// Base URL, `https://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// CA certificate that signed the server certificate (`certs-example/root-ca.pem`).
    pub ca_file: PathBuf,
    state: Arc<State>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    inner: Mutex<Inner>,
    /// Signalled whenever a push is accepted.
    accepted_changed: Notify,
    /// TLS connections that completed the handshake with `h2`.
    connections: AtomicUsize,
    /// TLS handshakes that failed (no or bad client certificate, no `h2`, timeout, ...).
    handshake_failures: AtomicUsize,
}

#[derive(Default)]
struct Inner {
    behaviours: HashMap<String, Behaviour>,
    delay: Duration,
    accepted: Vec<Push>,
    rejected: Vec<(u16, String)>,
    client_uids: Vec<String>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take every later assertion down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ApnsMock {
    /// Starts the server on the current tokio runtime and returns once it is listening.
    ///
    /// Panics if the certificates in `certs-example/` cannot be loaded or the port cannot be bound.
    pub async fn start() -> ApnsMock {
        let acceptor = Arc::new(build_acceptor());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("apns mock: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("apns mock: local_addr");
        let state = Arc::new(State::default());
        let server = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
        ApnsMock {
            url: format!("https://{addr}"),
            addr,
            ca_file: certs_example("root-ca.pem"),
            state,
            server,
        }
    }

    /// Sets what well-formed pushes to `token` get from now on (replaces any earlier setting,
    /// including the remaining count of a [`Behaviour::FailTimes`]).
    pub fn behave(&self, token: &str, b: Behaviour) {
        self.state.lock().behaviours.insert(token.to_string(), b);
    }

    /// Delays every answer given from now on by `d` (`Duration::ZERO` to stop delaying).
    pub fn set_delay(&self, d: Duration) {
        self.state.lock().delay = d;
    }

    /// Every accepted push so far, in the order they were answered.
    pub async fn accepted(&self) -> Vec<Push> {
        self.state.lock().accepted.clone()
    }

    /// How many pushes to `token` were accepted so far.
    pub async fn accepted_for(&self, token: &str) -> usize {
        count_for(&self.state.lock(), token)
    }

    /// Every rejected request so far as `(status, reason)`, in the order they were answered.
    pub async fn rejected(&self) -> Vec<(u16, String)> {
        self.state.lock().rejected.clone()
    }

    /// Waits until at least `count` pushes to `token` were accepted; false if `timeout` passed
    /// first.
    pub async fn wait_for(&self, token: &str, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register for the notification before looking, so an accept in between is not missed.
            let notified = self.state.accepted_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if count_for(&self.state.lock(), token) >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return count_for(&self.state.lock(), token) >= count;
            }
        }
    }

    /// How many TLS connections completed the handshake (with `h2`) so far.
    pub async fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// How many TLS handshakes failed so far (no or untrusted client certificate, no `h2`, ...).
    pub async fn handshake_failures(&self) -> usize {
        self.state.handshake_failures.load(Ordering::SeqCst)
    }

    /// The subject UID of the client certificate of each connection, in connection order
    /// (an empty string for a certificate without a UID).
    pub async fn client_uids(&self) -> Vec<String> {
        self.state.lock().client_uids.clone()
    }
}

impl Drop for ApnsMock {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.server.abort();
    }
}

fn count_for(inner: &Inner, token: &str) -> usize {
    inner.accepted.iter().filter(|p| p.token == token).count()
}

fn build_acceptor() -> SslAcceptor {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .expect("apns mock: SslAcceptor");
    b.set_certificate_chain_file(certs_example("apns-server.pem"))
        .expect("apns mock: apns-server.pem");
    b.set_private_key_file(certs_example("apns-server.key"), SslFiletype::PEM)
        .expect("apns mock: apns-server.key");
    b.check_private_key()
        .expect("apns mock: server key does not match certificate");
    for ca in ["root-ca.pem", "wwdr.pem"] {
        let pem = std::fs::read(certs_example(ca)).expect("apns mock: read CA file");
        let cert = X509::from_pem(&pem).expect("apns mock: parse CA file");
        b.cert_store_mut()
            .add_cert(cert)
            .expect("apns mock: add CA to store");
    }
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    // Needed by OpenSSL for session resumption when client certificates are verified.
    b.set_session_id_context(b"passfold-apns-mock")
        .expect("apns mock: session id context");
    b.set_alpn_select_callback(|_, offered| {
        openssl::ssl::select_next_proto(b"\x02h2", offered).ok_or(AlpnError::ALERT_FATAL)
    });
    b.build()
}

async fn accept_loop(listener: TcpListener, acceptor: Arc<SslAcceptor>, state: Arc<State>) {
    let mut conns = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
        let Ok((tcp, _peer)) = listener.accept().await else {
            continue;
        };
        conns.spawn(serve_connection(tcp, acceptor.clone(), state.clone()));
    }
}

async fn serve_connection(tcp: TcpStream, acceptor: Arc<SslAcceptor>, state: Arc<State>) {
    let _ = tcp.set_nodelay(true);
    let Ok(ssl) = Ssl::new(acceptor.context()) else {
        state.handshake_failures.fetch_add(1, Ordering::SeqCst);
        return;
    };
    let Ok(mut tls) = SslStream::new(ssl, tcp) else {
        state.handshake_failures.fetch_add(1, Ordering::SeqCst);
        return;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut tls).accept()).await;
    let h2 = tls.ssl().selected_alpn_protocol() == Some(b"h2".as_slice());
    if !matches!(handshake, Ok(Ok(()))) || !h2 {
        state.handshake_failures.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let uid = tls
        .ssl()
        .peer_certificate()
        .and_then(|cert| {
            cert.subject_name()
                .entries_by_nid(Nid::USERID)
                .next()
                .and_then(|e| e.data().to_string().ok())
        })
        .unwrap_or_default();
    let connection = {
        let mut inner = state.lock();
        inner.client_uids.push(uid.clone());
        state.connections.fetch_add(1, Ordering::SeqCst) + 1
    };
    let conn = Arc::new(Conn { uid, connection });
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handle(req, &state, &conn).await) }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// What the mock knows about the connection a request came on.
struct Conn {
    /// Subject UID of the client certificate ("" if it has none).
    uid: String,
    /// 1-based connection number.
    connection: usize,
}

/// A request that passed every check.
struct Valid {
    token: String,
    topic: String,
    push_type: String,
    priority: Option<String>,
}

async fn handle(req: Request<Incoming>, state: &State, conn: &Conn) -> Response<Full<Bytes>> {
    let received = Instant::now();
    let apns_id = header(&req, "apns-id");
    let answer_id = match apns_id.as_deref() {
        Some(id) if uuid::Uuid::parse_str(id).is_ok() => id.to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let checked = check(req, conn).await;
    let delay = state.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let valid = match checked {
        Ok(valid) => valid,
        Err((status, reason)) => return reject(state, &answer_id, status, reason, None),
    };
    let behaviour = {
        let mut inner = state.lock();
        let entry = inner.behaviours.get_mut(&valid.token);
        match entry {
            Some(Behaviour::FailTimes(n, status)) if *n > 0 => {
                *n -= 1;
                Behaviour::FailTimes(1, *status)
            }
            Some(b) => b.clone(),
            None => Behaviour::Accept,
        }
    };
    match behaviour {
        Behaviour::Unregistered => {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            reject(state, &answer_id, 410, "Unregistered", Some(ms))
        }
        Behaviour::BadDeviceToken => reject(state, &answer_id, 400, "BadDeviceToken", None),
        Behaviour::FailTimes(n, status) if n > 0 => {
            reject(state, &answer_id, status, reason_for(status), None)
        }
        Behaviour::Accept | Behaviour::FailTimes(..) => {
            {
                let mut inner = state.lock();
                inner.accepted.push(Push {
                    token: valid.token,
                    topic: valid.topic,
                    push_type: valid.push_type,
                    priority: valid.priority,
                    apns_id: answer_id.clone(),
                    received,
                    connection: conn.connection,
                });
            }
            state.accepted_changed.notify_waiters();
            response(StatusCode::OK, &answer_id, Bytes::new())
        }
    }
}

/// Checks a request like APNs does; the error is `(status, reason)`.
async fn check(req: Request<Incoming>, conn: &Conn) -> Result<Valid, (u16, &'static str)> {
    if req.method() != Method::POST {
        return Err((405, "MethodNotAllowed"));
    }
    let Some(token) = req.uri().path().strip_prefix("/3/device/") else {
        return Err((404, "BadPath"));
    };
    let token = token.to_string();
    if token.is_empty() {
        return Err((400, "MissingDeviceToken"));
    }
    if token.len() > MAX_TOKEN_HEX || !token.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err((400, "BadDeviceToken"));
    }
    let Some(topic) = header(&req, "apns-topic") else {
        return Err((400, "MissingTopic"));
    };
    if topic != conn.uid {
        return Err((400, "TopicDisallowed"));
    }
    let push_type = header(&req, "apns-push-type").unwrap_or_default();
    if push_type != "background" {
        return Err((400, "InvalidPushType"));
    }
    if let Some(id) = header(&req, "apns-id") {
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err((400, "BadMessageId"));
        }
    }
    let priority = header(&req, "apns-priority");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err((400, "BadPayload")),
    };
    if body.len() > MAX_PAYLOAD {
        return Err((413, "PayloadTooLarge"));
    }
    let text = std::str::from_utf8(&body).map(str::trim);
    match text {
        Ok("") => return Err((400, "PayloadEmpty")),
        Ok("{}") => {}
        _ => return Err((400, "BadPayload")),
    }
    Ok(Valid {
        token,
        topic,
        push_type,
        priority,
    })
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// APNs's reason string for a status given to [`Behaviour::FailTimes`].
fn reason_for(status: u16) -> &'static str {
    match status {
        400 => "BadDeviceToken",
        403 => "BadCertificate",
        404 => "BadPath",
        405 => "MethodNotAllowed",
        410 => "Unregistered",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    }
}

fn reject(
    state: &State,
    apns_id: &str,
    status: u16,
    reason: &str,
    timestamp_ms: Option<u128>,
) -> Response<Full<Bytes>> {
    state.lock().rejected.push((status, reason.to_string()));
    let body = match timestamp_ms {
        Some(ms) => serde_json::json!({ "reason": reason, "timestamp": ms as u64 }),
        None => serde_json::json!({ "reason": reason }),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = response(status, apns_id, Bytes::from(body.to_string()));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn response(status: StatusCode, apns_id: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(apns_id) {
        resp.headers_mut().insert("apns-id", v);
    }
    resp
}
