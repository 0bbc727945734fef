//! Erasure of a member's personal data, in one transaction: name, contacts, birth date and
//! external id wiped, a new card number (the old barcode finds nothing), free text that may
//! name them wiped wherever it was copied (webhook messages, audit lines, adjustment
//! reasons, survey comments, pass messages, where consents came from), the pass voided for
//! Apple and expired for Google through `pass_events`, and `member.erased` for the
//! merchant's webhooks. The ledger (amounts, dates, tiers) is kept, so balances and
//! analytics still add up. Erasing twice changes nothing the second time.
//!
//! Apple devices stay registered at first: a push reaches a device only through its
//! registration, and the device then asks which of its passes changed (again by
//! registration) before it fetches the voided pass. [`prune_devices`] deletes them
//! [`DEVICE_GRACE_DAYS`] later (the pruning job).

use crate::db::Tenant;
use crate::domain::CardNumber;
use crate::pass_events::{self, Channels};
use crate::problem::ApiError;
use crate::schema::members;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// Days an erased member's pass stays registered on their devices, so that the push of the
/// voided pass and the device's fetch of it can happen (APNs keeps a push for an offline
/// device for a while; the outbox retries a failed push).
pub const DEVICE_GRACE_DAYS: i64 = 3;

/// Keys of JSON objects (webhook messages, audit lines) that carry personal data or free
/// text about a member; an erasure sets them to null, and `name` and `card_number` to the
/// erased values.
const PERSONAL_KEYS: &[&str] = &[
    "name",
    "email",
    "phone",
    "external_id",
    "card_number",
    "birth_date",
    "reason",
];

/// What an erasure did.
#[derive(Debug)]
pub struct Erased {
    pub member_id: Uuid,
    /// The member's pass (re-signed as voided).
    pub pass_ids: Vec<Uuid>,
    /// False when the member had been erased before: nothing changed.
    pub now: bool,
}

impl Erased {
    /// After the erasure's transaction: the voided pass is not served from the cache, and
    /// the log says an erasure happened (by id only).
    pub fn committed(&self, cache: &crate::pass_cache::PassCache) {
        for pass_id in &self.pass_ids {
            cache.evict_pass(*pass_id);
        }
        if self.now {
            tracing::info!(member_id = %self.member_id, "erased a member's personal data");
        }
    }
}

/// Erases the member's personal data as of `at`; `NotFound` for no such member.
pub fn erase(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    member_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Erased, ApiError> {
    conn.transaction(|conn| {
        let erased: Option<(Option<DateTime<Utc>>, Uuid)> = members::table
            .filter(members::merchant_id.eq(tenant.merchant_id()))
            .filter(members::id.eq(member_id))
            .select((members::erased_at, members::program_id))
            .for_update()
            .first(conn)
            .optional()?;
        let program_id = match erased {
            None => return Err(ApiError::not_found("no such member")),
            Some((Some(_), _)) => {
                return Ok(Erased {
                    member_id,
                    pass_ids: Vec::new(),
                    now: false,
                })
            }
            Some((None, program_id)) => program_id,
        };
        // Append-only tables allow this transaction to wipe text in place (migration 000050).
        diesel::sql_query("SELECT set_config('passfold.erasure', 'on', true)").execute(conn)?;
        let card_number = wipe_member(conn, tenant, member_id, at)?;
        wipe_copies(conn, tenant, member_id, &card_number)?;
        // The pass shows the wiped values, voided; Apple devices get a push, Google an
        // EXPIRED object (the outbox's channels).
        let passes: Vec<Uuid> = crate::schema::passes::table
            .filter(crate::schema::passes::merchant_id.eq(tenant.merchant_id()))
            .filter(crate::schema::passes::member_id.eq(member_id))
            .select(crate::schema::passes::id)
            .load(conn)?;
        let pass_ids = pass_events::passes_changed(conn, &passes, "erased", channels.all())?;
        crate::webhooks::events::emit(
            conn,
            tenant.merchant_id(),
            crate::webhooks::events::MEMBER_ERASED,
            &serde_json::json!({
                "id": member_id,
                "program_id": program_id,
                "erased_at": at,
            }),
            at,
        )?;
        diesel::sql_query("SELECT set_config('passfold.erasure', 'off', true)").execute(conn)?;
        Ok(Erased {
            member_id,
            pass_ids,
            now: true,
        })
    })
}

/// The member's own row: details wiped, a new card number (retried in a savepoint on the
/// rare collision); returns the new number.
fn wipe_member(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
    at: DateTime<Utc>,
) -> Result<String, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let number = CardNumber::generate();
        let done = conn.transaction(|conn| {
            diesel::update(members::table)
                .filter(members::merchant_id.eq(tenant.merchant_id()))
                .filter(members::id.eq(member_id))
                .set((
                    members::name.eq(super::ERASED_NAME),
                    members::email.eq(None::<String>),
                    members::phone.eq(None::<String>),
                    members::external_id.eq(None::<String>),
                    members::birth_month.eq(None::<i16>),
                    members::birth_day.eq(None::<i16>),
                    members::birth_year.eq(None::<i16>),
                    members::birthday_year.eq(None::<i16>),
                    members::card_number.eq(number.as_str()),
                    members::erased_at.eq(at),
                    members::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
        });
        match done {
            Ok(_) => return Ok(number.as_str().to_string()),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
                if attempt < 5 => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Personal data copied out of the member's row, and free text about them.
fn wipe_copies(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
    card_number: &str,
) -> QueryResult<()> {
    let merchant = tenant.merchant_id();
    // `{keys}` of a JSON object nulled where present; name and card number take the erased
    // values, so a message still fits its documented schema.
    let wiped = |column: &str| {
        format!(
            "{column} || (SELECT coalesce(jsonb_object_agg(k, CASE k
                    WHEN 'name' THEN to_jsonb($3::text)
                    WHEN 'card_number' THEN to_jsonb($4::text)
                    ELSE 'null'::jsonb END), '{{}}'::jsonb)
               FROM jsonb_object_keys({column}) k WHERE k = ANY($5))"
        )
    };
    let keys: Vec<&str> = PERSONAL_KEYS.to_vec();
    let run = |conn: &mut PgConnection, sql: String| {
        diesel::sql_query(sql)
            .bind::<SqlUuid, _>(merchant)
            .bind::<SqlUuid, _>(member_id)
            .bind::<Text, _>(super::ERASED_NAME)
            .bind::<Text, _>(card_number)
            .bind::<diesel::sql_types::Array<Text>, _>(&keys)
            .execute(conn)
    };
    // Webhook messages about the member: the profile of `member.*`, adjustment reasons of
    // `points.changed`. Messages still queued are delivered wiped.
    run(
        conn,
        format!(
            "UPDATE webhook_messages w SET data = {}
              WHERE w.merchant_id = $1
                AND (w.data->>'member_id' = $2::text
                     OR (w.type LIKE 'member.%' AND w.data->>'id' = $2::text))",
            wiped("w.data")
        ),
    )?;
    // Console lines about the member (a points adjustment's reason).
    run(
        conn,
        format!(
            "UPDATE audit_log l SET details = {}
              WHERE l.merchant_id = $1 AND l.details->>'member' = $2::text",
            wiped("l.details")
        ),
    )?;
    // Free text typed about the member: adjustment reasons (the other reasons are the
    // service's own words), survey comments, messages on the pass.
    let member_scoped = |sql: &str| {
        diesel::sql_query(sql.to_string())
            .bind::<SqlUuid, _>(merchant)
            .bind::<SqlUuid, _>(member_id)
    };
    member_scoped(
        "UPDATE point_activities SET reason = NULL
          WHERE merchant_id = $1 AND member_id = $2 AND type = 'adjust' AND reason IS NOT NULL",
    )
    .execute(conn)?;
    member_scoped(
        "UPDATE survey_answers a SET comment = NULL
           FROM survey_invitations i
          WHERE a.invitation_id = i.id AND i.merchant_id = $1 AND i.member_id = $2
            AND a.comment IS NOT NULL",
    )
    .execute(conn)?;
    member_scoped(
        "UPDATE passes SET message_header = NULL, message_body = NULL
          WHERE merchant_id = $1 AND member_id = $2
            AND (message_header IS NOT NULL OR message_body IS NOT NULL)",
    )
    .execute(conn)?;
    // The consents stay (what was agreed, when, through what); where from goes.
    member_scoped(
        "UPDATE member_consents SET ip = NULL, user_agent = NULL
          WHERE merchant_id = $1 AND member_id = $2 AND (ip IS NOT NULL OR user_agent IS NOT NULL)",
    )
    .execute(conn)?;
    Ok(())
}

/// Deletes the Apple registrations of passes of members erased more than
/// [`DEVICE_GRACE_DAYS`] before `now` (each announced as `pass.removed`), and the devices
/// left holding no pass; returns the registrations deleted.
pub fn prune_devices(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Device {
        #[diesel(sql_type = Text)]
        device_library_identifier: String,
    }
    let before = now - chrono::Duration::days(DEVICE_GRACE_DAYS);
    conn.transaction(|conn| {
        let gone: Vec<Device> = diesel::sql_query(
            "DELETE FROM registrations r USING passes p, members m
              WHERE r.pass_id = p.id AND p.member_id = m.id
                AND m.erased_at IS NOT NULL AND m.erased_at < $1
          RETURNING r.device_library_identifier",
        )
        .bind::<Timestamptz, _>(before)
        .load(conn)?;
        if gone.is_empty() {
            return Ok(0);
        }
        let devices: Vec<&str> = gone
            .iter()
            .map(|d| d.device_library_identifier.as_str())
            .collect();
        diesel::sql_query(
            "DELETE FROM devices d WHERE d.device_library_identifier = ANY($1)
                AND NOT EXISTS (SELECT 1 FROM registrations x
                                 WHERE x.device_library_identifier = d.device_library_identifier)",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(&devices)
        .execute(conn)?;
        Ok(gone.len())
    })
}
