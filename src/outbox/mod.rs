//! The one outbox loop: every delivery that must follow a change (an APNs push, a Google
//! Wallet patch, and whatever comes next) is an outbox row of a channel, written in the
//! change's transaction, and delivered by [`run`]:
//!
//! 1. **claim** a batch with `FOR UPDATE SKIP LOCKED` and lease it (`passfold_claim`),
//!    committed before anything is sent: a process killed mid-send leaves leases that run
//!    out, and another process takes the rows (at least once);
//! 2. **plan**: the channel reads what sending needs, for the whole batch at once;
//! 3. **send**, with no database connection held, the lease renewed while it lasts;
//! 4. **settle** in one transaction: the claimed rows are deleted, the channel records what
//!    it must, and what failed for now is queued again (`passfold_enqueue`).
//!
//! A channel ([`Channel`]) supplies only its plan, send and settle. Several processes share
//! the queue; a pass's rows claimed together are coalesced into one delivery. The webhook
//! channel's rows name an endpoint and a message instead of a pass: its claim is one
//! endpoint's messages, in order, sent one after another (see `webhook`).

pub mod apple;
pub mod google;
pub mod webhook;

use crate::db::DbPool;
use crate::domain::states::Channel as ChannelName;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text, Timestamptz};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

diesel::define_sql_function! {
    /// The one writer of outbox rows (migration `one_writer_of_pass_changes`): one row per
    /// pass and channel, available from `available_at`.
    fn passfold_enqueue(
        merchants: Array<diesel::sql_types::Uuid>,
        passes: Array<diesel::sql_types::Uuid>,
        reason: Text,
        channels: Array<Text>,
        created_at: Timestamptz,
        available_at: Timestamptz,
        attempts: Integer,
    ) -> Integer;
}

/// One pass's rows of a channel, claimed together and delivered as one (on the webhook
/// channel: one endpoint's messages).
#[derive(Debug, Clone)]
pub struct Claim {
    /// The pass; on the webhook channel, the endpoint.
    pub pass_id: Uuid,
    pub merchant_id: Uuid,
    rows: Vec<i64>,
    /// Why the pass changed, once per claimed row, oldest first.
    pub reasons: Vec<String>,
    /// When the oldest of the changes was made (kept across retries, for latency metrics).
    pub created_at: DateTime<Utc>,
    /// Attempts made so far (the most of the rows').
    pub attempts: i32,
    /// Webhook rows only: each row's message and attempts so far, in the order of the rows.
    pub messages: Vec<(String, i32)>,
}

/// What became of one pass's delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Failed for now: queued again after `after`, as attempt `attempts`, for `reason`.
    Retry {
        after: Duration,
        attempts: i32,
        reason: String,
    },
    /// Not delivered and not to be tried again (refused, or given up); the channel logs why.
    Dropped,
}

/// A destination of pass changes.
pub trait Channel: Send + Sync + 'static {
    /// What `plan` reads for `send`.
    type Plan: Send + 'static;
    /// What `send` brings back for `settle`.
    type Sent: Send + 'static;

    fn name(&self) -> ChannelName;

    /// Rows claimed at once.
    fn batch_size(&self) -> i64;

    /// True when a pass must be sent by one process at a time, in order (the channel
    /// sends what the pass shows, and an older state must not land after a newer one).
    fn one_sender_per_pass(&self) -> bool {
        false
    }

    /// Runs in the claiming transaction, before anything is sent.
    fn claimed(&self, _conn: &mut PgConnection, _claims: &[Claim]) -> QueryResult<()> {
        Ok(())
    }

    /// Reads what sending the batch needs (after the claim committed).
    fn plan(&self, conn: &mut PgConnection, claims: &[Claim]) -> anyhow::Result<Self::Plan>;

    /// Sends the batch; no database connection is held meanwhile.
    fn send(&self, plan: Self::Plan) -> impl Future<Output = Self::Sent> + Send;

    /// Claimed rows that stay queued instead of being deleted before `settle` (which then
    /// updates them): a webhook message not yet delivered keeps its place in its endpoint's
    /// order. None by default.
    fn kept(&self, _claims: &[Claim], _sent: &Self::Sent) -> Vec<i64> {
        Vec::new()
    }

    /// Runs in the settling transaction (the claimed rows already deleted): records what
    /// the channel keeps and says what became of each claimed pass; a pass left out counts
    /// as delivered.
    fn settle(
        &self,
        conn: &mut PgConnection,
        claims: &[Claim],
        sent: Self::Sent,
    ) -> QueryResult<HashMap<Uuid, Outcome>>;
}

/// Attempts after which a channel gives a delivery up, or (Google) starts logging errors:
/// a device that keeps failing must not hold the queue forever.
pub const MAX_ATTEMPTS: i32 = 8;

const IDLE: Duration = Duration::from_millis(100);
/// How often a lane other than the first looks for work while there is none.
const SPARE_IDLE: Duration = Duration::from_secs(1);
/// After a partial batch, changes gather a moment, so a stream of single changes does not
/// become a stream of tiny claims.
const GATHER: Duration = Duration::from_millis(50);
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// Starts `lanes` delivery loops of `channel` ([`run`]), each its own task: while one waits
/// on the network another claims, plans and settles, the way two processes would (the claim
/// keeps them apart as it keeps processes apart).
pub fn spawn_lanes<C: Channel>(
    lanes: usize,
    pool: &DbPool,
    channel: Arc<C>,
    lease: Duration,
    metrics: &crate::metrics::Metrics,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..lanes.max(1))
        .map(|lane| {
            tokio::spawn(run(
                pool.clone(),
                channel.clone(),
                lease,
                metrics.clone(),
                shutdown.clone(),
                lane == 0,
            ))
        })
        .collect()
}

/// Delivers `channel`'s rows until `shutdown` becomes true. The `first` lane keeps the
/// queue's depth metric and looks for work every [`IDLE`]; the others, when idle, every
/// [`SPARE_IDLE`]: they join within a second once work piles up, without multiplying the
/// claims of an idle process.
pub async fn run<C: Channel>(
    pool: DbPool,
    channel: Arc<C>,
    lease: Duration,
    metrics: crate::metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
    first: bool,
) {
    let name = channel.name();
    let mut last_depth: Option<std::time::Instant> = None;
    loop {
        if first && last_depth.is_none_or(|t| t.elapsed() >= DEPTH_EVERY) {
            last_depth = Some(std::time::Instant::now());
            match blocking(&pool, move |conn| depth(conn, name)).await {
                Ok(depth) => metrics.set_outbox_depth(name.as_str(), depth),
                Err(e) => tracing::warn!(channel = %name, error = %e, "outbox depth unknown"),
            }
        }
        let claimed = match deliver_batch(&pool, &channel, lease).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(channel = %name, error = format!("{e:#}"), "outbox delivery failed; retrying");
                0
            }
        };
        let wait = match claimed as i64 {
            n if n >= channel.batch_size() => Duration::ZERO,
            0 if first => IDLE,
            0 => SPARE_IDLE,
            _ => GATHER,
        };
        if crate::shutdown::pause(&mut shutdown, wait).await {
            return;
        }
    }
}

/// Delivers batches until nothing is due (what fails now is queued for later and ends the
/// drain); returns the rows delivered or queued again. For `passfold worker --once`.
pub async fn drain<C: Channel>(
    pool: &DbPool,
    channel: &Arc<C>,
    lease: Duration,
) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = deliver_batch(pool, channel, lease).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// Claims, plans, sends and settles one batch; returns the rows claimed.
pub async fn deliver_batch<C: Channel>(
    pool: &DbPool,
    channel: &Arc<C>,
    lease: Duration,
) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    let c = channel.clone();
    let claims = blocking(pool, move |conn| {
        conn.transaction(|conn| {
            let claims = claim(conn, c.as_ref(), lease)?;
            c.claimed(conn, &claims)?;
            Ok::<_, diesel::result::Error>(claims)
        })
        .map_err(|e| anyhow::Error::from(e).context("claiming"))
    })
    .await?;
    if claims.is_empty() {
        return Ok(0);
    }
    let claimed_at = started.elapsed();
    let rows: Vec<i64> = claims.iter().flat_map(|c| c.rows.iter().copied()).collect();
    let count = rows.len();
    let claims = Arc::new(claims);
    let (c, planned) = (channel.clone(), claims.clone());
    let plan = blocking(pool, move |conn| {
        c.plan(conn, &planned).map_err(|e| e.context("planning"))
    })
    .await;
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            // Nothing was sent: the rows are free again for the next claim.
            let _ = blocking(pool, move |conn| release(conn, &rows)).await;
            return Err(e);
        }
    };
    let planned_at = started.elapsed();
    let sent = {
        let send = channel.send(plan);
        tokio::pin!(send);
        let mut renew = tokio::time::interval(lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                sent = &mut send => break sent,
                _ = renew.tick() => {
                    let ids = rows.clone();
                    if let Err(e) = blocking(pool, move |conn| renew_lease(conn, &ids, lease)).await {
                        tracing::warn!(error = %e, "outbox lease not renewed");
                    }
                }
            }
        }
    };
    let sent_at = started.elapsed();
    let c = channel.clone();
    blocking(pool, move |conn| {
        conn.transaction(|conn| {
            let kept = c.kept(&claims, &sent);
            let done: Vec<i64> = if kept.is_empty() {
                rows
            } else {
                rows.into_iter().filter(|r| !kept.contains(r)).collect()
            };
            diesel::delete(crate::schema::outbox::table)
                .filter(crate::schema::outbox::id.eq_any(&done))
                .execute(conn)?;
            let outcomes = c.settle(conn, &claims, sent)?;
            for claim in claims.iter() {
                if let Some(Outcome::Retry {
                    after,
                    attempts,
                    reason,
                }) = outcomes.get(&claim.pass_id)
                {
                    enqueue_again(conn, c.name(), claim, reason, *after, *attempts)?;
                }
            }
            Ok::<_, diesel::result::Error>(())
        })
        .map_err(|e| anyhow::Error::from(e).context("settling"))
    })
    .await?;
    tracing::debug!(
        channel = %channel.name(), rows = count, claimed_ms = claimed_at.as_millis() as u64,
        planned_ms = planned_at.as_millis() as u64,
        sent_ms = sent_at.as_millis() as u64, settled_ms = started.elapsed().as_millis() as u64,
        "outbox batch delivered"
    );
    Ok(count)
}

/// Runs database work on the blocking pool with a pooled connection.
async fn blocking<T, F>(pool: &DbPool, work: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> anyhow::Result<T> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    merchant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pass_id: Uuid,
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    message_id: Option<String>,
}

fn claim<C: Channel>(
    conn: &mut PgConnection,
    channel: &C,
    lease: Duration,
) -> QueryResult<Vec<Claim>> {
    let mut rows: Vec<Row> = diesel::sql_query("SELECT * FROM passfold_claim($1, $2, $3, $4)")
        .bind::<Text, _>(channel.name())
        .bind::<Integer, _>(channel.batch_size().clamp(1, i32::MAX as i64) as i32)
        .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
        .bind::<diesel::sql_types::Bool, _>(channel.one_sender_per_pass())
        .load(conn)?;
    rows.sort_unstable_by_key(|r| r.id);
    Ok(coalesce(rows))
}

/// One claim per pass, in the order of its first row.
fn coalesce(rows: Vec<Row>) -> Vec<Claim> {
    let mut claims: Vec<Claim> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        match index.get(&row.pass_id) {
            Some(&i) => {
                let claim = &mut claims[i];
                claim.rows.push(row.id);
                claim.reasons.push(row.reason);
                claim.created_at = claim.created_at.min(row.created_at);
                claim.attempts = claim.attempts.max(row.attempts);
                if let Some(message) = row.message_id {
                    claim.messages.push((message, row.attempts));
                }
            }
            None => {
                index.insert(row.pass_id, claims.len());
                claims.push(Claim {
                    pass_id: row.pass_id,
                    merchant_id: row.merchant_id,
                    rows: vec![row.id],
                    reasons: vec![row.reason],
                    created_at: row.created_at,
                    attempts: row.attempts,
                    messages: row
                        .message_id
                        .map(|m| vec![(m, row.attempts)])
                        .unwrap_or_default(),
                });
            }
        }
    }
    claims
}

fn renew_lease(conn: &mut PgConnection, rows: &[i64], lease: Duration) -> anyhow::Result<()> {
    diesel::sql_query(
        "UPDATE outbox SET leased_until = clock_timestamp() + make_interval(secs => $2) \
         WHERE id = ANY ($1)",
    )
    .bind::<Array<diesel::sql_types::BigInt>, _>(rows)
    .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
    .execute(conn)?;
    Ok(())
}

fn release(conn: &mut PgConnection, rows: &[i64]) -> anyhow::Result<()> {
    use crate::schema::outbox;
    diesel::update(outbox::table.filter(outbox::id.eq_any(rows)))
        .set(outbox::leased_until.eq(None::<DateTime<Utc>>))
        .execute(conn)?;
    Ok(())
}

fn depth(conn: &mut PgConnection, channel: ChannelName) -> anyhow::Result<i64> {
    use crate::schema::outbox;
    Ok(outbox::table
        .filter(outbox::channel.eq(channel))
        .count()
        .get_result(conn)?)
}

/// Queues a pass's delivery on `channel` again after `after`, keeping the change's original
/// time (for latency metrics).
fn enqueue_again(
    conn: &mut PgConnection,
    channel: ChannelName,
    claim: &Claim,
    reason: &str,
    after: Duration,
    attempts: i32,
) -> QueryResult<()> {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::seconds(60));
    diesel::select(passfold_enqueue(
        vec![claim.merchant_id],
        vec![claim.pass_id],
        reason,
        vec![channel],
        claim.created_at,
        Utc::now() + after,
        attempts,
    ))
    .execute(conn)?;
    Ok(())
}

/// Delay before attempt `attempt`: doubles per attempt, up to about 17 minutes.
pub fn backoff(attempt: i32) -> Duration {
    Duration::from_secs(2u64.pow(attempt.clamp(1, 10) as u32))
}

/// Rows of channels this process does not deliver (Google Wallet not configured here) are
/// dropped instead of piling up.
pub struct Discard(pub ChannelName);

impl Channel for Discard {
    type Plan = ();
    type Sent = ();

    fn name(&self) -> ChannelName {
        self.0
    }

    fn batch_size(&self) -> i64 {
        10_000
    }

    fn plan(&self, _conn: &mut PgConnection, _claims: &[Claim]) -> anyhow::Result<()> {
        Ok(())
    }

    async fn send(&self, _plan: ()) {}

    fn settle(
        &self,
        _conn: &mut PgConnection,
        _claims: &[Claim],
        _sent: (),
    ) -> QueryResult<HashMap<Uuid, Outcome>> {
        Ok(HashMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, pass: u128, reason: &str, minute: u32, attempts: i32) -> Row {
        Row {
            id,
            merchant_id: Uuid::from_u128(1),
            pass_id: Uuid::from_u128(pass),
            reason: reason.into(),
            created_at: DateTime::from_timestamp(60 * i64::from(minute), 0).unwrap_or_default(),
            attempts,
            message_id: None,
        }
    }

    #[test]
    fn a_pass_claimed_twice_is_delivered_once_with_its_oldest_time_and_most_attempts() {
        let claims = coalesce(vec![
            row(1, 7, "redeem", 5, 0),
            row(2, 8, "load", 6, 0),
            row(3, 7, "message", 2, 3),
        ]);
        assert_eq!(claims.len(), 2);
        assert_eq!(claims[0].pass_id, Uuid::from_u128(7));
        assert_eq!(claims[0].rows, vec![1, 3]);
        assert_eq!(claims[0].reasons, vec!["redeem", "message"]);
        assert_eq!(claims[0].created_at.timestamp(), 120);
        assert_eq!(claims[0].attempts, 3);
        assert_eq!(claims[1].rows, vec![2]);
    }

    #[test]
    fn an_endpoints_messages_are_claimed_together_in_their_order() {
        let mut rows = vec![
            row(4, 9, "member.created", 1, 2),
            row(6, 9, "points.changed", 1, 0),
        ];
        rows[0].message_id = Some("msg_a".into());
        rows[1].message_id = Some("msg_b".into());
        let claims = coalesce(rows);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].rows, vec![4, 6]);
        assert_eq!(
            claims[0].messages,
            vec![("msg_a".to_string(), 2), ("msg_b".to_string(), 0)]
        );
    }

    #[test]
    fn backoff_doubles_and_stops_growing() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(1024));
    }
}
