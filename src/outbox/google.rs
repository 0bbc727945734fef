//! Google Wallet's channel: each changed pass's class and object, built from the same
//! content as the Apple pass, written over REST.
//!
//! A pass is sent by one process at a time with all its queued rows (retries waiting
//! included) as one patch of the state read after the claim, so an older state never lands
//! after a newer one. The latest state is never dropped: outages are retried with delays
//! growing to about 17 minutes for as long as they last, and a 429 queues the change again
//! after its `Retry-After` without counting as an attempt. Refusals are logged and not
//! retried. Batches are kept to about two seconds of the rate limit (the lease is renewed
//! meanwhile). Every object written is recorded in `google_objects`, so save links can
//! carry its id alone.

use super::{Channel, Claim, Outcome};
use crate::domain::states::Channel as ChannelName;
use crate::google::objects::{class_for, object_for, GoogleClass, GoogleObject};
use crate::google::rest::{GoogleClient, GoogleError};
use crate::pass_content::{PassContent, TemplateCache};
use crate::schema::{google_notifications, google_objects};
use chrono::Utc;
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Rows claimed at once, per request a second allowed.
const BATCH_PER_RATE: i64 = 2;
/// Notifications Google shows per pass in 24 hours.
const NOTIFICATIONS_PER_DAY: i64 = 3;
/// Changes worth a notification on the phone: money and points. Template redesigns and
/// new cards update silently.
const NOTIFY_FOR: &[&str] = &[
    "redeem",
    "load",
    "activate",
    "refund",
    "adjust",
    "earn",
    "spend",
    "expire",
    "birthday",
    "campaign",
    "tier",
    "deactivate",
    "referral",
    "message",
    "reminder",
];

pub struct GoogleSync {
    pub google: Arc<GoogleClient>,
    pub templates: TemplateCache,
    pub public_url: String,
}

/// One pass's writes.
pub struct Write {
    pass_id: Uuid,
    class: GoogleClass,
    object: GoogleObject,
    /// The phone is to be notified (within the pass's daily budget).
    notify: bool,
    /// A merchant's message, added to the object.
    message: Option<serde_json::Value>,
}

impl Channel for GoogleSync {
    type Plan = Vec<Write>;
    /// Per pass: whether the phone was notified, and whether a message was added.
    type Sent = Vec<(Uuid, Result<(bool, bool), GoogleError>)>;

    fn name(&self) -> ChannelName {
        ChannelName::Google
    }

    fn batch_size(&self) -> i64 {
        (i64::from(self.google.requests_per_second()) * BATCH_PER_RATE).clamp(4, 200)
    }

    fn one_sender_per_pass(&self) -> bool {
        true
    }

    fn plan(&self, conn: &mut PgConnection, claims: &[Claim]) -> anyhow::Result<Vec<Write>> {
        let worth = |c: &&Claim| c.reasons.iter().any(|r| NOTIFY_FOR.contains(&r.as_str()));
        let matters: Vec<Uuid> = claims.iter().filter(worth).map(|c| c.pass_id).collect();
        let merchants: Vec<Uuid> = claims.iter().map(|c| c.merchant_id).collect();
        // What is left of each pass's notification budget.
        let spent: HashMap<Uuid, i64> = google_notifications::table
            .filter(google_notifications::merchant_id.eq_any(&merchants))
            .filter(google_notifications::pass_id.eq_any(&matters))
            .filter(google_notifications::sent_at.gt(Utc::now() - chrono::Duration::hours(24)))
            .group_by(google_notifications::pass_id)
            .select((google_notifications::pass_id, diesel::dsl::count_star()))
            .load::<(Uuid, i64)>(conn)?
            .into_iter()
            .collect();
        let ids: Vec<Uuid> = claims.iter().map(|c| c.pass_id).collect();
        let contents =
            PassContent::load_many(conn, &merchants, &ids, &self.templates, &self.public_url)?;
        let issuer = self.google.issuer();
        let mut writes = Vec::with_capacity(contents.len());
        let by_pass: HashMap<Uuid, &Claim> = claims.iter().map(|c| (c.pass_id, c)).collect();
        for content in contents {
            let Some(claim) = by_pass.get(&content.pass.id).copied() else {
                continue;
            };
            let notify = matters.contains(&claim.pass_id)
                && spent.get(&claim.pass_id).copied().unwrap_or(0) < NOTIFICATIONS_PER_DAY;
            let class = class_for(issuer, &content, &self.public_url);
            let mut object = object_for(issuer, &content, &self.public_url);
            // A merchant's message notifies through addMessage; other changes through the update.
            let pass = &content.pass;
            let message = match (&pass.message_header, &pass.message_body, pass.message_at) {
                (Some(header), Some(body), Some(at))
                    if claim.reasons.iter().any(|r| r == "message") =>
                {
                    Some(serde_json::json!({
                        "id": format!("msg_{}", at.timestamp_millis()),
                        "header": header,
                        "body": body,
                        "messageType": if notify { "TEXT_AND_NOTIFY" } else { "TEXT" },
                    }))
                }
                _ => None,
            };
            if notify && message.is_none() {
                object.body["notifyPreference"] = serde_json::json!("NOTIFY_ON_UPDATE");
            }
            writes.push(Write {
                pass_id: claim.pass_id,
                class,
                object,
                notify,
                message,
            });
        }
        Ok(writes)
    }

    async fn send(&self, writes: Vec<Write>) -> Self::Sent {
        let google = &self.google;
        stream::iter(writes)
            .map(|write| async move {
                let (pass_id, message) = (write.pass_id, write.message.is_some());
                let result = write_one(google, write).await;
                (pass_id, result.map(|notified| (notified, message)))
            })
            // More at once would only wait longer for the rate limit's tokens.
            .buffer_unordered(google.requests_per_second().clamp(1, 20) as usize)
            .collect()
            .await
    }

    fn settle(
        &self,
        conn: &mut PgConnection,
        claims: &[Claim],
        sent: Self::Sent,
    ) -> QueryResult<HashMap<Uuid, Outcome>> {
        let by_pass: HashMap<Uuid, &Claim> = claims.iter().map(|c| (c.pass_id, c)).collect();
        let mut outcomes = HashMap::new();
        let mut written = Vec::new();
        let mut notified = Vec::new();
        let mut messaged = Vec::new();
        for (pass_id, result) in sent {
            let Some(claim) = by_pass.get(&pass_id) else {
                continue;
            };
            let merchant = claim.merchant_id;
            match result {
                Ok((notify, message)) => {
                    if message {
                        messaged.push(pass_id);
                    }
                    written.push((
                        google_objects::pass_id.eq(pass_id),
                        google_objects::merchant_id.eq(merchant),
                    ));
                    if notify {
                        notified.push((
                            google_notifications::pass_id.eq(pass_id),
                            google_notifications::merchant_id.eq(merchant),
                        ));
                    }
                }
                Err(GoogleError::Refused { .. }) => {
                    outcomes.insert(pass_id, Outcome::Dropped);
                }
                Err(GoogleError::RateLimited(wait)) => {
                    let retry = Outcome::Retry {
                        after: wait,
                        attempts: claim.attempts,
                        reason: kept_reason(claim),
                    };
                    outcomes.insert(pass_id, retry);
                }
                Err(GoogleError::Transient(why)) => {
                    let attempt = claim.attempts + 1;
                    if attempt >= super::MAX_ATTEMPTS {
                        tracing::error!(%pass_id, attempt, reason = %why, "Google Wallet keeps failing; the update will be retried");
                    } else {
                        tracing::warn!(%pass_id, reason = %why, "Google Wallet unavailable; the update will be retried");
                    }
                    let retry = Outcome::Retry {
                        after: super::backoff(attempt),
                        attempts: attempt,
                        reason: kept_reason(claim),
                    };
                    outcomes.insert(pass_id, retry);
                }
            }
        }
        if !notified.is_empty() {
            diesel::insert_into(google_notifications::table)
                .values(notified)
                .execute(conn)?;
        }
        if !messaged.is_empty() {
            // A campaign's recipient reached in Google Wallet.
            let merchants: Vec<Uuid> = claims.iter().map(|c| c.merchant_id).collect();
            crate::campaigns::delivery::google_messaged(conn, &merchants, &messaged)?;
        }
        if !written.is_empty() {
            diesel::insert_into(google_objects::table)
                .values(written)
                .on_conflict_do_nothing()
                .execute(conn)?;
        }
        Ok(outcomes)
    }
}

/// Writes one pass's class and object (and message); true when the phone was notified.
async fn write_one(google: &GoogleClient, mut write: Write) -> Result<bool, GoogleError> {
    google.sync_class(&write.class).await?;
    if let Some(message) = &write.message {
        google.sync_object(&write.object).await?;
        return google
            .add_message(&write.object, message)
            .await
            .map(|()| write.notify);
    }
    match google.sync_object(&write.object).await {
        // Over Google's notification quota after all: send it silently.
        Err(GoogleError::Refused { .. }) if write.notify => {
            if let Some(body) = write.object.body.as_object_mut() {
                body.remove("notifyPreference");
            }
            google.sync_object(&write.object).await.map(|()| false)
        }
        other => other.map(|()| write.notify),
    }
}

/// The reason a retry keeps: a message first, then a change worth notifying.
fn kept_reason(claim: &Claim) -> String {
    let rank = |r: &str| match r {
        "message" => 2,
        r if NOTIFY_FOR.contains(&r) => 1,
        _ => 0,
    };
    claim
        .reasons
        .iter()
        .max_by_key(|r| rank(r))
        .cloned()
        .unwrap_or_else(|| "retry".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_keeps_the_reason_that_notifies() {
        let claim = |reasons: &[&str]| Claim {
            pass_id: Uuid::nil(),
            merchant_id: Uuid::nil(),
            rows: vec![],
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            created_at: Utc::now(),
            attempts: 0,
            messages: vec![],
        };
        assert_eq!(kept_reason(&claim(&["template", "redeem"])), "redeem");
        assert_eq!(
            kept_reason(&claim(&["redeem", "message", "load"])),
            "message"
        );
        assert_eq!(kept_reason(&claim(&["template"])), "template");
    }
}
