//! The Rust binding of the one writer of webhook messages, for events that are not a row
//! of a fact table (the facts' own triggers call the same SQL function).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Text, Timestamptz};
use uuid::Uuid;

/// Sent to a merchant's other endpoints when one is disabled after failing for too long
/// (notices about endpoints reach every enabled endpoint, subscribed or not).
pub const ENDPOINT_DISABLED: &str = "webhook.endpoint_disabled";

diesel::define_sql_function! {
    /// Writes the message and queues it for every enabled endpoint subscribed to its type;
    /// NULL when the merchant has no endpoint.
    fn passfold_webhook_event(merchant: diesel::sql_types::Uuid, kind: Text, data: Jsonb, at: Timestamptz) -> diesel::sql_types::Nullable<Text>;
}

/// Records an event in the caller's transaction; returns the message id, if anyone listens.
pub fn emit(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    kind: &str,
    data: &serde_json::Value,
    at: DateTime<Utc>,
) -> QueryResult<Option<String>> {
    diesel::select(passfold_webhook_event(merchant_id, kind, data, at)).get_result(conn)
}
