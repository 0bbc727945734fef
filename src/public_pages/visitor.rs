//! Visitors of the public pages: a random cookie (no personal data) that counts a link's
//! opens once per visitor and binds each form's CSRF token, both as keyed hashes under a
//! secret this installation generates for itself and keeps in the database. Opens are also
//! limited per client address, kept as a keyed hash too.

use crate::schema::site_secrets;
use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::HttpRequest;
use diesel::prelude::*;
use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::pkey::PKey;
use openssl::sign::Signer;

pub const COOKIE: &str = "pf_visitor";

/// The installation's key for visitor hashes and CSRF tokens, created on first use.
pub fn load_secret(conn: &mut PgConnection) -> QueryResult<Vec<u8>> {
    let mut fresh = [0u8; 32];
    openssl::rand::rand_bytes(&mut fresh)
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
    diesel::insert_into(site_secrets::table)
        .values((
            site_secrets::name.eq("public_pages"),
            site_secrets::secret.eq(fresh.to_vec()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    site_secrets::table
        .find("public_pages")
        .select(site_secrets::secret)
        .first(conn)
}

const ID_LEN: usize = 32;

/// The visitor's id from the cookie, if it has a well-formed one.
pub fn id_of(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == ID_LEN && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

pub fn new_id() -> String {
    crate::domain::tokens::secret(ID_LEN)
}

pub fn cookie(id: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE, id.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::days(365))
        .finish()
}

fn mac(secret: &[u8], parts: &[&str]) -> Vec<u8> {
    // HMAC-SHA256 with a 32-byte key cannot fail; an empty MAC would only fail checks.
    (|| {
        let key = PKey::hmac(secret).ok()?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key).ok()?;
        for p in parts {
            signer.update(p.as_bytes()).ok()?;
            signer.update(b"\0").ok()?;
        }
        signer.sign_to_vec().ok()
    })()
    .unwrap_or_default()
}

/// What is stored for a link open: not the visitor's id, only a keyed hash of it.
pub fn open_key(secret: &[u8], visitor: &str) -> Vec<u8> {
    mac(secret, &["open", visitor])
}

/// What is stored with a link open to limit opens per client address: a keyed hash of the
/// address, so the table holds no addresses.
pub fn client_key(secret: &[u8], client: &str) -> Vec<u8> {
    mac(secret, &["client", client])
}

/// The token a form on `path` carries for this visitor.
pub fn csrf_token(secret: &[u8], visitor: &str, path: &str) -> String {
    hex::encode(mac(secret, &["csrf", visitor, path]))
}

pub fn csrf_ok(secret: &[u8], visitor: Option<&str>, path: &str, token: &str) -> bool {
    let Some(visitor) = visitor else { return false };
    let expected = csrf_token(secret, visitor, path);
    expected.len() == token.len() && memcmp::eq(expected.as_bytes(), token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_visitor_and_form() {
        let secret = [7u8; 32];
        let t = csrf_token(&secret, "a".repeat(32).as_str(), "/r/ABC");
        assert!(csrf_ok(&secret, Some(&"a".repeat(32)), "/r/ABC", &t));
        assert!(!csrf_ok(&secret, Some(&"b".repeat(32)), "/r/ABC", &t));
        assert!(!csrf_ok(&secret, Some(&"a".repeat(32)), "/r/ABD", &t));
        assert!(!csrf_ok(&secret, None, "/r/ABC", &t));
        assert!(!csrf_ok(&[8u8; 32], Some(&"a".repeat(32)), "/r/ABC", &t));
        assert!(!csrf_ok(&secret, Some(&"a".repeat(32)), "/r/ABC", ""));
    }
}
