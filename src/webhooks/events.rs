//! The Rust binding of the one writer of webhook messages, for events that are not a row
//! of a fact table (the facts' own triggers call the same SQL function).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Text, Timestamptz};
use uuid::Uuid;

/// Sent to a merchant's other endpoints when one is disabled after failing for too long
/// (notices about endpoints reach every enabled endpoint, subscribed or not).
pub const ENDPOINT_DISABLED: &str = "webhook.endpoint_disabled";

/// A member's personal data was erased (`privacy::erasure`): ids only, so that the
/// merchant's systems erase their copies too.
pub const MEMBER_ERASED: &str = "member.erased";

diesel::define_sql_function! {
    /// Writes the message and queues it for every enabled endpoint subscribed to its type;
    /// returns the messages written (none when the merchant has no endpoint).
    fn passfold_webhook_event(merchant: diesel::sql_types::Uuid, kind: Text, data: Jsonb, at: Timestamptz) -> diesel::sql_types::Integer;
}

/// Records an event in the caller's transaction; false when nobody listens.
pub fn emit(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    kind: &str,
    data: &serde_json::Value,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(passfold_webhook_event(merchant_id, kind, data, at))
        .get_result::<i32>(conn)
        .map(|n| n > 0)
}

/// `points.expiring` for each member reminded by the expiry reminders job: `points` expire
/// on `days` (the program's local date, YYYY-MM-DD), in one statement.
pub fn emit_points_expiring(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    members: &[Uuid],
    points: &[i64],
    days: &[String],
    at: DateTime<Utc>,
) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt};
    diesel::sql_query(
        "SELECT passfold_webhook_events(array_fill($1::uuid, ARRAY[cardinality($2::uuid[])]), \
                'points.expiring', \
                ARRAY(SELECT jsonb_build_object('member_id', t.member_id, 'points', t.points, \
                                                'expires_on', t.day) \
                        FROM unnest($2::uuid[], $3::bigint[], $4::text[]) \
                             WITH ORDINALITY AS t (member_id, points, day, n) ORDER BY t.n), \
                array_fill($5::timestamptz, ARRAY[cardinality($2::uuid[])]))",
    )
    .bind::<diesel::sql_types::Uuid, _>(merchant_id)
    .bind::<Array<diesel::sql_types::Uuid>, _>(members)
    .bind::<Array<BigInt>, _>(points)
    .bind::<Array<Text>, _>(days)
    .bind::<Timestamptz, _>(at)
    .execute(conn)?;
    Ok(())
}

/// An event's `data` fields: name and JSON type.
pub type Fields = &'static [(&'static str, &'static str)];

/// Member fields carried by `member.*` events.
const MEMBER: &[(&str, &str)] = &[
    ("id", "uuid"),
    ("program_id", "uuid"),
    ("name", "string"),
    ("email", "string?"),
    ("phone", "string?"),
    ("external_id", "string?"),
    ("card_number", "string"),
    ("points", "integer"),
    ("tier", "string?"),
    ("referred_by", "uuid?"),
    ("created_at", "time"),
];

/// Activity fields carried by `gift_card.*` events but `issued`.
const GIFT_CARD_ACTIVITY: &[(&str, &str)] = &[
    ("gift_card_id", "uuid"),
    ("gan", "string"),
    ("activity_id", "uuid"),
    ("activity_type", "string"),
    ("amount", "integer"),
    ("balance", "integer"),
    ("currency", "string"),
    ("state", "string"),
    ("refunds_activity_id", "uuid?"),
];

const PASS: &[(&str, &str)] = &[
    ("pass_id", "uuid"),
    ("serial_number", "string"),
    ("member_id", "uuid?"),
    ("gift_card_id", "uuid?"),
    ("template", "string"),
    ("wallet", "string"),
];

const REFERRAL: &[(&str, &str)] = &[
    ("id", "uuid"),
    ("program_id", "uuid"),
    ("referrer_id", "uuid"),
    ("referee_id", "uuid"),
    ("status", "string"),
    ("referrer_points", "integer"),
    ("referee_points", "integer"),
];

/// Each event type, when it is sent and its `data` fields with their JSON types (`?`:
/// may be null), as the SQL triggers of migration `webhooks` build them; the OpenAPI
/// document's `webhooks` section is made from this list.
pub const SCHEMAS: &[(&str, &str, Fields)] = &[
    ("member.created", "A member joined.", MEMBER),
    ("member.updated", "A member's name, contacts, external id or birth date changed.", MEMBER),
    (
        MEMBER_ERASED,
        "A member's personal data was erased at the merchant's request (DELETE /api/v1/members/{id}): erase your copies. Ids only; earlier messages about the member now carry the wiped values.",
        &[("id", "uuid"), ("program_id", "uuid"), ("erased_at", "time")],
    ),
    (
        "purchase.recorded",
        "A purchase was recorded.",
        &[
            ("id", "uuid"),
            ("member_id", "uuid"),
            ("amount", "integer"),
            ("currency", "string"),
            ("points_earned", "integer"),
            ("points_paid", "integer"),
            ("purchased_at", "time"),
        ],
    ),
    (
        "purchase.refunded",
        "A purchase was returned, in part or in full.",
        &[
            ("id", "uuid"),
            ("member_id", "uuid"),
            ("amount", "integer"),
            ("currency", "string"),
            ("refunded", "integer"),
            ("refunded_amount", "integer"),
            ("points_taken_back", "integer"),
            ("points_given_back", "integer"),
        ],
    ),
    (
        "points.changed",
        "A member's points changed (any activity with a non-zero delta).",
        &[
            ("member_id", "uuid"),
            ("activity_id", "uuid"),
            ("activity_type", "string"),
            ("delta", "integer"),
            ("points", "integer"),
            ("reason", "string?"),
            ("purchase_id", "uuid?"),
            ("tier", "string?"),
        ],
    ),
    (
        "points.expiring",
        "A member was reminded that points expire soon (the expiry reminders of the program).",
        &[("member_id", "uuid"), ("points", "integer"), ("expires_on", "string")],
    ),
    (
        "tier.changed",
        "A member moved to another tier.",
        &[
            ("member_id", "uuid"),
            ("program_id", "uuid"),
            ("from", "string?"),
            ("to", "string?"),
            ("points", "integer"),
        ],
    ),
    (
        "gift_card.issued",
        "A gift card was issued.",
        &[
            ("id", "uuid"),
            ("gan", "string"),
            ("currency", "string"),
            ("balance", "integer"),
            ("state", "string"),
            ("template", "string"),
        ],
    ),
    ("gift_card.loaded", "A gift card was loaded or activated.", GIFT_CARD_ACTIVITY),
    ("gift_card.redeemed", "A gift card paid (amount negative, as in the ledger).", GIFT_CARD_ACTIVITY),
    ("gift_card.refunded", "A redemption was refunded to a gift card.", GIFT_CARD_ACTIVITY),
    ("gift_card.adjusted", "A gift card's balance was adjusted.", GIFT_CARD_ACTIVITY),
    ("gift_card.deactivated", "A gift card was deactivated.", GIFT_CARD_ACTIVITY),
    ("pass.installed", "A pass was added to Apple Wallet (a device registered) or saved to Google Wallet.", PASS),
    ("pass.removed", "A pass was removed from a device or from Google Wallet.", PASS),
    ("referral.joined", "A friend joined through a referral link.", REFERRAL),
    ("referral.rewarded", "A referral paid its rewards.", REFERRAL),
    (
        "campaign.sent",
        "Every recipient of a campaign's sent group has the message on their pass.",
        &[
            ("campaign_id", "uuid"),
            ("program_id", "uuid"),
            ("targeted", "integer"),
            ("held_out", "integer"),
            ("sent", "integer"),
        ],
    ),
    (
        "automation.fired",
        "An automation fired for a member: its message goes to their pass (or, held out, nothing does).",
        &[
            ("automation_id", "uuid"),
            ("program_id", "uuid"),
            ("member_id", "uuid"),
            ("event", "string"),
            ("event_at", "time"),
            ("held_out", "boolean"),
        ],
    ),
    (
        ENDPOINT_DISABLED,
        "Another of the merchant's endpoints was disabled after failing for 3 days (sent to every enabled endpoint).",
        &[
            ("endpoint_id", "uuid"),
            ("url", "string"),
            ("reason", "string"),
            ("failing_since", "time?"),
        ],
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_type_has_a_schema() {
        let documented: Vec<&str> = super::SCHEMAS.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(documented, super::super::EVENT_TYPES);
    }
}
