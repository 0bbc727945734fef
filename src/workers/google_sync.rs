//! The Google Wallet side of the outbox: claims `google` rows with `FOR UPDATE SKIP
//! LOCKED`, builds each changed pass's class and object from the same content as the Apple
//! pass, and writes them over REST, deleting the rows in the claiming transaction.
//!
//! A pass's queued changes are coalesced: all its rows (retries waiting included) become one
//! patch with the state read after they were claimed, and a per-pass advisory lock keeps two
//! processes from sending one pass's states out of order. The latest state is never dropped:
//! Google outages are retried with delays growing to about 17 minutes, for as long as they
//! last, and a 429 queues the change again after its `Retry-After` without counting as an
//! attempt. Batches are kept to about two seconds of the rate limit. Refusals are
//! logged and not retried. Every object written is recorded in `google_objects`, so save
//! links can carry its id alone.

use crate::db::{DbPool, Tenant};
use crate::google::objects::{class_for, object_for};
use crate::google::rest::{GoogleClient, GoogleError};
use crate::models::Pass;
use crate::pass_content::{PassContent, TemplateCache};
use crate::schema::{google_notifications, google_objects, outbox};
use chrono::Utc;
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Rows claimed at once, per request a second allowed: a batch's transaction stays open
/// while its requests are sent, so it is kept to about two seconds of the rate limit.
const BATCH_PER_RATE: i64 = 2;
const IDLE: Duration = Duration::from_millis(100);
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
    "purchase",
    "deactivate",
    "referral",
    "message",
];

/// Without Google Wallet set up, `google` rows are dropped instead of sent.
pub async fn drain(pool: DbPool, mut shutdown: watch::Receiver<bool>) {
    loop {
        let p = pool.clone();
        let _ = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let mut conn = p.get()?;
            Ok(
                diesel::delete(outbox::table.filter(outbox::channel.eq("google")))
                    .execute(&mut conn)?,
            )
        })
        .await;
        if super::pause(&mut shutdown, Duration::from_secs(1)).await {
            return;
        }
    }
}

pub async fn run(
    pool: DbPool,
    google: Arc<GoogleClient>,
    public_url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let templates = Arc::new(TemplateCache::default());
    loop {
        let (p, g, t, u) = (
            pool.clone(),
            google.clone(),
            templates.clone(),
            public_url.clone(),
        );
        let handle = tokio::runtime::Handle::current();
        let done = tokio::task::spawn_blocking(move || sync_batch(&p, &g, &t, &u, &handle)).await;
        let claimed = match done {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Google Wallet sync failed; retrying");
                0
            }
            Err(e) => {
                tracing::warn!(error = %e, "Google Wallet sync task failed; retrying");
                0
            }
        };
        let wait = match claimed as i64 {
            n if n >= batch_size(&google) => Duration::ZERO,
            0 => IDLE,
            _ => Duration::from_millis(50),
        };
        if super::pause(&mut shutdown, wait).await {
            return;
        }
    }
}

fn sync_batch(
    pool: &DbPool,
    google: &GoogleClient,
    templates: &TemplateCache,
    public_url: &str,
    handle: &tokio::runtime::Handle,
) -> anyhow::Result<usize> {
    let mut conn = pool.get()?;
    let claimed = conn.transaction::<_, anyhow::Error, _>(|conn| {
        let rows: Vec<(i64, Uuid, Uuid, i32, chrono::DateTime<Utc>, String)> = outbox::table
            .filter(outbox::channel.eq("google"))
            .filter(outbox::available_at.le(diesel::dsl::now))
            .order(outbox::id.asc())
            .limit(batch_size(google))
            .for_update()
            .skip_locked()
            .select((outbox::id, outbox::pass_id, outbox::merchant_id, outbox::attempts, outbox::created_at, outbox::reason))
            .load(conn)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let rows = coalesce(conn, rows)?;
        if rows.is_empty() {
            return Ok(0); // another process is sending them
        }
        let mut passes: HashMap<Uuid, (Uuid, i32, chrono::DateTime<Utc>)> = HashMap::new();
        let mut matters: std::collections::HashSet<Uuid> = Default::default();
        let mut messages: std::collections::HashSet<Uuid> = Default::default();
        // The reason a retry keeps: a message first, then a change worth notifying.
        let mut reasons: HashMap<Uuid, &str> = HashMap::new();
        for (_, pass_id, merchant, attempts, created, reason) in &rows {
            let e = passes.entry(*pass_id).or_insert((*merchant, *attempts, *created));
            e.1 = e.1.max(*attempts);
            e.2 = e.2.min(*created);
            if NOTIFY_FOR.contains(&reason.as_str()) {
                matters.insert(*pass_id);
            }
            if reason == "message" {
                messages.insert(*pass_id);
            }
            let kept = reasons.entry(*pass_id).or_insert(reason.as_str());
            let rank = |r: &str| if r == "message" { 2 } else if NOTIFY_FOR.contains(&r) { 1 } else { 0 };
            if rank(reason) > rank(kept) {
                *kept = reason.as_str();
            }
        }
        // What is left of each pass's notification budget.
        let ids: Vec<Uuid> = matters.iter().copied().collect();
        let spent: HashMap<Uuid, i64> = google_notifications::table
            .filter(google_notifications::pass_id.eq_any(&ids))
            .filter(google_notifications::sent_at.gt(Utc::now() - chrono::Duration::hours(24)))
            .group_by(google_notifications::pass_id)
            .select((google_notifications::pass_id, diesel::dsl::count_star()))
            .load::<(Uuid, i64)>(conn)?
            .into_iter()
            .collect();
        let mut work = Vec::new();
        for (pass_id, (merchant, _, _)) in &passes {
            let tenant = Tenant::of_authenticated(*merchant);
            let Some(pass) = crate::schema::passes::table
                .find(pass_id)
                .select(Pass::as_select())
                .first(conn)
                .optional()?
            else {
                continue;
            };
            let content = PassContent::load(conn, &tenant, pass, templates, public_url)?;
            let class = class_for(google.issuer(), &content, public_url);
            let mut object = object_for(google.issuer(), &content, public_url);
            let notify = matters.contains(pass_id) && spent.get(pass_id).copied().unwrap_or(0) < NOTIFICATIONS_PER_DAY;
            // A merchant's message notifies through addMessage; other changes through the update.
            let message = match (&content.pass.message_header, &content.pass.message_body, content.pass.message_at) {
                (Some(header), Some(body), Some(at)) if messages.contains(pass_id) => Some(serde_json::json!({
                    "id": format!("msg_{}", at.timestamp_millis()),
                    "header": header,
                    "body": body,
                    "messageType": if notify { "TEXT_AND_NOTIFY" } else { "TEXT" },
                })),
                _ => None,
            };
            if notify && message.is_none() {
                object.body["notifyPreference"] = serde_json::json!("NOTIFY_ON_UPDATE");
            }
            work.push((*pass_id, class, object, notify, message));
        }
        let results: Vec<(Uuid, Result<bool, GoogleError>)> = handle.block_on(
            stream::iter(work)
                .map(|(pass_id, class, mut object, notify, message)| async move {
                    if let Err(e) = google.sync_class(&class).await {
                        return (pass_id, Err(e));
                    }
                    if let Some(message) = message {
                        let result = match google.sync_object(&object).await {
                            Ok(()) => google.add_message(&object, &message).await.map(|()| notify),
                            Err(e) => Err(e),
                        };
                        return (pass_id, result);
                    }
                    let result = match google.sync_object(&object).await {
                        // Over Google's notification quota after all: send it silently.
                        Err(GoogleError::Refused { .. }) if notify => {
                            if let Some(body) = object.body.as_object_mut() {
                                body.remove("notifyPreference");
                            }
                            google.sync_object(&object).await.map(|()| false)
                        }
                        other => other.map(|()| notify),
                    };
                    (pass_id, result)
                })
                // More at once would only wait longer for the rate limit's tokens.
                .buffer_unordered(google.requests_per_second().clamp(1, 20) as usize)
                .collect(),
        );
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        diesel::delete(outbox::table.filter(outbox::id.eq_any(&ids))).execute(conn)?;
        let written: Vec<Uuid> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(id, _)| *id)
            .collect();
        for (pass_id, result) in results {
            let (merchant, attempts, created) = passes[&pass_id];
            match result {
                Ok(true) => {
                    diesel::insert_into(google_notifications::table)
                        .values((
                            google_notifications::pass_id.eq(pass_id),
                            google_notifications::merchant_id.eq(merchant),
                        ))
                        .execute(conn)?;
                }
                Ok(false) => {}
                Err(GoogleError::Refused { .. }) => {}
                Err(GoogleError::RateLimited(wait)) => {
                    let reason = reasons.get(&pass_id).copied().unwrap_or("retry");
                    requeue(conn, merchant, pass_id, reason, created, attempts, wait)?;
                }
                Err(GoogleError::Transient(why)) => {
                    let reason = reasons.get(&pass_id).copied().unwrap_or("retry");
                    let attempt = attempts + 1;
                    let delay = Duration::from_secs(2u64.pow(attempt.clamp(1, 10) as u32));
                    requeue(conn, merchant, pass_id, reason, created, attempt, delay)?;
                    if attempt >= crate::outbox::MAX_ATTEMPTS {
                        tracing::error!(%pass_id, attempt, reason = %why, "Google Wallet keeps failing; the update will be retried");
                    } else {
                        tracing::warn!(%pass_id, reason = %why, "Google Wallet unavailable; the update will be retried");
                    }
                }
            }
        }
        if !written.is_empty() {
            let rows: Vec<_> = written
                .iter()
                .map(|id| {
                    (
                        google_objects::pass_id.eq(*id),
                        google_objects::merchant_id.eq(passes[id].0),
                    )
                })
                .collect();
            diesel::insert_into(google_objects::table)
                .values(rows)
                .on_conflict_do_nothing()
                .execute(conn)?;
        }
        Ok(rows.len())
    })?;
    Ok(claimed)
}

fn batch_size(google: &GoogleClient) -> i64 {
    (i64::from(google.requests_per_second()) * BATCH_PER_RATE).clamp(4, 200)
}

type Row = (i64, Uuid, Uuid, i32, chrono::DateTime<Utc>, String);

/// Keeps the claimed rows of the passes this process may send now (another process holds
/// the others: their rows stay queued) and adds those passes' rows still waiting for a
/// retry, which the state about to be sent makes redundant.
fn coalesce(conn: &mut PgConnection, rows: Vec<Row>) -> QueryResult<Vec<Row>> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
    ids.sort_unstable();
    ids.dedup();
    // Held to the end of the claiming transaction, i.e. until the states are sent.
    let locked: std::collections::HashSet<Uuid> = diesel::sql_query(
        "SELECT id FROM unnest($1::uuid[]) AS t(id) \
         WHERE pg_try_advisory_xact_lock(hashtext('passfold.google_sync'), hashtext(id::text))",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
    .load::<Locked>(conn)?
    .into_iter()
    .map(|l| l.id)
    .collect();
    let claimed: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut kept: Vec<Row> = rows.into_iter().filter(|r| locked.contains(&r.1)).collect();
    let locked: Vec<Uuid> = locked.into_iter().collect();
    let waiting: Vec<Row> = outbox::table
        .filter(outbox::channel.eq("google"))
        .filter(outbox::pass_id.eq_any(&locked))
        .filter(outbox::id.ne_all(&claimed))
        .for_update()
        .skip_locked()
        .select((
            outbox::id,
            outbox::pass_id,
            outbox::merchant_id,
            outbox::attempts,
            outbox::created_at,
            outbox::reason,
        ))
        .load(conn)?;
    kept.extend(waiting);
    Ok(kept)
}

/// Queues a pass's change again after `delay`. Unlike Apple's, Google's changes are never
/// given up: what a card shows must catch up once Google answers again.
fn requeue(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    pass_id: Uuid,
    reason: &str,
    created_at: chrono::DateTime<Utc>,
    attempts: i32,
    delay: Duration,
) -> QueryResult<()> {
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(60));
    let delivery = crate::outbox::Delivery {
        channel: "google",
        merchant_id,
        pass_id,
        reason,
        created_at,
    };
    crate::outbox::enqueue_again(conn, &delivery, Utc::now() + delay, attempts)
}
