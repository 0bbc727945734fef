//! "Add to Google Wallet" links: `https://pay.google.com/gp/v/save/<JWT>`, the JWT signed
//! RS256 by the service account. When Google Wallet is configured the object is inserted
//! over REST first and the JWT carries only its `id` and `classId` (a "skinny" JWT: links
//! stay far under the ~1,800 characters Google asks for); the whole object travels in the
//! link only when that insert cannot be made. Classes are always created over REST.

use super::objects::{GoogleClass, GoogleObject, ObjectKind};
use super::GoogleIssuer;
use crate::db::DbPool;
use crate::google::rest::GoogleClient;
use crate::schema::google_objects;
use diesel::prelude::*;
use serde::Serialize;
use std::time::Duration;

/// The longest a member's or gift card's answer waits for the object's insert.
const INSERT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'static str,
    typ: &'static str,
    iat: i64,
    origins: Vec<&'a str>,
    payload: serde_json::Value,
}

fn sign(
    issuer: &GoogleIssuer,
    kind: ObjectKind,
    object: serde_json::Value,
    public_url: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let collection = match kind {
        ObjectKind::Loyalty => "loyaltyObjects",
        ObjectKind::GiftCard => "giftCardObjects",
    };
    let claims = Claims {
        iss: &issuer.client_email,
        aud: "google",
        typ: "savetowallet",
        iat: chrono::Utc::now().timestamp(),
        origins: vec![public_url],
        payload: serde_json::json!({ collection: [object] }),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(issuer.key_id.clone());
    let jwt = jsonwebtoken::encode(&header, &claims, &issuer.key)?;
    Ok(format!("https://pay.google.com/gp/v/save/{jwt}"))
}

/// The save link carrying the whole object (for when Google has no copy of it).
pub fn save_url(
    issuer: &GoogleIssuer,
    object: &GoogleObject,
    public_url: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    sign(issuer, object.kind, object.body.clone(), public_url)
}

/// The save link of an object Google already has: its id and class id only.
pub fn skinny_save_url(
    issuer: &GoogleIssuer,
    object: &GoogleObject,
    public_url: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let reference = serde_json::json!({"id": object.id, "classId": object.body["classId"]});
    sign(issuer, object.kind, reference, public_url)
}

/// Whether Google has the card's object (written by the sync or for an earlier link).
pub fn object_inserted(conn: &mut PgConnection, pass_id: uuid::Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        google_objects::table.filter(google_objects::pass_id.eq(pass_id)),
    ))
    .get_result(conn)
}

/// A card's save link as far as it could be made with a database connection at hand; the
/// object's first insert waits for [`SaveLink::resolve`], outside the database work and
/// without holding a connection.
pub enum SaveLink {
    Ready(Option<String>),
    Insert {
        pass_id: uuid::Uuid,
        merchant_id: uuid::Uuid,
        update_tag: i64,
        class: Box<GoogleClass>,
        object: Box<GoogleObject>,
    },
}

impl SaveLink {
    pub async fn resolve(
        self,
        google: &GoogleClient,
        pool: &DbPool,
        links: &SaveLinks,
        public_url: &str,
    ) -> Option<String> {
        let (pass_id, merchant_id, update_tag, class, object) = match self {
            SaveLink::Ready(url) => return url,
            SaveLink::Insert {
                pass_id,
                merchant_id,
                update_tag,
                class,
                object,
            } => (pass_id, merchant_id, update_tag, class, object),
        };
        let issuer = google.issuer();
        let inserted =
            tokio::time::timeout(INSERT_TIMEOUT, google.insert_for_link(&class, &object))
                .await
                .map_err(|_| "timed out".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        let url = match inserted {
            Ok(()) => {
                let recorded = crate::db::run(pool, move |conn| {
                    diesel::insert_into(google_objects::table)
                        .values((
                            google_objects::pass_id.eq(pass_id),
                            google_objects::merchant_id.eq(merchant_id),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)?;
                    Ok(())
                })
                .await;
                if let Err(e) = recorded {
                    // The link holds all the same; the next one inserts again (409 is fine).
                    tracing::warn!(%pass_id, error = %e, "could not record a Google object as inserted");
                }
                skinny_save_url(issuer, &object, public_url)
            }
            Err(why) => {
                tracing::warn!(%pass_id, reason = %why, "cannot insert the Google object for a save link; the link carries the whole object");
                save_url(issuer, &object, public_url)
            }
        };
        match url {
            Ok(url) => {
                links.put(pass_id, update_tag, url.as_str().into());
                Some(url)
            }
            Err(e) => {
                tracing::error!(error = %e, "signing a Google save link failed");
                None
            }
        }
    }
}

/// Signed links by pass, each valid for one version of its pass (its update tag): an
/// unchanged card's link costs neither the five queries of its content nor a signature.
pub struct SaveLinks {
    links: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, (i64, std::sync::Arc<str>)>>,
    capacity: usize,
}

impl SaveLinks {
    pub fn new(capacity: usize) -> Self {
        SaveLinks {
            links: Default::default(),
            capacity,
        }
    }

    pub fn get(&self, pass_id: uuid::Uuid, update_tag: i64) -> Option<std::sync::Arc<str>> {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        match links.get(&pass_id) {
            Some((tag, url)) if *tag == update_tag => Some(url.clone()),
            _ => None,
        }
    }

    pub fn put(&self, pass_id: uuid::Uuid, update_tag: i64, url: std::sync::Arc<str>) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if links.len() >= self.capacity && !links.contains_key(&pass_id) {
            // Full: drop an arbitrary link; it is rebuilt on its next use.
            if let Some(victim) = links.keys().next().copied() {
                links.remove(&victim);
            }
        }
        // A slower request must not replace a newer version with an older one.
        match links.get(&pass_id) {
            Some((tag, _)) if *tag > update_tag => {}
            _ => {
                links.insert(pass_id, (update_tag, url));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SaveLinks;
    use uuid::Uuid;

    #[test]
    fn a_link_serves_only_its_own_version_and_the_cache_stays_bounded() {
        let links = SaveLinks::new(2);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        links.put(a, 5, "a5".into());
        assert_eq!(links.get(a, 5).as_deref(), Some("a5"));
        assert_eq!(links.get(a, 6), None);
        links.put(a, 7, "a7".into());
        links.put(a, 6, "a6".into());
        assert_eq!(links.get(a, 7).as_deref(), Some("a7"));
        links.put(b, 1, "b1".into());
        links.put(c, 1, "c1".into());
        assert_eq!(links.links.lock().map(|l| l.len()).ok(), Some(2));
        assert_eq!(links.get(c, 1).as_deref(), Some("c1"));
    }
}
