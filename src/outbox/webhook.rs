//! The webhook channel: a claim is one endpoint's queued messages, oldest first; they are
//! POSTed one after another, signed per Standard Webhooks, and the first that fails stops
//! the endpoint's batch: it and the messages after it stay queued in their order (see
//! [`Channel::kept`]) and are tried again after an exponential backoff with jitter. An
//! endpoint failing for 3 days is disabled, and the merchant's other endpoints are told.

use super::{Channel, Claim, Outcome};
use crate::clock::Clock;
use crate::domain::states::Channel as ChannelName;
use crate::schema::{outbox, webhook_attempts, webhook_endpoints, webhook_messages};
use crate::webhooks::endpoints::Endpoint;
use crate::webhooks::{events, safety, signing};
use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A 2xx within this counts as delivered.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Failing this long disables the endpoint.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::days(3);
/// Bytes of a receiver's answer read before it is dropped.
const BODY_LIMIT: usize = 4096;

pub struct WebhookDeliveries {
    pub clock: Clock,
    pub metrics: crate::metrics::Metrics,
    /// `PASSFOLD_WEBHOOKS_ALLOW_PRIVATE`: http and private addresses allowed.
    pub allow_private: bool,
    /// Clients by host and the address it was checked to resolve to: a batch whose host
    /// still resolves to the same address reuses the client and its open connections.
    pub clients: Clients,
}

/// HTTP clients of the endpoints' hosts (see [`WebhookDeliveries::clients`]).
#[derive(Default)]
pub struct Clients(std::sync::Mutex<HashMap<(String, std::net::SocketAddr), reqwest::Client>>);

/// Hosts whose clients are kept; past it the cache starts over.
const MAX_CLIENTS: usize = 1_000;

/// One endpoint's messages, ready to send.
pub struct Batch {
    endpoint: Endpoint,
    messages: Vec<Message>,
}

struct Message {
    row: i64,
    id: String,
    /// Attempts before this one.
    attempts: i32,
    body: String,
}

/// What became of one endpoint's batch.
pub struct Sent {
    endpoint: Endpoint,
    tries: Vec<Try>,
    /// The first failed message's row and those after it (never tried): they stay queued.
    kept: Vec<i64>,
}

struct Try {
    message_id: String,
    attempt: i32,
    delivered: bool,
    response_code: Option<i32>,
    error: Option<String>,
    duration_ms: i32,
    at: DateTime<Utc>,
}

impl Channel for WebhookDeliveries {
    type Plan = Vec<Batch>;
    type Sent = Vec<Sent>;

    fn name(&self) -> ChannelName {
        ChannelName::Webhook
    }

    /// Endpoints claimed at once (each with up to 50 messages).
    fn batch_size(&self) -> i64 {
        50
    }

    fn one_sender_per_pass(&self) -> bool {
        true
    }

    fn plan(&self, conn: &mut PgConnection, claims: &[Claim]) -> anyhow::Result<Vec<Batch>> {
        let ids: Vec<Uuid> = claims.iter().map(|c| c.pass_id).collect();
        let merchants: Vec<Uuid> = claims.iter().map(|c| c.merchant_id).collect();
        let endpoints: HashMap<Uuid, Endpoint> = webhook_endpoints::table
            .filter(webhook_endpoints::id.eq_any(&ids))
            .select(Endpoint::as_select())
            .load::<Endpoint>(conn)?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let message_ids: Vec<&str> = claims
            .iter()
            .flat_map(|c| c.messages.iter().map(|(m, _)| m.as_str()))
            .collect();
        let messages: HashMap<(Uuid, String), (String, serde_json::Value, DateTime<Utc>)> =
            webhook_messages::table
                .filter(webhook_messages::merchant_id.eq_any(&merchants))
                .filter(webhook_messages::id.eq_any(&message_ids))
                .select((
                    webhook_messages::merchant_id,
                    webhook_messages::id,
                    webhook_messages::type_,
                    webhook_messages::data,
                    webhook_messages::created_at,
                ))
                .load::<(Uuid, String, String, serde_json::Value, DateTime<Utc>)>(conn)?
                .into_iter()
                .map(|(merchant, id, kind, data, at)| ((merchant, id), (kind, data, at)))
                .collect();
        let mut plan = Vec::new();
        for claim in claims {
            // A disabled or deleted endpoint is sent nothing; its rows go.
            let Some(endpoint) = endpoints.get(&claim.pass_id).filter(|e| e.enabled) else {
                continue;
            };
            let mut batch = Vec::new();
            for ((id, attempts), row) in claim.messages.iter().zip(&claim.rows) {
                let Some((kind, data, at)) = messages.get(&(claim.merchant_id, id.clone())) else {
                    continue;
                };
                let body = serde_json::json!({
                    "type": kind,
                    "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "data": data,
                });
                batch.push(Message {
                    row: *row,
                    id: id.clone(),
                    attempts: *attempts,
                    body: body.to_string(),
                });
            }
            plan.push(Batch {
                endpoint: endpoint.clone(),
                messages: batch,
            });
        }
        Ok(plan)
    }

    async fn send(&self, plan: Vec<Batch>) -> Vec<Sent> {
        futures_util::future::join_all(plan.into_iter().map(|batch| self.send_batch(batch))).await
    }

    fn kept(&self, _claims: &[Claim], sent: &Vec<Sent>) -> Vec<i64> {
        sent.iter().flat_map(|s| s.kept.iter().copied()).collect()
    }

    fn settle(
        &self,
        conn: &mut PgConnection,
        _claims: &[Claim],
        sent: Vec<Sent>,
    ) -> QueryResult<HashMap<Uuid, Outcome>> {
        let now = self.clock.now();
        for s in sent {
            let endpoint = &s.endpoint;
            // Deleted while its messages were being sent: its log went with it.
            let still: i64 = webhook_endpoints::table
                .filter(webhook_endpoints::id.eq(endpoint.id))
                .count()
                .get_result(conn)?;
            if still == 0 {
                continue;
            }
            let failed = s.tries.last().filter(|t| !t.delivered);
            // A batch that delivered something starts the run of failures over.
            let progressed = s.tries.iter().any(|t| t.delivered);
            let give_up = failed.is_some()
                && !progressed
                && endpoint
                    .failing_since
                    .is_some_and(|since| now - since >= GIVE_UP_AFTER);
            let rows: Vec<_> = s
                .tries
                .iter()
                .map(|t| {
                    let status = match (t.delivered, give_up) {
                        (true, _) => "delivered",
                        (false, false) => "failed",
                        (false, true) => "gave_up",
                    };
                    (
                        webhook_attempts::merchant_id.eq(endpoint.merchant_id),
                        webhook_attempts::endpoint_id.eq(endpoint.id),
                        webhook_attempts::message_id.eq(&t.message_id),
                        webhook_attempts::attempt.eq(t.attempt),
                        webhook_attempts::status.eq(status),
                        webhook_attempts::response_code.eq(t.response_code),
                        webhook_attempts::error.eq(&t.error),
                        webhook_attempts::duration_ms.eq(t.duration_ms),
                        webhook_attempts::at.eq(t.at),
                    )
                })
                .collect();
            if !rows.is_empty() {
                diesel::insert_into(webhook_attempts::table)
                    .values(rows)
                    .execute(conn)?;
            }
            let this = webhook_endpoints::table
                .filter(webhook_endpoints::merchant_id.eq(endpoint.merchant_id))
                .filter(webhook_endpoints::id.eq(endpoint.id));
            let Some(failed) = failed else {
                if endpoint.failing_since.is_some() && !s.tries.is_empty() {
                    diesel::update(this)
                        .set(webhook_endpoints::failing_since.eq(None::<DateTime<Utc>>))
                        .execute(conn)?;
                }
                continue;
            };
            if give_up {
                disable(conn, endpoint, failed, now)?;
                continue;
            }
            if endpoint.failing_since.is_none() || progressed {
                diesel::update(this)
                    .set(webhook_endpoints::failing_since.eq(Some(now)))
                    .execute(conn)?;
            }
            // The failed message waits for its retry; those after it wait behind it (the
            // claim takes none of an endpoint's messages while its oldest is not due).
            let (first, rest) = s
                .kept
                .split_first()
                .map_or((None, &[][..]), |(f, r)| (Some(*f), r));
            if let Some(first) = first {
                diesel::sql_query(
                    "UPDATE outbox SET leased_until = NULL, attempts = $2, \
                       available_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1",
                )
                .bind::<diesel::sql_types::BigInt, _>(first)
                .bind::<diesel::sql_types::Integer, _>(failed.attempt)
                .bind::<diesel::sql_types::Double, _>(backoff(failed.attempt).as_secs_f64())
                .execute(conn)?;
            }
            diesel::update(outbox::table.filter(outbox::id.eq_any(rest)))
                .set(outbox::leased_until.eq(None::<DateTime<Utc>>))
                .execute(conn)?;
        }
        Ok(HashMap::new())
    }
}

impl WebhookDeliveries {
    /// Sends one endpoint's messages in order, stopping at the first that fails.
    async fn send_batch(&self, batch: Batch) -> Sent {
        let Batch { endpoint, messages } = batch;
        let keys = endpoint.signing_keys(self.clock.now());
        let mut tries = Vec::new();
        let mut kept = Vec::new();
        let client = self.client_for(&endpoint.url).await;
        for (i, message) in messages.iter().enumerate() {
            let at = self.clock.now();
            let started = Instant::now();
            let result = match &client {
                Ok(client) => post(client, &endpoint.url, &keys, message, at.timestamp()).await,
                Err(e) => Err((None, e.clone())),
            };
            let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
            let (delivered, response_code, error) = match result {
                Ok(code) => (true, Some(code), None),
                Err((code, error)) => (false, code, Some(error)),
            };
            self.metrics.webhook_attempt(delivered);
            tries.push(Try {
                message_id: message.id.clone(),
                attempt: message.attempts + 1,
                delivered,
                response_code,
                error,
                duration_ms,
                at,
            });
            if !delivered {
                kept = messages[i..].iter().map(|m| m.row).collect();
                break;
            }
        }
        Sent {
            endpoint,
            tries,
            kept,
        }
    }

    /// A client bound to the address the endpoint's host resolves to now, once checked:
    /// a name cannot be re-pointed at a private address between the check and the connection.
    /// The check runs for every batch; the client (and its open connections) is reused while
    /// the host resolves to the same address.
    async fn client_for(&self, url: &str) -> Result<reqwest::Client, String> {
        let target = safety::parse(url, self.allow_private)?;
        let addr = safety::resolve(&target, self.allow_private).await?;
        let key = (target.host.clone(), addr);
        if let Some(client) = self
            .clients
            .0
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .resolve(&target.host, addr)
            .user_agent(concat!("passfold-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        if let Ok(mut clients) = self.clients.0.lock() {
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
            clients.insert(key, client.clone());
        }
        Ok(client)
    }
}

/// POSTs one signed message; the status when it is a 2xx, else the status (if any) and why.
async fn post(
    client: &reqwest::Client,
    url: &str,
    keys: &[Vec<u8>],
    message: &Message,
    timestamp: i64,
) -> Result<i32, (Option<i32>, String)> {
    let signature = signing::header(keys, &message.id, timestamp, message.body.as_bytes())
        .map_err(|e| (None, format!("cannot sign: {e}")))?;
    let exchange = async {
        let mut response = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await
            .map_err(|e| (None, describe(&e)))?;
        let status = response.status();
        // The answer is read up to a small limit (only so the connection ends cleanly).
        let mut read = 0;
        while read < BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        let code = i32::from(status.as_u16());
        if status.is_success() {
            Ok(code)
        } else {
            Err((Some(code), format!("answered {status}")))
        }
    };
    match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err((None, format!("no answer within {} s", TIMEOUT.as_secs()))),
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        let mut text = e.to_string();
        text.truncate(200);
        text
    }
}

/// Disables an endpoint that has failed for [`GIVE_UP_AFTER`], drops its queue and tells
/// the merchant's other endpoints.
fn disable(
    conn: &mut PgConnection,
    endpoint: &Endpoint,
    failed: &Try,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let reason = format!(
        "deliveries failed for 3 days (last: {})",
        failed.error.as_deref().unwrap_or("failed")
    );
    tracing::warn!(endpoint_id = %endpoint.id, %reason, "webhook endpoint disabled");
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::merchant_id.eq(endpoint.merchant_id))
            .filter(webhook_endpoints::id.eq(endpoint.id)),
    )
    .set((
        webhook_endpoints::enabled.eq(false),
        webhook_endpoints::disabled_reason.eq(&reason),
        webhook_endpoints::updated_at.eq(now),
    ))
    .execute(conn)?;
    diesel::delete(
        outbox::table
            .filter(outbox::merchant_id.eq(endpoint.merchant_id))
            .filter(outbox::endpoint_id.eq(endpoint.id)),
    )
    .execute(conn)?;
    events::emit(
        conn,
        endpoint.merchant_id,
        events::ENDPOINT_DISABLED,
        &serde_json::json!({
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "reason": reason,
            "failing_since": endpoint.failing_since,
        }),
        now,
    )?;
    Ok(())
}

/// Delay before retrying a message after its attempt `attempt`: 1 s, tripling per attempt
/// up to 8 hours, with up to a fifth added at random so that endpoints failing together
/// are not retried together.
pub fn backoff(attempt: i32) -> Duration {
    let base = 3f64.powi(attempt.clamp(1, 20) - 1).min(8.0 * 3600.0);
    let jitter = rand::random::<f64>() * 0.2;
    Duration::from_secs_f64(base * (1.0 + jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_triples_with_jitter_and_stops_at_8_hours() {
        let first = backoff(1).as_secs_f64();
        assert!((1.0..=1.2).contains(&first));
        let third = backoff(3).as_secs_f64();
        assert!((9.0..=10.8).contains(&third));
        let late = backoff(40).as_secs_f64();
        assert!((28_800.0..=34_560.0).contains(&late));
    }
}
