//! An endpoint's delivery log, and sending messages again (one, or all since an instant).

use super::endpoints::Endpoint;
use crate::db::Tenant;
use crate::domain::Paging;
use crate::schema::webhook_attempts;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use serde::Serialize;

/// One attempt to deliver a message, as the log shows it.
#[derive(Debug, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = webhook_attempts)]
pub struct Delivery {
    #[serde(skip)]
    pub id: i64,
    pub message_id: String,
    /// The message's attempt number, from 1.
    pub attempt: i32,
    /// `delivered` (a 2xx within 15 s), `failed` (tried again later) or `gave_up` (the
    /// endpoint was disabled after failing for 3 days).
    pub status: String,
    /// The receiver's HTTP status, when it answered.
    pub response_code: Option<i32>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub duration_ms: i32,
    pub at: DateTime<Utc>,
}

/// A page of the log, newest first, and the cursor of the next page when there is one.
pub fn page(
    conn: &mut PgConnection,
    tenant: &Tenant,
    endpoint: &Endpoint,
    paging: &Paging<i64>,
) -> QueryResult<(Vec<Delivery>, Option<String>)> {
    let mut query = webhook_attempts::table
        .filter(webhook_attempts::merchant_id.eq(tenant.merchant_id()))
        .filter(webhook_attempts::endpoint_id.eq(endpoint.id))
        .into_boxed();
    if let Some((attempt, _)) = paging.after {
        query = query.filter(webhook_attempts::id.lt(attempt));
    }
    let rows: Vec<Delivery> = query
        .order(webhook_attempts::id.desc())
        .limit(paging.fetch())
        .select(Delivery::as_select())
        .load(conn)?;
    // Attempts are numbered by the log itself: the endpoint's id completes the position.
    Ok(paging.finish(rows, |r| (r.id, endpoint.id)))
}

/// Whether `text` can be a message id (`msg_` and hex); anything else (a NUL the database
/// refuses, a megabyte of path) is no message of anyone's, answered without a query.
pub fn is_message_id(text: &str) -> bool {
    text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Queues one message for the endpoint again (after what is already queued for it);
/// `false` when the merchant has no such message.
pub fn resend(
    conn: &mut PgConnection,
    tenant: &Tenant,
    endpoint: &Endpoint,
    message_id: &str,
) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "INSERT INTO outbox (merchant_id, endpoint_id, message_id, reason, channel, created_at, \
                             available_at, attempts) \
         SELECT m.merchant_id, $2, m.id, m.type, 'webhook', now(), now(), 0 \
           FROM webhook_messages m WHERE m.merchant_id = $1 AND m.id = $3",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(endpoint.id)
    .bind::<Text, _>(message_id)
    .execute(conn)?;
    Ok(n > 0)
}

/// Messages one replay queues at most (a call stays well within the statement timeout).
pub const REPLAY_LIMIT: i64 = 100_000;

/// Queues the messages since `since` of the types the endpoint subscribes to, oldest first,
/// at most [`REPLAY_LIMIT`]; returns how many, and when that limit cut the replay short, the
/// time of the last one queued (to replay from next).
pub fn replay(
    conn: &mut PgConnection,
    tenant: &Tenant,
    endpoint: &Endpoint,
    since: DateTime<Utc>,
) -> QueryResult<(usize, Option<DateTime<Utc>>)> {
    #[derive(QueryableByName)]
    struct Replayed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        queued: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
        last: Option<DateTime<Utc>>,
    }
    let done: Replayed = diesel::sql_query(
        "WITH picked AS ( \
             SELECT m.merchant_id, m.id, m.type, m.created_at, m.seq FROM webhook_messages m \
              WHERE m.merchant_id = $1 AND m.created_at >= $3 AND m.type = ANY ($4) \
              ORDER BY m.created_at, m.seq LIMIT $5), \
         queued AS ( \
             INSERT INTO outbox (merchant_id, endpoint_id, message_id, reason, channel, \
                                 created_at, available_at, attempts) \
             SELECT p.merchant_id, $2, p.id, p.type, 'webhook', now(), now(), 0 \
               FROM picked p ORDER BY p.created_at, p.seq \
             RETURNING 1) \
         SELECT (SELECT count(*) FROM queued) AS queued, \
                (SELECT max(created_at) FROM picked) AS last",
    )
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(endpoint.id)
    .bind::<Timestamptz, _>(since)
    .bind::<diesel::sql_types::Array<Text>, _>(&endpoint.events)
    .bind::<diesel::sql_types::BigInt, _>(REPLAY_LIMIT)
    .get_result(conn)?;
    let cut = done.queued >= REPLAY_LIMIT;
    Ok((done.queued as usize, done.last.filter(|_| cut)))
}
