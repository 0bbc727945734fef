//! The Google Wallet REST client: an OAuth 2.0 JWT-bearer grant with the service account
//! (the token cached until shortly before it expires), classes inserted once and patched
//! when their template changes, objects patched (inserted when Google has none yet).
//! 429 and 5xx are retried with backoff; other refusals are returned with Google's message.

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

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// Worth trying again later (network, 429, 5xx).
    #[error("Google Wallet is unavailable: {0}")]
    Transient(String),
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
        })
    }

    pub fn issuer(&self) -> &GoogleIssuer {
        &self.issuer
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
        let mut last = String::new();
        let mut renew = false;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF * 3u32.pow(attempt - 1)).await;
            }
            let token = self.access_token(renew).await?;
            renew = false;
            let sent = self
                .http
                .request(method.clone(), format!("{}/{path}", self.api))
                .bearer_auth(&token)
                .json(body)
                .send()
                .await;
            let res = match sent {
                Ok(res) => res,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = res.status().as_u16();
            let answer: Value = res.json().await.unwrap_or(Value::Null);
            match status {
                401 => {
                    renew = true;
                    last = "401".into();
                }
                429 | 500..=599 => last = format!("{status} {}", answer["error"]["message"]),
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
        if self.classes.lock().await.get(&class.id) == Some(&class.body) {
            return Ok(());
        }
        let (collection, _) = class.kind.collections();
        let (status, answer) = self
            .call(reqwest::Method::POST, collection, &class.body)
            .await?;
        match status {
            200 => {}
            409 => {
                // It exists: send the current design; an approved class goes back to review.
                let (status, answer) = self
                    .call(
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
