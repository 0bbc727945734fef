#![allow(dead_code)]
//! A loopback stand-in for Google's OAuth 2.0 token endpoint and the Google Wallet REST API
//! (`walletobjects/v1`), for integration tests.
//!
//! Include it from a test binary with
//!
//! ```ignore
//! #[path = "google_mock.rs"]
//! mod google_mock;
//! ```
//!
//! [`GoogleMock::start`] binds `127.0.0.1` on a random port and serves plain HTTP/1.1 (no TLS).
//! Point the service at it with [`GoogleMock::token_url`] (instead of
//! `https://oauth2.googleapis.com/token`) and [`GoogleMock::api_url`] (instead of
//! `https://walletobjects.googleapis.com`, so `{api_url}/walletobjects/v1/loyaltyClass` works).
//!
//! # `POST /token`
//!
//! The service-account flow of RFC 7523: a form-encoded body with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion=<JWT>`. The assertion
//! must be an RS256 JWT signed with the key whose public half is
//! `certs-example/google-service-account.pub.pem` (the private half is `private_key` in
//! `certs-example/google-service-account.json`); if its header has a `kid` it must be that file's
//! `private_key_id`. Its claims must have `iss` = the file's `client_email`, a `scope` (space
//! separated) that contains [`WALLET_SCOPE`], `aud` = [`GoogleMock::token_url`], and integer
//! `iat` and `exp` with `exp - iat <= 3600`, `exp` not in the past and `iat` at most 60 s in the
//! future. Success answers 200 `{"access_token": "...", "token_type": "Bearer", "expires_in":
//! 3600}`; failure answers 400 `{"error": "invalid_grant" | "unsupported_grant_type" |
//! "invalid_request", "error_description": "..."}`.
//!
//! # Wallet API
//!
//! Kinds ([`KINDS`]): `loyaltyClass`, `loyaltyObject`, `giftCardClass`, `giftCardObject`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /walletobjects/v1/{kind}` | insert: 200 with the stored resource; 409 `ALREADY_EXISTS` if the id is taken |
//! | `GET /walletobjects/v1/{kind}/{id}` | 200 with the stored resource; 404 `NOT_FOUND` |
//! | `PATCH /walletobjects/v1/{kind}/{id}` | merges the body's top-level fields into the stored resource (a `null` value removes the field); 404 if missing |
//! | `PUT /walletobjects/v1/{kind}/{id}` | replaces the stored resource; 404 if missing |
//! | `POST /walletobjects/v1/{kind}/{id}/addMessage` | body `{"message": {...}}`: appends to the resource's `messages`, answers `{"resource": <updated>}`; 404 if missing |
//! | `GET /walletobjects/v1/{kind}[?classId=...]` | list: `{"resources": [...], "pagination": {...}}` (objects filtered by `classId` when given) |
//!
//! Every Wallet request is handled in this order; the first failing step answers with Google's
//! error shape `{"error": {"code": N, "message": "...", "errors": [...], "status": "..."}}`:
//!
//! 1. A failure queued with [`GoogleMock::fail_next`] answers its status (500 `INTERNAL`, 429
//!    `RESOURCE_EXHAUSTED`, 503 `UNAVAILABLE`, ...) before anything else is looked at;
//!    [`GoogleMock::rate_limit_next`] queues 429s that carry `Retry-After`. Every answer's time
//!    is recorded ([`Call::at`], [`GoogleMock::max_requests_per_second`]).
//! 2. `Authorization: Bearer <token>` must carry a token this mock issued and that has not
//!    expired (or been expired with [`GoogleMock::expire_tokens`]), else 401 `UNAUTHENTICATED`.
//! 3. Unknown path or method: 404 `NOT_FOUND`.
//! 4. Resource ids (the body's `id` on insert, the path's id otherwise, an object's `classId`)
//!    must match `^\d+\.[A-Za-z0-9_.-]+$`, else 400 `INVALID_ARGUMENT`; the digits before the
//!    first dot must be [`GoogleMock::issuer_id`] (from `certs-example/google-issuer-id`), else
//!    403 `PERMISSION_DENIED` as for another issuer's resources.
//! 5. The body must be a JSON object, valid against `walletobjects_schema.json` (beside this file,
//!    trimmed from Google's discovery document), checked recursively: an unknown field at any
//!    depth answers 400 `Invalid JSON payload received. Unknown name "x" at 'loyalty_object.loyalty_points': Cannot find field.`
//!    (the path is the enclosing message, in snake_case, with `[i]` for list items); a value of
//!    the wrong JSON type, or a string outside an enum, answers 400 `Invalid value at
//!    'loyalty_object.state' (TYPE_ENUM), "FOO"`. As in proto3 JSON, `null` is accepted for any
//!    field, and int64/int32/double fields accept a JSON number or a string holding one. Enum
//!    values must be strings (Google would also take their numbers).
//! 6. Insert and `PUT` need the required fields: `id`, plus `issuerName` and `reviewStatus` on
//!    classes, `programName` on loyalty classes, `classId` and `state` on objects, `cardNumber`
//!    on gift card objects (400 `INVALID_ARGUMENT` otherwise). A body `id` that differs from the
//!    path id answers 400.
//! 7. An object's `classId` must name an existing class of the matching kind
//!    (`loyaltyObject` -> `loyaltyClass`, `giftCardObject` -> `giftCardClass`), else **404
//!    `NOT_FOUND`** (`Class ... not found`): the mock reports a missing class as a missing
//!    resource, so a 404 on insert means "class missing" and a 404 on `PATCH`/`PUT`/`GET` means
//!    "object or class missing".
//!
//! The mock does not add `classReference` to objects, does not approve classes (the stored
//! `reviewStatus` is the one sent) and does not refuse objects of `DRAFT` classes.
//!
//! [`GoogleMock::requests`], [`GoogleMock::calls`] and [`GoogleMock::rejected`] record every
//! request answered (token and Wallet alike), in order. The server stops when the [`GoogleMock`]
//! is dropped.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// The OAuth scope a Wallet issuer token must be asked for.
pub const WALLET_SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";
/// The `grant_type` of the service-account (JWT bearer) flow.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The resource kinds served, as they appear in paths.
pub const KINDS: [&str; 4] = [
    "loyaltyClass",
    "loyaltyObject",
    "giftCardClass",
    "giftCardObject",
];
/// Lifetime of the access tokens the mock issues, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;
/// Longest `exp - iat` accepted in an assertion, in seconds.
const MAX_ASSERTION_LIFETIME: i64 = 3600;
/// Clock skew tolerated on `iat` / `exp`, in seconds.
const CLOCK_SKEW: i64 = 60;

/// The trimmed Wallet schemas: schema name -> `{"properties": {field: type-descriptor}}`.
const SCHEMA_JSON: &str = include_str!("walletobjects_schema.json");

/// Path of a file in the repository's `certs-example/` folder.
pub fn certs_example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("certs-example")
        .join(file)
}

/// The parsed `walletobjects_schema.json`.
pub fn schemas() -> &'static Map<String, Value> {
    static SCHEMAS: OnceLock<Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        serde_json::from_str(SCHEMA_JSON).expect("google mock: walletobjects_schema.json")
    })
}

/// The schema name of a kind (`loyaltyObject` -> `LoyaltyObject`); panics on an unknown kind.
pub fn schema_name(kind: &str) -> &'static str {
    match kind {
        "loyaltyClass" => "LoyaltyClass",
        "loyaltyObject" => "LoyaltyObject",
        "giftCardClass" => "GiftCardClass",
        "giftCardObject" => "GiftCardObject",
        other => panic!("google mock: unknown kind {other:?} (expected one of {KINDS:?})"),
    }
}

/// Validates `body` against schema `schema` (e.g. `"LoyaltyObject"`) the way the mock validates
/// request bodies; `Err` carries the message the mock would answer with.
pub fn validate(schema: &str, body: &Value) -> Result<(), String> {
    check_message(schema, body, &snake(schema))
}

/// One request the mock answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// `GET`, `POST`, `PATCH`, `PUT`, ...
    pub method: String,
    /// The path, without the query string (`/token`, `/walletobjects/v1/loyaltyClass`, ...).
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The request body when it was JSON (Wallet calls); `None` for `/token` and empty bodies.
    pub body: Option<Value>,
    /// When the request was answered (for request-rate assertions).
    pub at: Instant,
}

/// A running Google stand-in. Dropping it stops the server.
pub struct GoogleMock {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// `{base}/token`: where assertions are exchanged, and the `aud` they must carry.
    pub token_url: String,
    /// The Wallet API root, equal to `base`: requests go to `{api_url}/walletobjects/v1/...`.
    pub api_url: String,
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// The issuer id resources must belong to (`certs-example/google-issuer-id`).
    pub issuer_id: String,
    /// The service account's `client_email`, the `iss` assertions must carry.
    pub client_email: String,
    state: Arc<State>,
    server: JoinHandle<()>,
}

struct State {
    inner: Mutex<Inner>,
    /// Signalled after every request answered.
    changed: Notify,
    token_url: String,
    client_email: String,
    key_id: String,
    issuer_id: String,
    decoding_key: DecodingKey,
}

#[derive(Default)]
struct Inner {
    /// Access token -> when it expires.
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    /// kind -> id -> resource.
    store: HashMap<&'static str, BTreeMap<String, Value>>,
    /// Remaining Wallet calls to fail, and with which status.
    fail_next: Option<(usize, u16)>,
    /// Remaining `/token` calls to fail, and with which status.
    fail_token_next: Option<(usize, u16)>,
    /// Seconds every 429 answer asks the caller to wait (`Retry-After`); none when `None`.
    retry_after: Option<u64>,
    calls: Vec<Call>,
    rejected: Vec<(u16, String)>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take every later assertion down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl GoogleMock {
    /// Starts the server on the current tokio runtime and returns once it is listening.
    ///
    /// Panics if the files in `certs-example/` cannot be read or the port cannot be bound.
    pub async fn start() -> GoogleMock {
        passfold::google::rs256::install();
        let account: Value = serde_json::from_slice(
            &std::fs::read(certs_example("google-service-account.json"))
                .expect("google mock: read google-service-account.json"),
        )
        .expect("google mock: parse google-service-account.json");
        let client_email = account["client_email"]
            .as_str()
            .expect("google mock: client_email")
            .to_string();
        let key_id = account["private_key_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let public_pem = std::fs::read(certs_example("google-service-account.pub.pem"))
            .expect("google mock: read google-service-account.pub.pem");
        let decoding_key =
            DecodingKey::from_rsa_pem(&public_pem).expect("google mock: parse public key");
        let issuer_id = std::fs::read_to_string(certs_example("google-issuer-id"))
            .expect("google mock: read google-issuer-id")
            .trim()
            .to_string();
        // Parse the schemas now so a broken file fails at start, not in the first request.
        let _ = schemas();

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("google mock: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("google mock: local_addr");
        let base = format!("http://{addr}");
        let token_url = format!("{base}/token");
        let state = Arc::new(State {
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
            token_url: token_url.clone(),
            client_email: client_email.clone(),
            key_id,
            issuer_id: issuer_id.clone(),
            decoding_key,
        });
        let server = tokio::spawn(accept_loop(listener, state.clone()));
        GoogleMock {
            api_url: base.clone(),
            base,
            token_url,
            addr,
            issuer_id,
            client_email,
            state,
            server,
        }
    }

    /// The next `n` Wallet API calls answer `status` (500, 503, 429, 403, ...) before any other
    /// handling. Replaces any failures still queued; `n = 0` clears them.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.lock().fail_next = (n > 0).then_some((n, status));
    }

    /// The next `n` Wallet API calls answer 429 with `Retry-After: seconds`.
    pub fn rate_limit_next(&self, n: usize, seconds: u64) {
        let mut inner = self.state.lock();
        inner.fail_next = (n > 0).then_some((n, 429));
        inner.retry_after = Some(seconds);
    }

    /// Most Wallet API requests (not `/token`) answered within any one second.
    pub fn max_requests_per_second(&self) -> usize {
        let times: Vec<Instant> = self
            .calls()
            .into_iter()
            .filter(|c| c.path != "/token")
            .map(|c| c.at)
            .collect();
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// The next `n` calls to `/token` answer `status` (e.g. 500 or 503) before any other handling.
    pub fn fail_token_next(&self, n: usize, status: u16) {
        self.state.lock().fail_token_next = (n > 0).then_some((n, status));
    }

    /// Expires every access token issued so far: Wallet calls carrying one answer 401 until the
    /// client fetches a new token.
    pub fn expire_tokens(&self) {
        self.state.lock().tokens.clear();
    }

    /// A valid access token made without an assertion (not counted by
    /// [`GoogleMock::tokens_issued`]), for tests that call the Wallet API directly.
    pub fn grant_token(&self) -> String {
        let token = new_token();
        self.state.lock().tokens.insert(
            token.clone(),
            Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        );
        token
    }

    /// Stores `resource` (which must have an `id`) as if it had been inserted, without any check.
    pub fn seed(&self, kind: &str, resource: Value) {
        let kind = static_kind(kind);
        let id = resource["id"]
            .as_str()
            .expect("google mock: seed needs an \"id\"")
            .to_string();
        self.state
            .lock()
            .store
            .entry(kind)
            .or_default()
            .insert(id, resource);
        self.state.changed.notify_waiters();
    }

    /// Removes a stored resource (as if deleted on Google's side); returns it if it existed.
    pub fn forget(&self, kind: &str, id: &str) -> Option<Value> {
        let kind = static_kind(kind);
        self.state.lock().store.get_mut(kind)?.remove(id)
    }

    /// The stored resource of `kind` with `id`, if any.
    pub fn stored(&self, kind: &str, id: &str) -> Option<Value> {
        let kind = static_kind(kind);
        self.state.lock().store.get(kind)?.get(id).cloned()
    }

    /// Every stored resource of `kind`, ordered by id.
    pub fn all(&self, kind: &str) -> Vec<Value> {
        let kind = static_kind(kind);
        self.state
            .lock()
            .store
            .get(kind)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many access tokens `/token` issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.state.lock().tokens_issued
    }

    /// Every request answered so far as `(method, path, status)`, in order.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.state
            .lock()
            .calls
            .iter()
            .map(|c| (c.method.clone(), c.path.clone(), c.status))
            .collect()
    }

    /// Every request answered so far, with its JSON body, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// Every request answered with a status >= 400, as `(status, message)`, in order (the
    /// message is `error.message` for Wallet calls, `error_description` for `/token`).
    pub fn rejected(&self) -> Vec<(u16, String)> {
        self.state.lock().rejected.clone()
    }

    /// Waits until `pred(self)` holds, looking again after every request answered (and at least
    /// every 50 ms); false if `timeout` passed first.
    pub async fn wait_until(&self, pred: impl Fn(&GoogleMock) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register for the notification before looking, so a change in between is not missed.
            let notified = self.state.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if pred(self) {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let wake = deadline.min(now + Duration::from_millis(50));
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
    }
}

impl Drop for GoogleMock {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.server.abort();
    }
}

fn static_kind(kind: &str) -> &'static str {
    KINDS
        .iter()
        .copied()
        .find(|k| *k == kind)
        .unwrap_or_else(|| panic!("google mock: unknown kind {kind:?} (expected one of {KINDS:?})"))
}

fn new_token() -> String {
    format!("ya29.mock-{}", hex::encode(rand::random::<[u8; 24]>()))
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut conns = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
        let Ok((tcp, _peer)) = listener.accept().await else {
            continue;
        };
        conns.spawn(serve_connection(tcp, state.clone()));
    }
}

async fn serve_connection(tcp: TcpStream, state: Arc<State>) {
    let _ = tcp.set_nodelay(true);
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(req, &state).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };

    let is_token = path == "/token";
    let (status, answer) = if is_token {
        token_endpoint(state, &method, &body)
    } else if path == "/walletobjects/v1" || path.starts_with("/walletobjects/v1/") {
        wallet(state, &method, &path, &query, auth.as_deref(), &body)
    } else {
        google_error(404, format!("The requested URL {path} was not found."))
    };

    let retry_after = {
        let mut inner = state.lock();
        inner.calls.push(Call {
            at: Instant::now(),
            method: method.to_string(),
            path,
            status,
            body: if is_token {
                None
            } else {
                serde_json::from_slice(&body).ok()
            },
        });
        if status >= 400 {
            let message = answer["error"]["message"]
                .as_str()
                .or_else(|| answer["error_description"].as_str())
                .unwrap_or_default()
                .to_string();
            inner.rejected.push((status, message));
        }
        inner.retry_after.filter(|_| status == 429)
    };
    state.changed.notify_waiters();

    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json; charset=UTF-8");
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds.to_string());
    }
    response
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("google mock: response")
}

// ---------------------------------------------------------------------------------------------
// OAuth token endpoint

fn oauth_error(error: &str, description: impl Into<String>) -> (u16, Value) {
    (
        400,
        json!({"error": error, "error_description": description.into()}),
    )
}

fn token_endpoint(state: &State, method: &Method, body: &[u8]) -> (u16, Value) {
    {
        let mut inner = state.lock();
        if let Some((n, status)) = inner.fail_token_next {
            inner.fail_token_next = (n > 1).then_some((n - 1, status));
            return (
                status,
                json!({"error": "internal_failure", "error_description": format!("Injected failure ({status}).")}),
            );
        }
    }
    if method != Method::POST {
        return google_error(405, format!("Method {method} not allowed on /token."));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    match form.get("grant_type").map(String::as_str) {
        Some(JWT_BEARER_GRANT) => {}
        Some(other) => {
            return oauth_error(
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            )
        }
        None => return oauth_error("unsupported_grant_type", "Missing grant_type."),
    }
    let Some(assertion) = form.get("assertion").filter(|a| !a.is_empty()) else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    if let Err(description) = check_assertion(state, assertion) {
        return oauth_error("invalid_grant", description);
    }
    let token = new_token();
    {
        let mut inner = state.lock();
        inner.tokens.insert(
            token.clone(),
            Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        );
        inner.tokens_issued += 1;
    }
    (
        200,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS}),
    )
}

/// Verifies a service-account assertion; `Err` carries the `error_description`.
fn check_assertion(state: &State, assertion: &str) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| format!("Invalid JWT: cannot parse header ({e})."))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!(
            "Invalid JWT: algorithm must be RS256, got {:?}.",
            header.alg
        ));
    }
    if let Some(kid) = &header.kid {
        if !state.key_id.is_empty() && *kid != state.key_id {
            return Err("Invalid JWT Signature.".to_string());
        }
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_url]);
    validation.set_issuer(&[&state.client_email]);
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    validation.leeway = CLOCK_SKEW as u64;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(assertion, &state.decoding_key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => "Invalid JWT Signature.".to_string(),
                ErrorKind::ExpiredSignature => {
                    "Invalid JWT: the assertion has expired (check iat and exp).".to_string()
                }
                ErrorKind::InvalidAudience => format!(
                    "Invalid JWT: aud must be the token endpoint {}.",
                    state.token_url
                ),
                ErrorKind::InvalidIssuer => format!(
                    "Invalid JWT: iss must be the service account {}.",
                    state.client_email
                ),
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("Invalid JWT: missing claim {claim}.")
                }
                _ => format!("Invalid JWT: {e}."),
            })?;
    let claims = data.claims;
    let scopes = claims.get("scope").and_then(Value::as_str).unwrap_or("");
    if !scopes.split_whitespace().any(|s| s == WALLET_SCOPE) {
        return Err(format!(
            "Invalid JWT: scope must include {WALLET_SCOPE}, got {scopes:?}."
        ));
    }
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_i64),
        claims.get("exp").and_then(Value::as_i64),
    ) else {
        return Err("Invalid JWT: iat and exp must be integers.".to_string());
    };
    if exp - iat > MAX_ASSERTION_LIFETIME || exp <= iat {
        return Err(format!(
            "Invalid JWT: exp - iat must be between 1 and {MAX_ASSERTION_LIFETIME} seconds, got {}.",
            exp - iat
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    if iat > now + CLOCK_SKEW {
        return Err("Invalid JWT: iat is in the future.".to_string());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Wallet API

/// Google's JSON error body for `code`.
fn google_error(code: u16, message: impl Into<String>) -> (u16, Value) {
    let message = message.into();
    let (status, reason) = match code {
        400 => ("INVALID_ARGUMENT", "badRequest"),
        401 => ("UNAUTHENTICATED", "authError"),
        403 => ("PERMISSION_DENIED", "forbidden"),
        404 => ("NOT_FOUND", "notFound"),
        405 => ("METHOD_NOT_ALLOWED", "methodNotAllowed"),
        409 => ("ALREADY_EXISTS", "duplicate"),
        429 => ("RESOURCE_EXHAUSTED", "rateLimitExceeded"),
        500 => ("INTERNAL", "backendError"),
        502 | 503 => ("UNAVAILABLE", "backendError"),
        504 => ("DEADLINE_EXCEEDED", "backendError"),
        _ => ("UNKNOWN", "unknown"),
    };
    (
        code,
        json!({"error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }}),
    )
}

/// The class kind an object kind's `classId` points into.
fn class_kind_of(kind: &str) -> Option<&'static str> {
    match kind {
        "loyaltyObject" => Some("loyaltyClass"),
        "giftCardObject" => Some("giftCardClass"),
        _ => None,
    }
}

/// Fields insert and update need, per kind.
fn required_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "loyaltyClass" => &["id", "issuerName", "programName", "reviewStatus"],
        "giftCardClass" => &["id", "issuerName", "reviewStatus"],
        "loyaltyObject" => &["id", "classId", "state"],
        "giftCardObject" => &["id", "classId", "state", "cardNumber"],
        _ => &["id"],
    }
}

/// `^\d+\.[\w.-]+$` with ASCII word characters.
fn valid_id(id: &str) -> bool {
    let Some((issuer, rest)) = id.split_once('.') else {
        return false;
    };
    !issuer.is_empty()
        && issuer.bytes().all(|b| b.is_ascii_digit())
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Checks the shape and the issuer of a resource id.
fn check_id(state: &State, what: &str, id: &str) -> Result<(), (u16, Value)> {
    if !valid_id(id) {
        return Err(google_error(
            400,
            format!(
                "Invalid {what} \"{id}\": expected <issuer id>.<identifier> with only letters, digits, '.', '_' or '-'."
            ),
        ));
    }
    let issuer = id.split('.').next().unwrap_or_default();
    if issuer != state.issuer_id {
        return Err(google_error(
            403,
            format!(
                "The caller does not have permission: {what} \"{id}\" belongs to issuer {issuer}, not {}.",
                state.issuer_id
            ),
        ));
    }
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a JSON object body and validates it against `schema`.
fn parse_body(body: &[u8], schema: &str) -> Result<Map<String, Value>, (u16, Value)> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| google_error(400, format!("Invalid JSON payload received. {e}")))?;
    if !value.is_object() {
        return Err(google_error(
            400,
            format!(
                "Invalid JSON payload received. Expected an object at '{}', got {value}.",
                snake(schema)
            ),
        ));
    }
    validate(schema, &value).map_err(|m| google_error(400, m))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => unreachable!(),
    }
}

fn check_required(kind: &str, resource: &Map<String, Value>) -> Result<(), (u16, Value)> {
    let missing: Vec<&str> = required_fields(kind)
        .iter()
        .copied()
        .filter(|f| resource.get(*f).is_none_or(Value::is_null))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(google_error(
            400,
            format!(
                "Missing required field(s) in {}: {}.",
                snake(schema_name(kind)),
                missing.join(", ")
            ),
        ))
    }
}

/// For an object kind: `classId` must be well formed and name an existing class.
fn check_class(
    state: &State,
    kind: &str,
    resource: &Map<String, Value>,
) -> Result<(), (u16, Value)> {
    let Some(class_kind) = class_kind_of(kind) else {
        return Ok(());
    };
    let Some(class_id) = resource.get("classId").and_then(Value::as_str) else {
        return Ok(());
    };
    check_id(state, "class id", class_id)?;
    let exists = state
        .lock()
        .store
        .get(class_kind)
        .is_some_and(|m| m.contains_key(class_id));
    if exists {
        Ok(())
    } else {
        Err(google_error(
            404,
            format!("Class {class_id} not found (no {class_kind} with that id)."),
        ))
    }
}

fn wallet(
    state: &State,
    method: &Method,
    path: &str,
    query: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    match wallet_inner(state, method, path, query, auth, body) {
        Ok(answer) => (200, answer),
        Err(error) => error,
    }
}

fn wallet_inner(
    state: &State,
    method: &Method,
    path: &str,
    query: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Result<Value, (u16, Value)> {
    // 1. Injected failures.
    {
        let mut inner = state.lock();
        if let Some((n, status)) = inner.fail_next {
            inner.fail_next = (n > 1).then_some((n - 1, status));
            let message = match status {
                429 => "Quota exceeded (injected failure).".to_string(),
                500 => "Internal error encountered (injected failure).".to_string(),
                503 => "The service is currently unavailable (injected failure).".to_string(),
                s => format!("Injected failure ({s})."),
            };
            return Err(google_error(status, message));
        }
    }

    // 2. Authentication.
    let token = auth.and_then(|a| {
        let (scheme, token) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let Some(token) = token else {
        return Err(google_error(
            401,
            "Request is missing required authentication credential: expected an OAuth 2 access token (Authorization: Bearer).",
        ));
    };
    {
        let inner = state.lock();
        let valid = inner
            .tokens
            .get(token)
            .is_some_and(|expiry| *expiry > Instant::now());
        if !valid {
            return Err(google_error(
                401,
                "Request had invalid authentication credentials: the access token is unknown or expired.",
            ));
        }
    }

    // 3. Routing.
    let rest = path
        .trim_start_matches("/walletobjects/v1")
        .trim_start_matches('/');
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let Some(kind) = segments
        .first()
        .and_then(|k| KINDS.iter().copied().find(|x| x == k))
    else {
        return Err(google_error(
            404,
            format!("Method not found: {method} {path}."),
        ));
    };
    let schema = schema_name(kind);
    match (method.clone(), segments.len()) {
        (Method::POST, 1) => insert(state, kind, schema, body),
        (Method::GET, 1) => Ok(list(state, kind, query)),
        (Method::GET, 2) => {
            check_id(state, "resource id", &segments[1])?;
            get(state, kind, &segments[1])
        }
        (Method::PATCH, 2) | (Method::PUT, 2) => {
            check_id(state, "resource id", &segments[1])?;
            update(
                state,
                kind,
                schema,
                &segments[1],
                body,
                *method == Method::PATCH,
            )
        }
        (Method::POST, 3) if segments[2] == "addMessage" => {
            check_id(state, "resource id", &segments[1])?;
            add_message(state, kind, &segments[1], body)
        }
        _ => Err(google_error(
            404,
            format!("Method not found: {method} {path}."),
        )),
    }
}

fn not_found(kind: &str, id: &str) -> (u16, Value) {
    google_error(404, format!("Resource not found: {kind} {id}."))
}

fn get(state: &State, kind: &'static str, id: &str) -> Result<Value, (u16, Value)> {
    state
        .lock()
        .store
        .get(kind)
        .and_then(|m| m.get(id))
        .cloned()
        .ok_or_else(|| not_found(kind, id))
}

fn list(state: &State, kind: &'static str, query: &str) -> Value {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let class_id = params.get("classId");
    let resources: Vec<Value> = state
        .lock()
        .store
        .get(kind)
        .map(|m| {
            m.values()
                .filter(|r| class_id.is_none_or(|c| r["classId"].as_str() == Some(c.as_str())))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    json!({
        "pagination": {"kind": "walletobjects#pagination", "resultsPerPage": resources.len()},
        "resources": resources,
    })
}

fn insert(
    state: &State,
    kind: &'static str,
    schema: &str,
    body: &[u8],
) -> Result<Value, (u16, Value)> {
    let resource = parse_body(body, schema)?;
    let Some(id) = resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(google_error(
            400,
            format!("Missing required field(s) in {}: id.", snake(schema)),
        ));
    };
    check_id(state, "resource id", &id)?;
    check_required(kind, &resource)?;
    check_class(state, kind, &resource)?;
    let mut inner = state.lock();
    let store = inner.store.entry(kind).or_default();
    if store.contains_key(&id) {
        return Err(google_error(
            409,
            format!("Resource already exists: {kind} {id}."),
        ));
    }
    let value = Value::Object(resource);
    store.insert(id, value.clone());
    Ok(value)
}

fn update(
    state: &State,
    kind: &'static str,
    schema: &str,
    id: &str,
    body: &[u8],
    patch: bool,
) -> Result<Value, (u16, Value)> {
    let changes = parse_body(body, schema)?;
    if let Some(body_id) = changes.get("id").and_then(Value::as_str) {
        if body_id != id {
            return Err(google_error(
                400,
                format!("The resource id in the body ({body_id}) does not match the one in the path ({id})."),
            ));
        }
    }
    let current = get(state, kind, id)?;
    let mut next = if patch {
        let mut merged = match current {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in changes {
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        merged
    } else {
        changes
    };
    next.insert("id".to_string(), Value::String(id.to_string()));
    next.retain(|_, v| !v.is_null());
    check_required(kind, &next)?;
    check_class(state, kind, &next)?;
    let value = Value::Object(next);
    let mut inner = state.lock();
    let store = inner.store.entry(kind).or_default();
    // The resource may have been forgotten while the lock was released.
    if !store.contains_key(id) {
        return Err(not_found(kind, id));
    }
    store.insert(id.to_string(), value.clone());
    Ok(value)
}

fn add_message(
    state: &State,
    kind: &'static str,
    id: &str,
    body: &[u8],
) -> Result<Value, (u16, Value)> {
    let request = parse_body(body, "AddMessageRequest")?;
    let Some(message) = request.get("message").filter(|m| m.is_object()).cloned() else {
        return Err(google_error(400, "Missing required field: message."));
    };
    let mut inner = state.lock();
    let Some(resource) = inner.store.get_mut(kind).and_then(|m| m.get_mut(id)) else {
        return Err(not_found(kind, id));
    };
    let Value::Object(map) = resource else {
        return Err(not_found(kind, id));
    };
    match map.get_mut("messages") {
        Some(Value::Array(list)) => list.push(message),
        _ => {
            map.insert("messages".to_string(), Value::Array(vec![message]));
        }
    }
    Ok(json!({ "resource": resource.clone() }))
}

// ---------------------------------------------------------------------------------------------
// Schema validation

/// `loyaltyPoints` -> `loyalty_points`, `LoyaltyObject` -> `loyalty_object`.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn invalid_value(path: &str, expected: &str, v: &Value) -> String {
    format!("Invalid value at '{path}' ({expected}), {v}")
}

fn check_message(schema: &str, v: &Value, path: &str) -> Result<(), String> {
    let Some(def) = schemas().get(schema) else {
        panic!("google mock: schema {schema} missing from walletobjects_schema.json");
    };
    let Value::Object(obj) = v else {
        return Err(invalid_value(
            path,
            &format!("type.googleapis.com/google.walletobjects.v1.{schema}"),
            v,
        ));
    };
    let props = def["properties"].as_object();
    for (name, value) in obj {
        let Some(descriptor) = props.and_then(|p| p.get(name)) else {
            return Err(format!(
                "Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot find field."
            ));
        };
        check_field(descriptor, value, &format!("{path}.{}", snake(name)))?;
    }
    Ok(())
}

fn integer_in(v: &Value, min: i64, max: i64) -> bool {
    let parsed = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            // 5.0 is an integer for proto3 JSON.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    parsed.is_some_and(|n| (min..=max).contains(&n))
}

fn check_field(descriptor: &Value, v: &Value, path: &str) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    if let Some(name) = descriptor.get("$ref").and_then(Value::as_str) {
        return check_message(name, v, path);
    }
    let format = descriptor.get("format").and_then(Value::as_str);
    match descriptor.get("type").and_then(Value::as_str) {
        Some("array") => {
            let Value::Array(items) = v else {
                return Err(invalid_value(path, "a list", v));
            };
            let item = descriptor.get("items").unwrap_or(&Value::Null);
            for (i, element) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                if element.is_null() {
                    return Err(invalid_value(&at, "a list element", element));
                }
                check_field(item, element, &at)?;
            }
            Ok(())
        }
        Some("string") if matches!(format, Some("int64")) => {
            if integer_in(v, i64::MIN, i64::MAX) {
                Ok(())
            } else {
                Err(invalid_value(path, "TYPE_INT64", v))
            }
        }
        Some("string") if matches!(format, Some("uint64")) => {
            if integer_in(v, 0, i64::MAX) {
                Ok(())
            } else {
                Err(invalid_value(path, "TYPE_UINT64", v))
            }
        }
        Some("string") => {
            let Value::String(s) = v else {
                let expected = if descriptor.get("enum").is_some() {
                    "TYPE_ENUM"
                } else {
                    "TYPE_STRING"
                };
                return Err(invalid_value(path, expected, v));
            };
            match descriptor.get("enum").and_then(Value::as_array) {
                Some(values) if !values.iter().any(|e| e.as_str() == Some(s.as_str())) => {
                    Err(invalid_value(path, "TYPE_ENUM", v))
                }
                _ => Ok(()),
            }
        }
        Some("integer") => {
            let (min, max, name) = match format {
                Some("uint32") => (0, u32::MAX as i64, "TYPE_UINT32"),
                _ => (i32::MIN as i64, i32::MAX as i64, "TYPE_INT32"),
            };
            if integer_in(v, min, max) {
                Ok(())
            } else {
                Err(invalid_value(path, name, v))
            }
        }
        Some("number") => {
            let ok = match v {
                Value::Number(_) => true,
                Value::String(s) => {
                    s.trim().parse::<f64>().is_ok()
                        || matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity")
                }
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(invalid_value(path, "TYPE_DOUBLE", v))
            }
        }
        Some("boolean") => {
            if v.is_boolean() {
                Ok(())
            } else {
                Err(invalid_value(path, "TYPE_BOOL", v))
            }
        }
        Some("object") => {
            if v.is_object() {
                Ok(())
            } else {
                Err(invalid_value(path, "an object", v))
            }
        }
        _ => Ok(()),
    }
}
