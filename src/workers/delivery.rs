//! The outbox delivery worker: claims pass changes with `FOR UPDATE SKIP LOCKED`, coalesces
//! them into one push per device, sends the pushes, and deletes the claimed rows in the
//! same transaction. A worker killed mid-batch never commits, so its rows become
//! claimable again and are sent after restart (at least once); several workers share the
//! queue without sending the same claim twice.

use crate::apple::apns::{ApnsClient, PushResult};
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::models::device::Registration;
use crate::schema::outbox;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Pass changes claimed per transaction.
const BATCH: i64 = 2000;
/// Pushes in flight at once (HTTP/2 streams over the APNs connection).
const IN_FLIGHT: usize = 1000;
const IDLE: Duration = Duration::from_millis(100);
const GATHER: Duration = Duration::from_millis(50);

pub async fn run(
    pool: DbPool,
    apns: Arc<ApnsClient>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_depth = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        let (p, a, m) = (pool.clone(), apns.clone(), metrics.clone());
        let handle = tokio::runtime::Handle::current();
        let measure_depth = last_depth.elapsed() > Duration::from_secs(5);
        if measure_depth {
            last_depth = std::time::Instant::now();
        }
        let done =
            tokio::task::spawn_blocking(move || deliver_batch(&p, &a, &m, &handle, measure_depth))
                .await;
        let claimed = match done {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "push delivery failed; retrying");
                0
            }
            Err(e) => {
                tracing::warn!(error = %e, "push delivery task failed; retrying");
                0
            }
        };
        // A full batch: more is waiting. A partial one: let changes gather a moment, so a
        // stream of single changes does not become a stream of tiny claims.
        let wait = match claimed as i64 {
            n if n >= BATCH => Duration::ZERO,
            0 => IDLE,
            _ => GATHER,
        };
        if super::pause(&mut shutdown, wait).await {
            return;
        }
    }
}

/// One claimed row.
type Claimed = (i64, Uuid, DateTime<Utc>, i32, Uuid);

fn deliver_batch(
    pool: &DbPool,
    apns: &ApnsClient,
    metrics: &Metrics,
    handle: &tokio::runtime::Handle,
    measure_depth: bool,
) -> anyhow::Result<usize> {
    let mut conn = pool.get()?;
    if measure_depth {
        let depth: i64 = outbox::table
            .filter(outbox::channel.eq("apple"))
            .count()
            .get_result(&mut conn)?;
        metrics.set_outbox_depth(depth);
    }
    // Other processes drop the passes from their caches before any phone hears of the
    // change: the waiting rows are looked at and announced first (NOTIFY is delivered when
    // its statement commits, so not from inside the claim below, which lasts until the
    // pushes are done), and only rows announced are claimed. Announcing rows another
    // worker then claims does no harm.
    let waiting: Vec<(i64, Uuid)> = outbox::table
        .filter(outbox::channel.eq("apple"))
        .filter(outbox::available_at.le(diesel::dsl::now))
        .order(outbox::id.asc())
        .limit(BATCH)
        .select((outbox::id, outbox::pass_id))
        .load(&mut conn)?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let mut announced: Vec<Uuid> = waiting.iter().map(|w| w.1).collect();
    announced.sort_unstable();
    announced.dedup();
    crate::pass_cache::announce(&mut conn, &announced)?;
    let waiting: Vec<i64> = waiting.into_iter().map(|w| w.0).collect();
    let claimed = conn.transaction::<_, diesel::result::Error, _>(|conn| {
        let rows: Vec<Claimed> = outbox::table
            .filter(outbox::id.eq_any(&waiting))
            .filter(outbox::available_at.le(diesel::dsl::now))
            .order(outbox::id.asc())
            .limit(BATCH)
            .for_update()
            .skip_locked()
            .select((outbox::id, outbox::pass_id, outbox::created_at, outbox::attempts, outbox::merchant_id))
            .load(conn)?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Coalesce: many changes of one pass, and many passes on one device, make one push.
        let mut oldest: HashMap<Uuid, (DateTime<Utc>, i32)> = HashMap::new();
        let merchants: HashMap<Uuid, Uuid> = rows.iter().map(|r| (r.1, r.4)).collect();
        for (_, pass_id, created_at, attempts, _) in &rows {
            let entry = oldest.entry(*pass_id).or_insert((*created_at, *attempts));
            entry.0 = entry.0.min(*created_at);
            entry.1 = entry.1.max(*attempts);
        }
        let pass_ids: Vec<Uuid> = oldest.keys().copied().collect();
        let mut by_token: HashMap<String, Vec<Uuid>> = HashMap::new();
        for (token, pass_id) in Registration::tokens_for(conn, &pass_ids)? {
            by_token.entry(token).or_default().push(pass_id);
        }
        let tokens: Vec<String> = by_token.keys().cloned().collect();
        let results: Vec<(String, PushResult)> = handle.block_on(
            stream::iter(tokens)
                .map(|token| async move {
                    let result = apns.push(&token).await;
                    (token, result)
                })
                .buffer_unordered(IN_FLIGHT)
                .collect(),
        );
        let mut retry: std::collections::HashSet<Uuid> = Default::default();
        for (token, result) in &results {
            metrics.push(result.label());
            match result {
                PushResult::Accepted => {}
                PushResult::Unregistered | PushResult::BadDeviceToken => {
                    Registration::forget_token(conn, token)?;
                }
                PushResult::Retry(reason) => {
                    tracing::warn!(reason = %reason, "APNs push failed; it will be retried");
                    retry.extend(by_token[token].iter().copied());
                }
                PushResult::Refused(status, reason) => {
                    tracing::error!(status, reason = %reason, "APNs refused a push");
                }
            }
        }
        let now = Utc::now();
        for (pass_id, (created_at, _)) in &oldest {
            if !retry.contains(pass_id) {
                metrics.change_pushed((now - *created_at).num_milliseconds().max(0) as f64 / 1000.0);
            }
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        diesel::delete(outbox::table.filter(outbox::id.eq_any(&ids))).execute(conn)?;
        for pass_id in retry {
            let Some(merchant) = merchants.get(&pass_id).copied() else { continue };
            let (created_at, attempts) = oldest[&pass_id];
            if !crate::outbox::retry_later(conn, "apple", merchant, pass_id, "retry", created_at, attempts)? {
                tracing::error!(%pass_id, "giving up on pushes for a pass after {} attempts", crate::outbox::MAX_ATTEMPTS);
            }
        }
        Ok(rows.len())
    })?;
    Ok(claimed)
}
