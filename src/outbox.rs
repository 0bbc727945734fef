//! Every change of what a pass shows ends with [`pass_changed`], inside the change's own
//! transaction: the pass gets a new update tag (its triggers tell every process's pass
//! cache) and an outbox row records the push that must follow.

use crate::schema::{outbox, passes};
use diesel::prelude::*;
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

/// A changed pass's new `updated_at` (its `Last-Modified`): the time the row is written, not
/// the transaction's start (`now()`), and never before the previous version's, so a pass's
/// times grow in commit order (the row lock orders writers of one pass). Also used by the
/// template CTE and `passfold_record_activity` (migration `commit_ordered_pass_times`).
pub const NEXT_UPDATED_AT: &str =
    "GREATEST(clock_timestamp(), updated_at + interval '1 microsecond')";

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

fn queue(
    conn: &mut PgConnection,
    card: Card,
    reason: &str,
    channels: &[&str],
) -> QueryResult<Uuid> {
    let next_tag =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("pg_current_xact_id()::text::bigint");
    let changes = (
        passes::update_tag.eq(next_tag),
        passes::updated_at.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
            NEXT_UPDATED_AT,
        )),
    );
    let returning = (passes::id, passes::merchant_id);
    let (pass_id, merchant_id): (Uuid, Uuid) = match card {
        Card::Member(id) => diesel::update(passes::table.filter(passes::member_id.eq(id)))
            .set(changes)
            .returning(returning)
            .get_result(conn)?,
        Card::GiftCard(id) => diesel::update(passes::table.filter(passes::gift_card_id.eq(id)))
            .set(changes)
            .returning(returning)
            .get_result(conn)?,
    };
    let rows: Vec<_> = channels
        .iter()
        .map(|channel| {
            (
                outbox::merchant_id.eq(merchant_id),
                outbox::pass_id.eq(pass_id),
                outbox::reason.eq(reason),
                outbox::channel.eq(*channel),
            )
        })
        .collect();
    diesel::insert_into(outbox::table)
        .values(rows)
        .execute(conn)?;
    Ok(pass_id)
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
    diesel::insert_into(outbox::table)
        .values((
            outbox::merchant_id.eq(merchant_id),
            outbox::pass_id.eq(pass_id),
            outbox::reason.eq(reason),
            outbox::channel.eq(channel),
            outbox::created_at.eq(created_at),
            outbox::available_at.eq(chrono::Utc::now() + delay),
            outbox::attempts.eq(attempt),
        ))
        .execute(conn)?;
    Ok(true)
}
