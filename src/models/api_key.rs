use crate::db::Tenant;
use crate::domain::{ApiKeySecret, Scope};
use crate::schema::api_keys;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub scope: Scope,
    pub label: Option<String>,
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub(crate) fn insert(
        conn: &mut PgConnection,
        merchant_id: Uuid,
        scope: Scope,
        label: Option<&str>,
        secret: &ApiKeySecret,
    ) -> QueryResult<ApiKey> {
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(Uuid::new_v4()),
                api_keys::merchant_id.eq(merchant_id),
                api_keys::scope.eq(scope),
                api_keys::label.eq(label),
                api_keys::key_hash.eq(secret.hash()),
                api_keys::display_prefix.eq(secret.display_prefix()),
            ))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    /// Issues a new key for the tenant; the secret is returned once.
    pub fn issue(
        conn: &mut PgConnection,
        tenant: &Tenant,
        scope: Scope,
        label: Option<&str>,
    ) -> QueryResult<(ApiKey, ApiKeySecret)> {
        let secret = ApiKeySecret::generate(scope);
        let key = Self::insert(conn, tenant.merchant_id(), scope, label, &secret)?;
        Ok((key, secret))
    }

    /// The active key with this secret, if any. This is the one query not scoped by a
    /// tenant: it is how a tenant is established.
    pub fn authenticate(
        conn: &mut PgConnection,
        secret: &ApiKeySecret,
    ) -> QueryResult<Option<ApiKey>> {
        api_keys::table
            .filter(api_keys::key_hash.eq(secret.hash()))
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKey::as_select())
            .first(conn)
            .optional()
    }

    pub fn list(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Vec<ApiKey>> {
        api_keys::table
            .filter(api_keys::merchant_id.eq(tenant.merchant_id()))
            .order(api_keys::created_at.asc())
            .select(ApiKey::as_select())
            .load(conn)
    }

    /// A page of the merchant's keys in creation order, after `after` (created, id).
    pub fn page(
        conn: &mut PgConnection,
        tenant: &Tenant,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<ApiKey>> {
        let mut query = api_keys::table
            .filter(api_keys::merchant_id.eq(tenant.merchant_id()))
            .order((api_keys::created_at.asc(), api_keys::id.asc()))
            .limit(limit)
            .select(ApiKey::as_select())
            .into_boxed();
        if let Some((at, id)) = after {
            query = query.filter(
                api_keys::created_at
                    .gt(at)
                    .or(api_keys::created_at.eq(at).and(api_keys::id.gt(id))),
            );
        }
        query.load(conn)
    }

    pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<ApiKey> {
        api_keys::table
            .filter(api_keys::merchant_id.eq(tenant.merchant_id()))
            .filter(api_keys::id.eq(id))
            .select(ApiKey::as_select())
            .first(conn)
    }

    /// Revokes a key; refuses to revoke the merchant's last active admin key, which would
    /// lock the merchant out of its own account.
    pub fn revoke(
        conn: &mut PgConnection,
        tenant: &Tenant,
        id: Uuid,
    ) -> QueryResult<Result<ApiKey, LastAdminKey>> {
        conn.transaction(|conn| {
            // Lock the merchant's keys so two concurrent revocations cannot both pass the check.
            let keys: Vec<ApiKey> = api_keys::table
                .filter(api_keys::merchant_id.eq(tenant.merchant_id()))
                .select(ApiKey::as_select())
                .for_update()
                .load(conn)?;
            let key = keys
                .iter()
                .find(|k| k.id == id)
                .ok_or(diesel::result::Error::NotFound)?;
            if key.revoked_at.is_some() {
                return Ok(Ok(key.clone()));
            }
            let other_admins = keys
                .iter()
                .filter(|k| k.id != id && k.revoked_at.is_none() && k.scope == Scope::Admin)
                .count();
            if key.scope == Scope::Admin && other_admins == 0 {
                return Ok(Err(LastAdminKey));
            }
            diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
                .set(api_keys::revoked_at.eq(Utc::now()))
                .returning(ApiKey::as_returning())
                .get_result(conn)
                .map(Ok)
        })
    }
}

/// Refusal to revoke the only admin key left.
#[derive(Debug)]
pub struct LastAdminKey;
