use crate::domain::{ApiKeySecret, MerchantName, Scope};
use crate::models::api_key::ApiKey;
use crate::models::template::Template;
use crate::schema::merchants;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = merchants)]
pub struct Merchant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// What `passfold merchant create` prints: the keys appear here and never again.
/// `Debug` is written by hand: the keys are printed once, on purpose, never by a log line.
#[derive(Serialize)]
pub struct NewMerchantCredentials {
    pub merchant_id: Uuid,
    pub name: String,
    pub admin_key: String,
    pub pos_key: String,
}

impl std::fmt::Debug for NewMerchantCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMerchantCredentials")
            .field("merchant_id", &self.merchant_id)
            .field("name", &self.name)
            .field("admin_key", &"***")
            .field("pos_key", &"***")
            .finish()
    }
}

impl Merchant {
    /// Creates a merchant with one admin and one pos key, in one transaction.
    pub fn create(
        conn: &mut PgConnection,
        name: &MerchantName,
    ) -> QueryResult<NewMerchantCredentials> {
        conn.transaction(|conn| {
            let merchant = Merchant {
                id: Uuid::new_v4(),
                name: name.as_str().to_string(),
                created_at: Utc::now(),
            };
            diesel::insert_into(merchants::table)
                .values(&merchant)
                .execute(conn)?;
            let admin = ApiKeySecret::generate(Scope::Admin);
            let pos = ApiKeySecret::generate(Scope::Pos);
            ApiKey::insert(
                conn,
                merchant.id,
                Scope::Admin,
                Some("initial admin key"),
                &admin,
            )?;
            ApiKey::insert(conn, merchant.id, Scope::Pos, Some("initial pos key"), &pos)?;
            Template::install_examples(conn, merchant.id)?;
            Ok(NewMerchantCredentials {
                merchant_id: merchant.id,
                name: merchant.name,
                admin_key: admin.expose().to_string(),
                pos_key: pos.expose().to_string(),
            })
        })
    }

    pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Merchant> {
        merchants::table
            .find(id)
            .select(Merchant::as_select())
            .first(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::NewMerchantCredentials;
    use crate::domain::{ApiKeySecret, Scope};
    use uuid::Uuid;

    #[test]
    fn debug_hides_the_keys() {
        let admin = ApiKeySecret::generate(Scope::Admin);
        let pos = ApiKeySecret::generate(Scope::Pos);
        let creds = NewMerchantCredentials {
            merchant_id: Uuid::new_v4(),
            name: "Кофейня".into(),
            admin_key: admin.expose().to_string(),
            pos_key: pos.expose().to_string(),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("Кофейня"));
        assert!(!shown.contains(admin.expose()), "{shown}");
        assert!(!shown.contains(pos.expose()), "{shown}");
    }
}
