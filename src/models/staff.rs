//! Rows and queries of the console's tables: staff accounts, their sessions, invitations,
//! failed sign-ins and the audit log. The rules (who may do what, lifetimes, limits) are in
//! `crate::staff`.

use crate::db::Tenant;
use crate::domain::{Email, Language, Role};
use crate::schema::{audit_log, sign_in_failures, staff, staff_invitations, staff_sessions};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = staff)]
pub struct StaffMember {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    pub language: Language,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl StaffMember {
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        email: &Email,
        role: Role,
        password_hash: &str,
        language: Language,
        now: DateTime<Utc>,
    ) -> QueryResult<StaffMember> {
        diesel::insert_into(staff::table)
            .values((
                staff::id.eq(Uuid::new_v4()),
                staff::merchant_id.eq(tenant.merchant_id()),
                staff::email.eq(email.as_str()),
                staff::role.eq(role),
                staff::password_hash.eq(password_hash),
                staff::language.eq(language),
                staff::created_at.eq(now),
            ))
            .returning(StaffMember::as_returning())
            .get_result(conn)
    }

    /// Every account with this email, at any merchant: how a sign-in finds its tenant (the
    /// one query on staff not scoped by a tenant). Most recently used first.
    pub fn by_email_any_merchant(
        conn: &mut PgConnection,
        email: &str,
    ) -> QueryResult<Vec<StaffMember>> {
        staff::table
            .filter(staff::email.eq(email))
            .order((
                staff::last_sign_in_at.desc().nulls_last(),
                staff::created_at.asc(),
            ))
            .limit(MAX_ACCOUNTS_PER_EMAIL)
            .select(StaffMember::as_select())
            .load(conn)
    }

    pub fn find(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
    ) -> QueryResult<Option<StaffMember>> {
        staff::table
            .filter(staff::merchant_id.eq(tenant.merchant_id()))
            .filter(staff::id.eq(id))
            .select(StaffMember::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_email(
        conn: &mut PgConnection,
        tenant: &Tenant,
        email: &Email,
    ) -> QueryResult<Option<StaffMember>> {
        staff::table
            .filter(staff::merchant_id.eq(tenant.merchant_id()))
            .filter(staff::email.eq(email.as_str()))
            .select(StaffMember::as_select())
            .first(conn)
            .optional()
    }

    pub fn list(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Vec<StaffMember>> {
        staff::table
            .filter(staff::merchant_id.eq(tenant.merchant_id()))
            .order((staff::email.asc(), staff::id.asc()))
            .select(StaffMember::as_select())
            .load(conn)
    }

    /// The tenant's owners, locked until the transaction ends: a demotion or removal that
    /// checks "another owner remains" cannot race another doing the same.
    pub fn lock_owners(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Vec<Uuid>> {
        staff::table
            .filter(staff::merchant_id.eq(tenant.merchant_id()))
            .filter(staff::role.eq(Role::Owner))
            .select(staff::id)
            .for_update()
            .load(conn)
    }

    pub fn set_role(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        role: Role,
    ) -> QueryResult<usize> {
        diesel::update(
            staff::table
                .filter(staff::merchant_id.eq(tenant.merchant_id()))
                .filter(staff::id.eq(id)),
        )
        .set(staff::role.eq(role))
        .execute(conn)
    }

    pub fn set_password_hash(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        hash: &str,
    ) -> QueryResult<usize> {
        diesel::update(
            staff::table
                .filter(staff::merchant_id.eq(tenant.merchant_id()))
                .filter(staff::id.eq(id)),
        )
        .set(staff::password_hash.eq(hash))
        .execute(conn)
    }

    pub fn set_language(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        language: Language,
    ) -> QueryResult<usize> {
        diesel::update(
            staff::table
                .filter(staff::merchant_id.eq(tenant.merchant_id()))
                .filter(staff::id.eq(id)),
        )
        .set(staff::language.eq(language))
        .execute(conn)
    }

    pub fn record_sign_in(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::update(
            staff::table
                .filter(staff::merchant_id.eq(tenant.merchant_id()))
                .filter(staff::id.eq(id)),
        )
        .set(staff::last_sign_in_at.eq(at))
        .execute(conn)
    }

    /// Deletes the account; its sessions go with it (ON DELETE CASCADE).
    pub fn delete(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<usize> {
        diesel::delete(
            staff::table
                .filter(staff::merchant_id.eq(tenant.merchant_id()))
                .filter(staff::id.eq(id)),
        )
        .execute(conn)
    }
}

/// At most this many accounts share one email across merchants in a sign-in: each costs a
/// password hash check.
pub const MAX_ACCOUNTS_PER_EMAIL: i64 = 8;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = staff_sessions)]
pub struct StaffSessionRow {
    pub token_hash: Vec<u8>,
    pub merchant_id: Uuid,
    pub staff_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl StaffSessionRow {
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        staff_id: Uuid,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::insert_into(staff_sessions::table)
            .values((
                staff_sessions::token_hash.eq(token_hash),
                staff_sessions::merchant_id.eq(tenant.merchant_id()),
                staff_sessions::staff_id.eq(staff_id),
                staff_sessions::created_at.eq(now),
                staff_sessions::last_seen_at.eq(now),
            ))
            .execute(conn)
    }

    /// The session with this token hash and its account: the one query on sessions not
    /// scoped by a tenant (it is how a console request gets one).
    pub fn by_token_hash(
        conn: &mut PgConnection,
        token_hash: &[u8],
    ) -> QueryResult<Option<(StaffSessionRow, StaffMember)>> {
        staff_sessions::table
            .inner_join(staff::table)
            .filter(staff_sessions::token_hash.eq(token_hash))
            .select((StaffSessionRow::as_select(), StaffMember::as_select()))
            .first(conn)
            .optional()
    }

    pub fn touch(
        conn: &mut PgConnection,
        tenant: &Tenant,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::update(
            staff_sessions::table
                .filter(staff_sessions::merchant_id.eq(tenant.merchant_id()))
                .filter(staff_sessions::token_hash.eq(token_hash)),
        )
        .set(staff_sessions::last_seen_at.eq(now))
        .execute(conn)
    }

    pub fn delete(
        conn: &mut PgConnection,
        tenant: &Tenant,
        token_hash: &[u8],
    ) -> QueryResult<usize> {
        diesel::delete(
            staff_sessions::table
                .filter(staff_sessions::merchant_id.eq(tenant.merchant_id()))
                .filter(staff_sessions::token_hash.eq(token_hash)),
        )
        .execute(conn)
    }

    /// Ends the account's sessions, all but `keep` when given.
    pub fn delete_of_staff(
        conn: &mut PgConnection,
        tenant: &Tenant,
        staff_id: Uuid,
        keep: Option<&[u8]>,
    ) -> QueryResult<usize> {
        let all = staff_sessions::table
            .filter(staff_sessions::merchant_id.eq(tenant.merchant_id()))
            .filter(staff_sessions::staff_id.eq(staff_id));
        match keep {
            Some(keep) => {
                diesel::delete(all.filter(staff_sessions::token_hash.ne(keep))).execute(conn)
            }
            None => diesel::delete(all).execute(conn),
        }
    }

    /// Every merchant's sessions idle since `idle_before` or started before
    /// `started_before`: a maintenance sweep (the pruning job), the one query on this table
    /// across merchants.
    pub fn delete_all_expired(
        conn: &mut PgConnection,
        idle_before: DateTime<Utc>,
        started_before: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::delete(
            staff_sessions::table.filter(
                staff_sessions::last_seen_at
                    .lt(idle_before)
                    .or(staff_sessions::created_at.lt(started_before)),
            ),
        )
        .execute(conn)
    }

    /// Ends the account's sessions idle since `idle_before` or started before
    /// `started_before`.
    pub fn delete_expired_of_staff(
        conn: &mut PgConnection,
        tenant: &Tenant,
        staff_id: Uuid,
        idle_before: DateTime<Utc>,
        started_before: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::delete(
            staff_sessions::table
                .filter(staff_sessions::merchant_id.eq(tenant.merchant_id()))
                .filter(staff_sessions::staff_id.eq(staff_id))
                .filter(
                    staff_sessions::last_seen_at
                        .lt(idle_before)
                        .or(staff_sessions::created_at.lt(started_before)),
                ),
        )
        .execute(conn)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = staff_invitations)]
pub struct Invitation {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
}

impl Invitation {
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        email: &Email,
        role: Role,
        token_hash: &[u8],
        invited_by: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> QueryResult<Invitation> {
        diesel::insert_into(staff_invitations::table)
            .values((
                staff_invitations::id.eq(Uuid::new_v4()),
                staff_invitations::merchant_id.eq(tenant.merchant_id()),
                staff_invitations::email.eq(email.as_str()),
                staff_invitations::role.eq(role),
                staff_invitations::token_hash.eq(token_hash),
                staff_invitations::invited_by.eq(invited_by),
                staff_invitations::created_at.eq(now),
                staff_invitations::expires_at.eq(expires_at),
            ))
            .returning(Invitation::as_returning())
            .get_result(conn)
    }

    /// The invitation whose link carries this token, at any merchant (the link is the
    /// secret that names the merchant), locked for the transaction that accepts it.
    pub fn by_token_hash_for_update(
        conn: &mut PgConnection,
        token_hash: &[u8],
    ) -> QueryResult<Option<Invitation>> {
        staff_invitations::table
            .filter(staff_invitations::token_hash.eq(token_hash))
            .select(Invitation::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    pub fn by_token_hash(
        conn: &mut PgConnection,
        token_hash: &[u8],
    ) -> QueryResult<Option<Invitation>> {
        staff_invitations::table
            .filter(staff_invitations::token_hash.eq(token_hash))
            .select(Invitation::as_select())
            .first(conn)
            .optional()
    }

    /// Invitations neither accepted nor expired at `now`, newest first.
    pub fn pending(
        conn: &mut PgConnection,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> QueryResult<Vec<Invitation>> {
        staff_invitations::table
            .filter(staff_invitations::merchant_id.eq(tenant.merchant_id()))
            .filter(staff_invitations::accepted_at.is_null())
            .filter(staff_invitations::expires_at.gt(now))
            .order(staff_invitations::created_at.desc())
            .limit(200)
            .select(Invitation::as_select())
            .load(conn)
    }

    pub fn mark_accepted(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::update(
            staff_invitations::table
                .filter(staff_invitations::merchant_id.eq(tenant.merchant_id()))
                .filter(staff_invitations::id.eq(id))
                .filter(staff_invitations::accepted_at.is_null()),
        )
        .set(staff_invitations::accepted_at.eq(now))
        .execute(conn)
    }

    /// Withdraws a pending invitation (its link stops working).
    pub fn delete_pending(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
    ) -> QueryResult<Option<Invitation>> {
        diesel::delete(
            staff_invitations::table
                .filter(staff_invitations::merchant_id.eq(tenant.merchant_id()))
                .filter(staff_invitations::id.eq(id))
                .filter(staff_invitations::accepted_at.is_null()),
        )
        .returning(Invitation::as_returning())
        .get_result(conn)
        .optional()
    }
}

/// Failed sign-ins (rate limits), keyed by the email typed and the client address.
pub struct SignInFailures;

#[derive(QueryableByName)]
pub struct RecentFailures {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub email_and_client: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub email: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub client: i64,
}

impl SignInFailures {
    pub fn record(
        conn: &mut PgConnection,
        email: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<i64> {
        diesel::insert_into(sign_in_failures::table)
            .values((
                sign_in_failures::email.eq(email),
                sign_in_failures::client.eq(client),
                sign_in_failures::created_at.eq(now),
            ))
            .returning(sign_in_failures::id)
            .get_result(conn)
    }

    /// Failures since `since` (its own record included) per email and client, per email,
    /// and per client.
    pub fn count_since(
        conn: &mut PgConnection,
        email: &str,
        client: &str,
        since: DateTime<Utc>,
    ) -> QueryResult<RecentFailures> {
        use diesel::sql_types::{Text, Timestamptz};
        diesel::sql_query(
            "SELECT count(*) FILTER (WHERE email = $2 AND client = $1) AS email_and_client,
                    count(*) FILTER (WHERE email = $2) AS email,
                    count(*) FILTER (WHERE client = $1) AS client
               FROM sign_in_failures
              WHERE (client = $1 OR email = $2) AND created_at > $3",
        )
        .bind::<Text, _>(client)
        .bind::<Text, _>(email)
        .bind::<Timestamptz, _>(since)
        .get_result(conn)
    }

    pub fn take_back(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
        diesel::delete(sign_in_failures::table.find(id)).execute(conn)
    }

    /// Forgets the failures of this email from this client (after the right password).
    pub fn clear(conn: &mut PgConnection, email: &str, client: &str) -> QueryResult<usize> {
        diesel::delete(
            sign_in_failures::table
                .filter(sign_in_failures::email.eq(email))
                .filter(sign_in_failures::client.eq(client)),
        )
        .execute(conn)
    }

    pub fn prune_before(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
        diesel::delete(sign_in_failures::table.filter(sign_in_failures::created_at.lt(before)))
            .execute(conn)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub merchant_id: Uuid,
    pub staff_id: Option<Uuid>,
    pub action: String,
    pub details: serde_json::Value,
    pub client: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AuditEntry {
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        conn: &mut PgConnection,
        tenant: &Tenant,
        staff_id: Option<Uuid>,
        action: &str,
        details: &serde_json::Value,
        client: Option<&str>,
        at: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::merchant_id.eq(tenant.merchant_id()),
                audit_log::staff_id.eq(staff_id),
                audit_log::action.eq(action),
                audit_log::details.eq(details),
                audit_log::client.eq(client),
                audit_log::created_at.eq(at),
            ))
            .execute(conn)
    }

    /// Up to `limit` lines older than the line `before` (all when `None`), newest first,
    /// with the email of the staff member when the account still exists.
    pub fn page(
        conn: &mut PgConnection,
        tenant: &Tenant,
        before: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<(AuditEntry, Option<String>)>> {
        let mut query = audit_log::table
            .left_join(
                staff::table.on(staff::id
                    .nullable()
                    .eq(audit_log::staff_id)
                    .and(staff::merchant_id.eq(audit_log::merchant_id))),
            )
            .filter(audit_log::merchant_id.eq(tenant.merchant_id()))
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(audit_log::id.lt(before));
        }
        query
            .order(audit_log::id.desc())
            .limit(limit)
            .select((AuditEntry::as_select(), staff::email.nullable()))
            .load(conn)
    }
}
