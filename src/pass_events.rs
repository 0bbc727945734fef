//! The one way a pass changes, inside the change's own transaction: the pass gets a new
//! update tag and Last-Modified, and the outbox a row per enabled channel for the delivery
//! that must follow (every process's pass cache hears of it when the outbox loop claims the
//! row). The writing is one SQL function, `passfold_pass_changed` (migration
//! `one_writer_of_pass_changes`), which the PL/pgSQL ledger functions call too; this module
//! is its Rust binding.

use crate::domain::states::Channel;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use uuid::Uuid;

/// The channels this process delivers changes to, from its configuration: Apple devices
/// always, Google Wallet when it is configured. Held by the application state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    google: bool,
}

impl Channels {
    pub fn new(google: bool) -> Self {
        Channels { google }
    }

    /// Every change is queued for these.
    pub fn all(self) -> &'static [Channel] {
        if self.google {
            &[Channel::Apple, Channel::Google]
        } else {
            &[Channel::Apple]
        }
    }

    /// A new pass: Google Wallet gets its object; no Apple device holds it yet.
    pub fn on_creation(self) -> &'static [Channel] {
        if self.google {
            &[Channel::Google]
        } else {
            &[]
        }
    }
}

/// Whose pass changed.
pub enum Card {
    Member(Uuid),
    GiftCard(Uuid),
}

diesel::define_sql_function! {
    /// New update tag, commit-ordered `updated_at` (its Last-Modified) and an outbox row per
    /// channel for each pass; returns the passes changed.
    fn passfold_pass_changed(passes: Array<diesel::sql_types::Uuid>, reason: Text, channels: Array<Text>) -> Array<diesel::sql_types::Uuid>;
}

/// Bumps the card's pass's update tag and queues its delivery; returns the pass id.
pub fn pass_changed(
    conn: &mut PgConnection,
    channels: Channels,
    card: Card,
    reason: &str,
) -> QueryResult<Uuid> {
    card_changed(conn, card, reason, channels.all())
}

/// A new card's pass: Google Wallet gets its object.
pub fn pass_created(conn: &mut PgConnection, channels: Channels, card: Card) -> QueryResult<Uuid> {
    card_changed(conn, card, "created", channels.on_creation())
}

/// Every pass of `ids` changed for `reason`, delivered on `channels` (passes renumbered
/// after a restore are delivered on none: their devices ask by themselves).
pub fn passes_changed(
    conn: &mut PgConnection,
    ids: &[Uuid],
    reason: &str,
    channels: &[Channel],
) -> QueryResult<Vec<Uuid>> {
    diesel::select(passfold_pass_changed(ids, reason, channels)).get_result(conn)
}

/// Passes this transaction inserted, announced as [`pass_created`] announces one (Google
/// Wallet gets its objects), for a batch of any size in one statement. A pass inserted in
/// the transaction already carries its update tag and Last-Modified (the columns' defaults
/// are the transaction's), so only the outbox rows are written: `passfold_pass_changed`
/// would update every row it just inserted, a second version of each pass and its indexes
/// for nothing (a fifth of a members import's time). A pass of `ids` that this transaction
/// did not create or change is left out, so this cannot stand in for a change; returns the
/// passes queued.
pub fn passes_created(
    conn: &mut PgConnection,
    ids: &[Uuid],
    channels: Channels,
) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    // A primary-key probe per id (LATERAL) whatever the table's statistics say.
    diesel::sql_query(
        "WITH p AS (
             SELECT p.id, p.merchant_id
               FROM unnest($1::uuid[]) AS x (id)
              CROSS JOIN LATERAL (SELECT id, merchant_id FROM passes
                                   WHERE id = x.id AND update_tag = passfold_new_update_tag()) AS p)
         , q AS (SELECT coalesce(array_agg(id), '{}') AS ids,
                        coalesce(array_agg(merchant_id), '{}') AS merchants FROM p)
         SELECT ids, passfold_enqueue(merchants, ids, 'created', $2, now(), now(), 0) AS queued
           FROM q",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<Array<Text>, _>(channels.on_creation())
    .get_result::<Changed>(conn)
    .map(|c| c.ids.len())
}

diesel::define_sql_function! {
    /// Each member's pass gets its message, with a new update tag and an outbox row per
    /// channel, in one UPDATE of the pass (migration `passes_messaged`); returns the passes
    /// changed.
    fn passfold_passes_messaged(
        merchants: Array<diesel::sql_types::Uuid>,
        members: Array<diesel::sql_types::Uuid>,
        headers: Array<Text>,
        bodies: Array<Text>,
        at: diesel::sql_types::Timestamptz,
        reason: Text,
        channels: Array<Text>,
    ) -> Array<diesel::sql_types::Uuid>;
}

/// Messages for many members' passes (reminders, notices, campaigns), posted together by
/// [`messages_posted`].
#[derive(Debug, Default)]
pub struct Messages {
    merchants: Vec<Uuid>,
    members: Vec<Uuid>,
    headers: Vec<String>,
    bodies: Vec<String>,
}

impl Messages {
    pub fn push(&mut self, merchant: Uuid, member: Uuid, header: String, body: String) {
        self.merchants.push(merchant);
        self.members.push(member);
        self.headers.push(header);
        self.bodies.push(body);
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Every member's pass of `messages` shows its message from `at` on and changes for
/// `reason` (delivered on `channels`; the reason `message` makes Google notify it within
/// its budget): one statement, whatever the number of members. Returns the passes changed;
/// a member without a pass is left out.
pub fn messages_posted(
    conn: &mut PgConnection,
    messages: &Messages,
    at: chrono::DateTime<chrono::Utc>,
    reason: &str,
    channels: &[Channel],
) -> QueryResult<Vec<Uuid>> {
    diesel::select(passfold_passes_messaged(
        &messages.merchants,
        &messages.members,
        &messages.headers,
        &messages.bodies,
        at,
        reason,
        channels,
    ))
    .get_result(conn)
}

#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = Array<diesel::sql_types::Uuid>)]
    ids: Vec<Uuid>,
}

/// Every pass of one template changed (a redesign), in one statement.
pub fn template_passes_changed(
    conn: &mut PgConnection,
    channels: Channels,
    merchant_id: Uuid,
    template_id: &str,
) -> QueryResult<usize> {
    diesel::sql_query(
        "SELECT passfold_pass_changed(ARRAY(SELECT id FROM passes \
           WHERE merchant_id = $1 AND template_id = $2), 'template', $3) AS ids",
    )
    .bind::<diesel::sql_types::Uuid, _>(merchant_id)
    .bind::<Text, _>(template_id)
    .bind::<Array<Text>, _>(channels.all())
    .get_result::<Changed>(conn)
    .map(|c| c.ids.len())
}

fn card_changed(
    conn: &mut PgConnection,
    card: Card,
    reason: &str,
    channels: &[Channel],
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
