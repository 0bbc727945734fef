use crate::db::Tenant;
use crate::domain::tokens;
use crate::schema::passes;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

/// One wallet pass, for a member or a gift card. `update_tag` comes from a sequence and
/// grows with every change of what the pass shows.
/// `Debug` is written by hand: the tokens are credentials (a device's, and the download link).
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = passes)]
pub struct Pass {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub serial_number: String,
    pub member_id: Option<Uuid>,
    pub gift_card_id: Option<Uuid>,
    pub template_id: String,
    pub authentication_token: String,
    pub download_token: String,
    pub update_tag: i64,
    pub updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub message_header: Option<String>,
    pub message_body: Option<String>,
    pub message_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Pass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pass")
            .field("id", &self.id)
            .field("merchant_id", &self.merchant_id)
            .field("serial_number", &self.serial_number)
            .field("member_id", &self.member_id)
            .field("gift_card_id", &self.gift_card_id)
            .field("template_id", &self.template_id)
            .field("authentication_token", &"***")
            .field("download_token", &"***")
            .field("update_tag", &self.update_tag)
            .field("updated_at", &self.updated_at)
            .field("created_at", &self.created_at)
            .field("message_header", &self.message_header)
            .field("message_body", &self.message_body)
            .field("message_at", &self.message_at)
            .finish()
    }
}

pub enum Holder {
    Member(Uuid),
    GiftCard(Uuid),
}

impl Pass {
    pub(crate) fn create(
        conn: &mut PgConnection,
        merchant_id: Uuid,
        template_id: &str,
        holder: Holder,
    ) -> QueryResult<Pass> {
        let (member_id, gift_card_id) = match holder {
            Holder::Member(id) => (Some(id), None),
            Holder::GiftCard(id) => (None, Some(id)),
        };
        diesel::insert_into(passes::table)
            .values((
                passes::id.eq(Uuid::new_v4()),
                passes::merchant_id.eq(merchant_id),
                passes::serial_number.eq(tokens::serial_number()),
                passes::member_id.eq(member_id),
                passes::gift_card_id.eq(gift_card_id),
                passes::template_id.eq(template_id),
                passes::authentication_token.eq(tokens::secret(32)),
                passes::download_token.eq(tokens::secret(32)),
            ))
            .returning(Pass::as_returning())
            .get_result(conn)
    }

    /// The pass behind a download link. Not scoped by a tenant: the link itself is the
    /// secret, and the pass names its merchant.
    pub fn by_download_token(
        conn: &mut PgConnection,
        token: &str,
    ) -> QueryResult<Option<(Pass, Tenant)>> {
        let pass = passes::table
            .filter(passes::download_token.eq(token))
            .select(Pass::as_select())
            .first(conn)
            .optional()?;
        Ok(pass.map(|p| {
            let tenant = Tenant::of_authenticated(p.merchant_id);
            (p, tenant)
        }))
    }

    pub fn of_member(
        conn: &mut PgConnection,
        tenant: &Tenant,
        member_id: Uuid,
    ) -> QueryResult<Pass> {
        passes::table
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .filter(passes::member_id.eq(member_id))
            .select(Pass::as_select())
            .first(conn)
    }

    /// The passes of the given members (a page of a member list), in no particular order.
    pub fn of_members(
        conn: &mut PgConnection,
        tenant: &Tenant,
        member_ids: &[Uuid],
    ) -> QueryResult<Vec<Pass>> {
        passes::table
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .filter(passes::member_id.eq_any(member_ids))
            .select(Pass::as_select())
            .load(conn)
    }

    /// Apple devices the pass is registered on, and whether Google Wallet holds it saved.
    pub fn installs(
        conn: &mut PgConnection,
        tenant: &Tenant,
        pass_id: Uuid,
    ) -> QueryResult<(i64, bool)> {
        use crate::schema::{google_installs, registrations};
        let apple: i64 = registrations::table
            .filter(registrations::merchant_id.eq(tenant.merchant_id()))
            .filter(registrations::pass_id.eq(pass_id))
            .count()
            .get_result(conn)?;
        let google: Option<bool> = google_installs::table
            .filter(google_installs::merchant_id.eq(tenant.merchant_id()))
            .filter(google_installs::pass_id.eq(pass_id))
            .select(google_installs::saved)
            .first(conn)
            .optional()?;
        Ok((apple, google.unwrap_or(false)))
    }

    pub fn of_gift_cards(
        conn: &mut PgConnection,
        tenant: &Tenant,
        ids: &[Uuid],
    ) -> QueryResult<Vec<Pass>> {
        passes::table
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .filter(passes::gift_card_id.eq_any(ids))
            .select(Pass::as_select())
            .load(conn)
    }

    pub fn of_gift_card(
        conn: &mut PgConnection,
        tenant: &Tenant,
        gift_card_id: Uuid,
    ) -> QueryResult<Pass> {
        passes::table
            .filter(passes::merchant_id.eq(tenant.merchant_id()))
            .filter(passes::gift_card_id.eq(gift_card_id))
            .select(Pass::as_select())
            .first(conn)
    }
}

impl Pass {
    /// The pass with this serial number. Not scoped by a tenant: Apple's web service
    /// proves access with the pass's own authentication token, checked by the caller.
    pub fn by_serial(conn: &mut PgConnection, serial: &str) -> QueryResult<Option<(Pass, Tenant)>> {
        let pass = passes::table
            .filter(passes::serial_number.eq(serial))
            .select(Pass::as_select())
            .first(conn)
            .optional()?;
        Ok(pass.map(|p| {
            let tenant = Tenant::of_authenticated(p.merchant_id);
            (p, tenant)
        }))
    }
}

/// Where update tags stand now: `safe` is the newest tag it is safe to hand a device;
/// `next` is the first transaction id not yet given out, above every tag this cluster
/// ever wrote.
pub struct TagHorizon {
    pub safe: i64,
    pub next: i64,
}

/// Changes whose transactions are still running have tags at or above the id of their
/// transaction, and must show up in the device's next query even though they commit after
/// this one, so `safe` stays below them. Only this database's writers matter (a busy
/// neighbour on a shared server must not hold the tag back).
pub fn tag_horizon(conn: &mut PgConnection) -> QueryResult<TagHorizon> {
    #[derive(QueryableByName)]
    struct Horizon {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        xmax: i64,
        #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::BigInt>)]
        running: Vec<i64>,
    }
    let h: Horizon = diesel::sql_query(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax, \
                COALESCE(array_agg(backend_xid::text::bigint) FILTER (WHERE backend_xid IS NOT NULL), '{}') AS running \
           FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .get_result(conn)?;
    // backend_xid is the 32-bit form; widen it with the epoch of the current xid.
    let (epoch, low) = (h.xmax >> 32, h.xmax & 0xffff_ffff);
    let widen = |xid: i64| {
        if xid <= low {
            (epoch << 32) | xid
        } else {
            ((epoch - 1) << 32) | xid
        }
    };
    let oldest = h
        .running
        .into_iter()
        .map(widen)
        .min()
        .unwrap_or(h.xmax)
        .min(h.xmax);
    Ok(TagHorizon {
        safe: oldest - 1,
        next: h.xmax,
    })
}

/// After a dump was restored into another cluster, passes keep tags (transaction ids of
/// the old cluster) above every id the new cluster has given out, and changes made now get
/// lower ones. Gives such passes the current transaction's id, once, so tags grow again
/// (devices are told about them once more; their content did not change). Only one caller
/// at a time does the work; the others find it taken and go on.
pub fn renumber_restored_tags(conn: &mut PgConnection) -> QueryResult<usize> {
    /// Advisory lock key: "pftags" in ASCII.
    const LOCK: i64 = 0x7066_7461_6773;
    conn.transaction(|conn| {
        let taken: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "pg_try_advisory_xact_lock({LOCK})"
        )))
        .get_result(conn)?;
        if !taken {
            return Ok(0);
        }
        // Every committed tag of this cluster is below the statement snapshot's xmax.
        let restored: Vec<Uuid> = passes::table
            .filter(
                passes::update_tag.ge(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
                )),
            )
            .select(passes::id)
            .load(conn)?;
        // New tags from this cluster; nothing to deliver (the phones are being told now).
        Ok(crate::pass_events::passes_changed(conn, &restored, "restored", &[])?.len())
    })
}

#[cfg(test)]
mod tests {
    use super::Pass;
    use chrono::Utc;
    use uuid::Uuid;

    #[test]
    fn debug_hides_the_tokens() {
        let pass = Pass {
            id: Uuid::new_v4(),
            merchant_id: Uuid::new_v4(),
            serial_number: "serial-1".into(),
            member_id: None,
            gift_card_id: None,
            template_id: "loyalty-default".into(),
            authentication_token: "auth-token-secret".into(),
            download_token: "download-token-secret".into(),
            update_tag: 7,
            updated_at: Utc::now(),
            created_at: Utc::now(),
            message_header: None,
            message_body: None,
            message_at: None,
        };
        let shown = format!("{pass:?}");
        assert!(shown.contains("serial-1"));
        assert!(!shown.contains("auth-token-secret"), "{shown}");
        assert!(!shown.contains("download-token-secret"), "{shown}");
    }
}
