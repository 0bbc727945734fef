//! The APNs client: HTTP/2 over TLS with the Pass Type ID certificate as the client
//! identity. reqwest (already the project's HTTP client) negotiates HTTP/2 by ALPN and
//! multiplexes every push of a batch on one connection; a broken connection is replaced
//! on the next request.

use super::SigningIdentity;
use crate::configuration::ApnsSettings;
use anyhow::Context;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    Accepted,
    /// 410: the device no longer holds the pass; drop its registration.
    Unregistered,
    /// 400 BadDeviceToken: the token is not valid for this topic; drop it.
    BadDeviceToken,
    /// 429, 5xx or a network failure, still failing after the client's own retries.
    Retry(String),
    /// Any other refusal: logged, not retried.
    Refused(u16, String),
}

impl PushResult {
    pub fn label(&self) -> &'static str {
        match self {
            PushResult::Accepted => "accepted",
            PushResult::Unregistered => "unregistered",
            PushResult::BadDeviceToken => "bad_device_token",
            PushResult::Retry(_) => "retry",
            PushResult::Refused(..) => "refused",
        }
    }
}

pub struct ApnsClient {
    http: reqwest::Client,
    base: String,
    topic: String,
}

/// Attempts per push before it is handed back for a later retry, and the first backoff.
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(200);

impl ApnsClient {
    pub fn new(identity: &SigningIdentity, settings: &ApnsSettings) -> anyhow::Result<Self> {
        let mut chain = identity.certificate.to_pem()?;
        for cert in &identity.chain {
            chain.extend(cert.to_pem()?);
        }
        let key = identity.key.private_key_to_pem_pkcs8()?;
        let client_identity = reqwest::Identity::from_pkcs8_pem(&chain, &key)
            .context("the Pass Type ID identity cannot serve as a TLS client identity")?;
        let mut builder = reqwest::Client::builder()
            .use_native_tls()
            .identity(client_identity)
            // APNs speaks only HTTP/2. Without this a cold client opens one connection per
            // request of a burst before ALPN has settled on h2; with it, one connection.
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_while_idle(true)
            .pool_max_idle_per_host(1);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("APNS_CA_FILE: cannot read {}", path.display()))?;
            let ca = reqwest::Certificate::from_pem(&pem)
                .context("APNS_CA_FILE is not a PEM certificate")?;
            builder = builder.add_root_certificate(ca);
        }
        Ok(ApnsClient {
            http: builder.build()?,
            base: settings.url.trim_end_matches('/').to_string(),
            topic: identity.pass_type_id.clone(),
        })
    }

    /// Tells a device that one of its passes changed: Wallet then asks the web service
    /// which, and fetches them. Retries 429 and 5xx with backoff before giving up.
    pub async fn push(&self, token: &str) -> PushResult {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF * 4u32.pow(attempt - 1)).await;
            }
            // Wallet's update push (Wallet Developer Guide, "Updating a Pass"): the payload is
            // an empty JSON dictionary and the topic is the pass type identifier. The push
            // type must match the payload (APNs, "Sending notification requests to APNs"):
            // an empty payload shows nothing, so `background`, which APNs accepts only with
            // priority 5. Priority 5 pushes may be grouped and delivered in bursts; what the
            // customer sees (changeMessage) comes with the pass fetched afterwards.
            let sent = self
                .http
                .post(format!("{}/3/device/{token}", self.base))
                .header("apns-topic", &self.topic)
                .header("apns-push-type", "background")
                .header("apns-priority", "5")
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await;
            let res = match sent {
                Ok(res) => res,
                Err(e) => {
                    last = format!("network: {e}");
                    continue;
                }
            };
            let status = res.status().as_u16();
            if status == 200 {
                return PushResult::Accepted;
            }
            let reason = res
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|b| b.get("reason").and_then(|r| r.as_str()).map(str::to_string))
                .unwrap_or_default();
            match (status, reason.as_str()) {
                (410, _) => return PushResult::Unregistered,
                (400, "BadDeviceToken") => return PushResult::BadDeviceToken,
                (429, _) | (500..=599, _) => last = format!("{status} {reason}"),
                _ => return PushResult::Refused(status, reason),
            }
        }
        PushResult::Retry(last)
    }
}
