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
