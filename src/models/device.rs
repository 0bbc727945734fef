use crate::schema::{devices, passes, registrations};
use diesel::prelude::*;
use uuid::Uuid;

/// Registrations of passes on devices, as Apple's web service protocol makes them.
pub struct Registration;

/// Devices one pass may be registered on. A customer's phone, watch and a few replaced
/// phones fit; a pass whose token leaked cannot fill the tables with invented devices.
pub const DEVICES_PER_PASS: i64 = 20;
/// Passes one device may hold registrations for (all of this service's merchants share
/// one pass type, so a device may carry many).
pub const PASSES_PER_DEVICE: i64 = 500;

/// First keys of the advisory locks that serialize registrations per pass and per device
/// (two-key form: a separate key space from the migrations' single-key lock). Every
/// registration takes the pass's lock first, then the device's: no deadlock.
const LOCK_PASS: i32 = 0x7270; // "rp"
const LOCK_DEVICE: i32 = 0x7264; // "rd"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    /// Already registered (its push token refreshed).
    Existing,
    /// The pass already has [`DEVICES_PER_PASS`] devices; nothing written.
    PassFull,
    /// The device already holds [`PASSES_PER_DEVICE`] passes; nothing written.
    DeviceFull,
}

impl Registration {
    /// Registers `pass_id` on the device (creating or updating the device's push token),
    /// within the caps: counted and inserted under per-pass and per-device advisory locks,
    /// so concurrent registrations cannot overshoot them.
    pub fn register(
        conn: &mut PgConnection,
        device: &str,
        push_token: &str,
        pass_id: Uuid,
        merchant_id: Uuid,
    ) -> QueryResult<Registered> {
        use diesel::sql_types::{Integer, Text};
        conn.transaction(|conn| {
            for (space, key) in [
                (LOCK_PASS, pass_id.to_string()),
                (LOCK_DEVICE, device.to_string()),
            ] {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind::<Integer, _>(space)
                    .bind::<Text, _>(key)
                    .execute(conn)?;
            }
            let existing: i64 = registrations::table
                .filter(registrations::device_library_identifier.eq(device))
                .filter(registrations::pass_id.eq(pass_id))
                .count()
                .get_result(conn)?;
            if existing == 0 {
                let on_pass: i64 = registrations::table
                    .filter(registrations::pass_id.eq(pass_id))
                    .count()
                    .get_result(conn)?;
                if on_pass >= DEVICES_PER_PASS {
                    return Ok(Registered::PassFull);
                }
                let on_device: i64 = registrations::table
                    .filter(registrations::device_library_identifier.eq(device))
                    .count()
                    .get_result(conn)?;
                if on_device >= PASSES_PER_DEVICE {
                    return Ok(Registered::DeviceFull);
                }
            }
            diesel::insert_into(devices::table)
                .values((
                    devices::device_library_identifier.eq(device),
                    devices::push_token.eq(push_token),
                ))
                .on_conflict(devices::device_library_identifier)
                .do_update()
                .set((
                    devices::push_token.eq(push_token),
                    devices::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
            let inserted = diesel::insert_into(registrations::table)
                .values((
                    registrations::device_library_identifier.eq(device),
                    registrations::pass_id.eq(pass_id),
                    registrations::merchant_id.eq(merchant_id),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            Ok(if inserted == 1 {
                Registered::Created
            } else {
                Registered::Existing
            })
        })
    }

    /// Removes the registration, and the device once it holds no pass.
    pub fn unregister(conn: &mut PgConnection, device: &str, pass_id: Uuid) -> QueryResult<()> {
        conn.transaction(|conn| {
            diesel::delete(
                registrations::table
                    .filter(registrations::device_library_identifier.eq(device))
                    .filter(registrations::pass_id.eq(pass_id)),
            )
            .execute(conn)?;
            forget_device_if_empty(conn, device)
        })
    }

    /// Everything registered under a push token Apple says is dead.
    pub fn forget_token(conn: &mut PgConnection, push_token: &str) -> QueryResult<usize> {
        diesel::delete(devices::table.filter(devices::push_token.eq(push_token))).execute(conn)
    }

    /// Serial numbers of the device's passes (of this pass type's passes: all of ours)
    /// changed after `since`, with their tags.
    pub fn changed_since(
        conn: &mut PgConnection,
        device: &str,
        since: Option<i64>,
    ) -> QueryResult<Vec<(String, i64)>> {
        let mut query = registrations::table
            .inner_join(passes::table)
            .filter(registrations::device_library_identifier.eq(device))
            .select((passes::serial_number, passes::update_tag))
            .into_boxed();
        if let Some(since) = since {
            query = query.filter(passes::update_tag.gt(since));
        }
        query.load(conn)
    }

    /// Push tokens of the devices holding any of these passes, with the passes each holds.
    pub fn tokens_for(
        conn: &mut PgConnection,
        pass_ids: &[Uuid],
    ) -> QueryResult<Vec<(String, Uuid)>> {
        registrations::table
            .inner_join(devices::table)
            .filter(registrations::pass_id.eq_any(pass_ids))
            .select((devices::push_token, registrations::pass_id))
            .load(conn)
    }
}

fn forget_device_if_empty(conn: &mut PgConnection, device: &str) -> QueryResult<()> {
    let left: i64 = registrations::table
        .filter(registrations::device_library_identifier.eq(device))
        .count()
        .get_result(conn)?;
    if left == 0 {
        diesel::delete(devices::table.find(device)).execute(conn)?;
    }
    Ok(())
}
