//! The Google Wallet REST client: an OAuth 2.0 JWT-bearer grant with the service account
//! (the token cached until shortly before it expires), classes inserted once and patched
//! when their template changes (one request per class at a time), objects patched
//! (inserted when Google has none yet). Every request waits for a token of one bucket per
//! issuer and process (`PASSFOLD_GOOGLE_REQUESTS_PER_SECOND`). A 429 stops the bucket for
//! its `Retry-After` and is returned as [`GoogleError::RateLimited`], which the sync queues
//! again without counting a failed attempt; 5xx are retried with backoff; other refusals
//! are returned with Google's message.

use super::objects::{GoogleClass, GoogleObject};
use super::GoogleIssuer;
use crate::configuration::GoogleSettings;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";
const ATTEMPTS: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(200);
/// Requests the bucket lets through at once after a quiet spell; at least 2, since
/// background work leaves one token for interactive requests.
pub const BURST: f64 = 2.0;
const _: () = assert!(BURST >= 2.0);
/// The wait a 429 without `Retry-After` costs, and the most any `Retry-After` is believed.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest a sync request waits for its turn before its change is queued for later:
/// the sync holds its claiming transaction meanwhile, and long transactions hold back the
/// Apple web service's tag horizon.
const BACKGROUND_WAIT: Duration = Duration::from_secs(2);
/// The longest an interactive request (a save link's insert) waits for its turn.
const INTERACTIVE_WAIT: Duration = Duration::from_secs(1);
const INTERACTIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One token bucket for every request of this process to one issuer: `rate` a second, at
/// most [`BURST`] at once; a 429's `Retry-After` empties it until then. Background sync
/// leaves one token for interactive requests, so a save link does not queue behind a
/// backlog.
pub struct RateLimit {
    rate: f64,
    bucket: std::sync::Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    paused_until: Instant,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Self {
        let now = Instant::now();
        RateLimit {
            rate: f64::from(per_second.max(1)),
            bucket: std::sync::Mutex::new(Bucket {
                tokens: BURST,
                at: now,
                paused_until: now,
            }),
        }
    }

    /// How long until a token is free for this caller; zero when one was taken.
    fn try_take(&self, reserve: f64) -> Duration {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if b.paused_until > now {
            return b.paused_until - now;
        }
        let since = now.saturating_duration_since(b.at.max(b.paused_until));
        b.tokens = (b.tokens + since.as_secs_f64() * self.rate).min(BURST);
        b.at = now;
        if b.tokens >= 1.0 + reserve {
            b.tokens -= 1.0;
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 + reserve - b.tokens) / self.rate)
    }

    /// Waits for a token; the wait still ahead when it would take longer than `patience`.
    async fn acquire(&self, interactive: bool, patience: Duration) -> Result<(), Duration> {
        let started = Instant::now();
        loop {
            let wait = self.try_take(if interactive { 0.0 } else { 1.0 });
            if wait.is_zero() {
                return Ok(());
            }
            if started.elapsed() + wait > patience {
                return Err(wait);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Google said 429: nobody sends before `wait` is over.
    fn pause(&self, wait: Duration) {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + wait;
        if until > b.paused_until {
            b.paused_until = until;
        }
        b.tokens = 0.0;
    }
}

/// `Retry-After` in seconds (Google sends seconds), within reason.
fn retry_after(res: &reqwest::Response) -> Duration {
    res.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER))
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// Worth trying again later (network, 5xx).
    #[error("Google Wallet is unavailable: {0}")]
    Transient(String),
    /// Google kept answering 429: try again after the wait, which is no failed attempt.
    #[error("Google Wallet's rate limit: retry after {0:?}")]
    RateLimited(Duration),
    /// Google refused the request; retrying the same request will not help.
    #[error("Google Wallet refused {what}: {status} {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
}

pub struct GoogleClient {
    http: reqwest::Client,
    issuer: Arc<GoogleIssuer>,
    api: String,
    token_url: String,
    token: Mutex<Option<(String, Instant)>>,
    /// Class id -> the body last sent, so a class is written once per change.
    classes: Mutex<HashMap<String, Value>>,
    /// Class id -> its lock: one insert or patch of a class at a time (single flight).
    class_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    limit: RateLimit,
}

/// How a call is made: by the sync worker (patient, retried) or for someone waiting
/// (once, quickly, else the caller falls back).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Urgency {
    Background,
    Interactive,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'static str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl GoogleClient {
    pub fn new(issuer: Arc<GoogleIssuer>, settings: &GoogleSettings) -> anyhow::Result<Self> {
        Ok(GoogleClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            issuer,
            api: format!("{}/walletobjects/v1", settings.api_url),
            token_url: settings.token_url.clone(),
            token: Mutex::new(None),
            classes: Mutex::new(HashMap::new()),
            class_locks: Default::default(),
            limit: RateLimit::new(settings.requests_per_second),
        })
    }

    pub fn issuer(&self) -> &GoogleIssuer {
        &self.issuer
    }

    /// The configured request rate, which sizes the sync's batches.
    pub fn requests_per_second(&self) -> u32 {
        self.limit.rate as u32
    }

    async fn access_token(&self, renew: bool) -> Result<String, GoogleError> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = cached.as_ref() {
            if !renew && Instant::now() < *expires {
                return Ok(token.clone());
            }
        }
        let now = chrono::Utc::now().timestamp();
        let claims = Assertion {
            iss: &self.issuer.client_email,
            scope: SCOPE,
            aud: &self.token_url,
            iat: now,
            exp: now + 3600,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.issuer.key_id.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &self.issuer.key).map_err(|e| {
            GoogleError::Refused {
                what: "the token request".into(),
                status: 0,
                message: e.to_string(),
            }
        })?;
        let res = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| GoogleError::Transient(format!("token endpoint: {e}")))?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status != 200 {
            let message = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(if status == 429 || status >= 500 {
                GoogleError::Transient(format!("token endpoint: {status} {message}"))
            } else {
                GoogleError::Refused {
                    what: "the service account's token request".into(),
                    status,
                    message,
                }
            });
        }
        let token = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600);
        // Renew a minute early, so no call goes out with a token about to expire.
        let expires = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60));
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    /// One REST call with retries; returns Google's status and body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value), GoogleError> {
        self.call_as(Urgency::Background, method, path, body).await
    }

    async fn call_as(
        &self,
        urgency: Urgency,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value), GoogleError> {
        let interactive = urgency == Urgency::Interactive;
        let attempts = if interactive { 1 } else { ATTEMPTS };
        let mut last = String::new();
        let mut renew = false;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF * 3u32.pow(attempt - 1)).await;
            }
            let token = self.access_token(renew).await?;
            renew = false;
            let patience = if interactive {
                INTERACTIVE_WAIT
            } else {
                BACKGROUND_WAIT
            };
            if let Err(wait) = self.limit.acquire(interactive, patience).await {
                return Err(GoogleError::RateLimited(wait));
            }
            let mut request = self
                .http
                .request(method.clone(), format!("{}/{path}", self.api))
                .bearer_auth(&token)
                .json(body);
            if interactive {
                request = request.timeout(INTERACTIVE_TIMEOUT);
            }
            let res = match request.send().await {
                Ok(res) => res,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = res.status().as_u16();
            if status == 429 {
                // Everyone waits out Retry-After; this change is queued for after it,
                // which the sync does not count as a failed attempt.
                let wait = retry_after(&res);
                self.limit.pause(wait);
                return Err(GoogleError::RateLimited(wait));
            }
            let answer: Value = res.json().await.unwrap_or(Value::Null);
            match status {
                401 => {
                    renew = true;
                    last = "401".into();
                }
                500..=599 => last = format!("{status} {}", answer["error"]["message"]),
                _ => return Ok((status, answer)),
            }
        }
        Err(GoogleError::Transient(format!("{method} {path}: {last}")))
    }

    fn refused(what: &str, status: u16, answer: &Value) -> GoogleError {
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        tracing::error!(what, status, message = %message, "Google Wallet refused a request");
        GoogleError::Refused {
            what: what.to_string(),
            status,
            message,
        }
    }

    /// Inserts the class, or patches it when it exists and what we send has changed.
    pub async fn sync_class(&self, class: &GoogleClass) -> Result<(), GoogleError> {
        self.sync_class_as(Urgency::Background, class).await
    }

    async fn sync_class_as(
        &self,
        urgency: Urgency,
        class: &GoogleClass,
    ) -> Result<(), GoogleError> {
        if self.classes.lock().await.get(&class.id) == Some(&class.body) {
            return Ok(());
        }
        // Concurrent cards of one class wait for the first to write it, then find it done.
        let lock = {
            let mut locks = self.class_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(class.id.clone()).or_default().clone()
        };
        let _one_at_a_time = lock.lock().await;
        if self.classes.lock().await.get(&class.id) == Some(&class.body) {
            return Ok(());
        }
        let (collection, _) = class.kind.collections();
        let (status, answer) = self
            .call_as(urgency, reqwest::Method::POST, collection, &class.body)
            .await?;
        match status {
            200 => {}
            409 => {
                // It exists: send the current design; an approved class goes back to review.
                let (status, answer) = self
                    .call_as(
                        urgency,
                        reqwest::Method::PATCH,
                        &format!("{collection}/{}", class.id),
                        &class.body,
                    )
                    .await?;
                if status != 200 {
                    return Err(Self::refused("a class update", status, &answer));
                }
            }
            _ => return Err(Self::refused("a class", status, &answer)),
        }
        self.classes
            .lock()
            .await
            .insert(class.id.clone(), class.body.clone());
        Ok(())
    }

    /// Adds a message to the object (after it was synced).
    pub async fn add_message(
        &self,
        object: &GoogleObject,
        message: &Value,
    ) -> Result<(), GoogleError> {
        let (_, collection) = object.kind.collections();
        let path = format!("{collection}/{}/addMessage", object.id);
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                &path,
                &serde_json::json!({"message": message}),
            )
            .await?;
        match status {
            200 => Ok(()),
            _ => Err(Self::refused("a message", status, &answer)),
        }
    }

    /// Patches the object; inserts it when Google has none yet.
    pub async fn sync_object(&self, object: &GoogleObject) -> Result<(), GoogleError> {
        let (_, collection) = object.kind.collections();
        let (status, answer) = self
            .call(
                reqwest::Method::PATCH,
                &format!("{collection}/{}", object.id),
                &object.body,
            )
            .await?;
        match status {
            200 => Ok(()),
            404 => {
                let (status, answer) = self
                    .call(reqwest::Method::POST, collection, &object.body)
                    .await?;
                match status {
                    200 | 409 => Ok(()),
                    _ => Err(Self::refused("an object", status, &answer)),
                }
            }
            _ => Err(Self::refused("an object update", status, &answer)),
        }
    }
}

impl GoogleClient {
    /// Inserts a card's object (and its class) for a save link, once and quickly: one try,
    /// a short wait for the rate limit, a short timeout. An object Google already has (409)
    /// counts as inserted.
    pub async fn insert_for_link(
        &self,
        class: &GoogleClass,
        object: &GoogleObject,
    ) -> Result<(), GoogleError> {
        self.sync_class_as(Urgency::Interactive, class).await?;
        let (_, collection) = object.kind.collections();
        let (status, answer) = self
            .call_as(
                Urgency::Interactive,
                reqwest::Method::POST,
                collection,
                &object.body,
            )
            .await?;
        match status {
            200 | 409 => Ok(()),
            _ => Err(Self::refused("an object", status, &answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;
    use std::time::Duration;

    #[test]
    fn the_bucket_spaces_requests_and_keeps_a_token_for_interactive_ones() {
        let limit = RateLimit::new(10);
        // A burst, then background work must wait while one token stays for a save link.
        assert!(limit.try_take(0.0).is_zero());
        assert!(!limit.try_take(1.0).is_zero());
        assert!(limit.try_take(0.0).is_zero());
        let wait = limit.try_take(0.0);
        assert!(
            wait > Duration::from_millis(50) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        limit.pause(Duration::from_secs(3));
        assert!(limit.try_take(0.0) > Duration::from_secs(2));
    }
}
