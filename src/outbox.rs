//! Every change of what a pass shows ends here, inside the change's own transaction: the pass
//! gets a new update tag and Last-Modified (its triggers tell every process's pass cache)
//! and an outbox row per channel records the delivery that must follow. The writing is one
//! SQL function, `passfold_pass_changed` (with `passfold_enqueue`, the one writer of outbox
//! rows), which the PL/pgSQL ledger functions call too; this module is its Rust binding.

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text, Timestamptz};
use uuid::Uuid;

/// Where changes are delivered: Apple devices (APNs) always, Google Wallet (REST) when it
/// is configured. Set once at start ([`use_google`]); a process without Google Wallet
/// queues nothing for it.
static GOOGLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn use_google(enabled: bool) {
    GOOGLE.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// The channels every change is queued for.
pub fn channels() -> &'static [&'static str] {
    if GOOGLE.load(std::sync::atomic::Ordering::Relaxed) {
        &["apple", "google"]
    } else {
        &["apple"]
    }
}

/// Whose pass changed.
pub enum Card {
    Member(Uuid),
    GiftCard(Uuid),
}

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

diesel::define_sql_function! {
    /// The one way a pass changes: new update tag, commit-ordered `updated_at` (its
    /// Last-Modified) and an outbox row per channel; returns the passes changed.
    fn passfold_pass_changed(passes: Array<diesel::sql_types::Uuid>, reason: Text, channels: Array<Text>) -> Array<diesel::sql_types::Uuid>;
}

/// Bumps the pass's update tag and queues its push; returns the pass id.
pub fn pass_changed(conn: &mut PgConnection, card: Card, reason: &str) -> QueryResult<Uuid> {
    queue(conn, card, reason, channels())
}

/// A new pass: Google Wallet gets its object; no Apple device holds it yet.
pub fn pass_created(conn: &mut PgConnection, card: Card) -> QueryResult<Uuid> {
    let google: &[&str] = if channels().contains(&"google") {
        &["google"]
    } else {
        &[]
    };
    queue(conn, card, "created", google)
}

/// Every pass of `ids` changed for `reason` (passes renumbered after a restore).
pub fn passes_changed(
    conn: &mut PgConnection,
    ids: &[Uuid],
    reason: &str,
    channels: &[&str],
) -> QueryResult<Vec<Uuid>> {
    diesel::select(passfold_pass_changed(ids, reason, channels)).get_result(conn)
}

#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = Array<diesel::sql_types::Uuid>)]
    ids: Vec<Uuid>,
}

/// Every pass of one template changed (a redesign), in one statement.
pub fn template_passes_changed(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    template_id: &str,
    channels: &[&str],
) -> QueryResult<usize> {
    diesel::sql_query(
        "SELECT passfold_pass_changed(ARRAY(SELECT id FROM passes \
           WHERE merchant_id = $1 AND template_id = $2), 'template', $3) AS ids",
    )
    .bind::<diesel::sql_types::Uuid, _>(merchant_id)
    .bind::<Text, _>(template_id)
    .bind::<Array<Text>, _>(channels)
    .get_result::<Changed>(conn)
    .map(|c| c.ids.len())
}

fn queue(
    conn: &mut PgConnection,
    card: Card,
    reason: &str,
    channels: &[&str],
) -> QueryResult<Uuid> {
    // One round trip: the card's pass found inside the call.
    let (column, id) = match card {
        Card::Member(id) => ("member_id", id),
        Card::GiftCard(id) => ("gift_card_id", id),
    };
    diesel::sql_query(format!(
        "SELECT passfold_pass_changed(ARRAY(SELECT id FROM passes WHERE {column} = $1), $2, $3) AS ids"
    ))
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<Text, _>(reason)
    .bind::<Array<Text>, _>(channels)
    .get_result::<Changed>(conn)?
    .ids
    .first()
    .copied()
    .ok_or(diesel::result::Error::NotFound)
}

/// One pass's delivery on one channel, as claimed from the outbox.
pub struct Delivery<'a> {
    pub channel: &'a str,
    pub merchant_id: Uuid,
    pub pass_id: Uuid,
    pub reason: &'a str,
    /// When the change was made (kept across retries, for latency metrics).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Queues a delivery again on `channel` from `available_at` (a failure for now), keeping
/// the change's reason and original time (for latency metrics).
pub fn enqueue_again(
    conn: &mut PgConnection,
    delivery: &Delivery<'_>,
    available_at: chrono::DateTime<chrono::Utc>,
    attempts: i32,
) -> QueryResult<()> {
    diesel::select(passfold_enqueue(
        vec![delivery.merchant_id],
        vec![delivery.pass_id],
        delivery.reason,
        vec![delivery.channel],
        delivery.created_at,
        available_at,
        attempts,
    ))
    .execute(conn)?;
    Ok(())
}

/// Times a change is tried on one channel before it is given up.
pub const MAX_ATTEMPTS: i32 = 8;

/// Queues a change again on `channel` after a delivery failed for now, with a delay that
/// doubles per attempt; keeps its reason and its original time (for latency metrics).
/// False when the change has been tried too often and is given up.
pub fn retry_later(
    conn: &mut PgConnection,
    channel: &str,
    merchant_id: Uuid,
    pass_id: Uuid,
    reason: &str,
    created_at: chrono::DateTime<chrono::Utc>,
    attempts: i32,
) -> QueryResult<bool> {
    let attempt = attempts + 1;
    if attempt > MAX_ATTEMPTS {
        return Ok(false);
    }
    let delay = chrono::Duration::seconds(2i64.pow(attempt.min(10) as u32));
    let delivery = Delivery {
        channel,
        merchant_id,
        pass_id,
        reason,
        created_at,
    };
    enqueue_again(conn, &delivery, chrono::Utc::now() + delay, attempt)?;
    Ok(true)
}
