//! "Add to Google Wallet" links: `https://pay.google.com/gp/v/save/<JWT>`, the JWT signed
//! RS256 by the service account and carrying the object (its class is created over REST,
//! which keeps links short enough for a browser).

use super::objects::GoogleObject;
use super::GoogleIssuer;
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'static str,
    typ: &'static str,
    iat: i64,
    origins: Vec<&'a str>,
    payload: serde_json::Value,
}

/// The save link for one card's object.
pub fn save_url(
    issuer: &GoogleIssuer,
    object: &GoogleObject,
    public_url: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let collection = match object.kind {
        super::objects::ObjectKind::Loyalty => "loyaltyObjects",
        super::objects::ObjectKind::GiftCard => "giftCardObjects",
    };
    let claims = Claims {
        iss: &issuer.client_email,
        aud: "google",
        typ: "savetowallet",
        iat: chrono::Utc::now().timestamp(),
        origins: vec![public_url],
        payload: serde_json::json!({ collection: [object.body] }),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(issuer.key_id.clone());
    let jwt = jsonwebtoken::encode(&header, &claims, &issuer.key)?;
    Ok(format!("https://pay.google.com/gp/v/save/{jwt}"))
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
