//! Apple Wallet's channel: one APNs push per device holding any of the changed passes (many
//! changes of a pass, and many passes on one device, make one push); the phone then asks
//! the web service for what changed.

use super::{Channel, Claim, Outcome, MAX_ATTEMPTS};
use crate::apple::apns::{ApnsClient, PushResult};
use crate::domain::states::Channel as ChannelName;
use crate::metrics::Metrics;
use crate::models::device::Registration;
use chrono::Utc;
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Pass changes claimed at once.
const BATCH: i64 = 2000;
/// Pushes in flight at once (HTTP/2 streams over the APNs connection).
const IN_FLIGHT: usize = 1000;

pub struct ApplePushes {
    pub apns: Arc<ApnsClient>,
    pub metrics: Metrics,
}

/// The devices to push, each with the passes it holds.
pub struct Plan {
    by_token: HashMap<String, Vec<Uuid>>,
}

impl Channel for ApplePushes {
    type Plan = Plan;
    type Sent = (Plan, Vec<(String, PushResult)>);

    fn name(&self) -> ChannelName {
        ChannelName::Apple
    }

    fn batch_size(&self) -> i64 {
        BATCH
    }

    /// Other processes drop the passes from their caches before any phone hears of the
    /// change (NOTIFY is delivered when the claim commits, before the pushes).
    fn claimed(&self, conn: &mut PgConnection, claims: &[Claim]) -> QueryResult<()> {
        let ids: Vec<Uuid> = claims.iter().map(|c| c.pass_id).collect();
        crate::pass_cache::announce(conn, &ids)
    }

    fn plan(&self, conn: &mut PgConnection, claims: &[Claim]) -> anyhow::Result<Plan> {
        let ids: Vec<Uuid> = claims.iter().map(|c| c.pass_id).collect();
        let mut by_token: HashMap<String, Vec<Uuid>> = HashMap::new();
        for (token, pass_id) in Registration::tokens_for(conn, &ids)? {
            by_token.entry(token).or_default().push(pass_id);
        }
        Ok(Plan { by_token })
    }

    async fn send(&self, plan: Plan) -> (Plan, Vec<(String, PushResult)>) {
        let apns = &self.apns;
        let results = stream::iter(plan.by_token.keys().cloned())
            .map(|token| async move {
                let result = apns.push(&token).await;
                (token, result)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        (plan, results)
    }

    fn settle(
        &self,
        conn: &mut PgConnection,
        claims: &[Claim],
        (plan, results): Self::Sent,
    ) -> QueryResult<HashMap<Uuid, Outcome>> {
        let mut retry: HashSet<Uuid> = HashSet::new();
        // Passes of which a device was told of a message: a campaign's recipient reached.
        let with_message: HashSet<Uuid> = claims
            .iter()
            .filter(|c| c.reasons.iter().any(|r| r == "message"))
            .map(|c| c.pass_id)
            .collect();
        let mut reached: HashSet<Uuid> = HashSet::new();
        for (token, result) in &results {
            self.metrics.push(result.label());
            match result {
                PushResult::Accepted => {
                    let passes = plan.by_token.get(token).into_iter().flatten();
                    reached.extend(passes.filter(|p| with_message.contains(p)));
                }
                PushResult::Unregistered | PushResult::BadDeviceToken => {
                    Registration::forget_token(conn, token)?;
                }
                PushResult::Retry(reason) => {
                    tracing::warn!(reason = %reason, "APNs push failed; it will be retried");
                    retry.extend(plan.by_token.get(token).into_iter().flatten().copied());
                }
                PushResult::Refused(status, reason) => {
                    tracing::error!(status, reason = %reason, "APNs refused a push");
                }
            }
        }
        if !reached.is_empty() {
            let merchants: Vec<Uuid> = claims.iter().map(|c| c.merchant_id).collect();
            let reached: Vec<Uuid> = reached.into_iter().collect();
            crate::campaigns::delivery::apple_accepted(conn, &merchants, &reached)?;
        }
        let now = Utc::now();
        let mut outcomes = HashMap::new();
        for claim in claims {
            if !retry.contains(&claim.pass_id) {
                let seconds = (now - claim.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                self.metrics.change_pushed(seconds);
                continue;
            }
            let attempt = claim.attempts + 1;
            let outcome = if attempt > MAX_ATTEMPTS {
                tracing::error!(pass_id = %claim.pass_id, "giving up on pushes for a pass after {MAX_ATTEMPTS} attempts");
                Outcome::Dropped
            } else {
                Outcome::Retry {
                    after: super::backoff(attempt),
                    attempts: attempt,
                    reason: "retry".into(),
                }
            };
            outcomes.insert(claim.pass_id, outcome);
        }
        Ok(outcomes)
    }
}
