use crate::schema::{devices, passes, registrations};
use diesel::prelude::*;
use uuid::Uuid;

/// Registrations of passes on devices, as Apple's web service protocol makes them.
pub struct Registration;

impl Registration {
    /// Registers `pass_id` on the device (creating or updating the device's push token);
    /// true when the registration is new.
    pub fn register(
        conn: &mut PgConnection,
        device: &str,
        push_token: &str,
        pass_id: Uuid,
    ) -> QueryResult<bool> {
        conn.transaction(|conn| {
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
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            Ok(inserted == 1)
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
