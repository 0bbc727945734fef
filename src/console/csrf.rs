//! CSRF protection of every POST under `/console`, checked here before any handler runs,
//! so a page added later is protected without doing anything.
//!
//! - Signed in: the token is an HMAC of the session's cookie under the installation's
//!   secret (one token per session, nothing stored); forms carry it as [`FIELD`].
//! - Before signing in (the sign-in form, an invitation's form): a double-submit cookie,
//!   [`PRE_SESSION_COOKIE`], set with the form and echoed in it.
//!
//! The token is read from the form field of a urlencoded body, else the `csrf` query
//! parameter (for a multipart form: `action="...?csrf=..."`), else the `X-CSRF-Token`
//! header (for a script's fetch). Compared in constant time. A missing or wrong token
//! gets a 403 page and the handler never runs.

use super::error::PageError;
use crate::app::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};
use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";
/// The double-submit cookie of the forms shown before a session exists.
pub const PRE_SESSION_COOKIE: &str = "pf_console_csrf";

/// The token of a session's forms.
pub fn session_token(secret: &[u8], session_cookie: &str) -> String {
    // HMAC-SHA256 with a 32-byte key cannot fail; an empty token would only fail checks.
    let mac = (|| {
        let key = PKey::hmac(secret).ok()?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key).ok()?;
        signer.update(b"console-csrf\0").ok()?;
        signer.update(session_cookie.as_bytes()).ok()?;
        signer.sign_to_vec().ok()
    })()
    .unwrap_or_default();
    hex::encode(mac)
}

/// The double-submit value of this browser, if its cookie is well-formed.
pub fn pre_session_value(req: &HttpRequest) -> Option<String> {
    req.cookie(PRE_SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| crate::staff::secret_well_formed(v))
}

/// The double-submit cookie for a form shown before sign-in.
pub fn pre_session_cookie(value: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(PRE_SESSION_COOKIE, value.to_string())
        .path("/console")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish()
}

fn equal(expected: &str, presented: &str) -> bool {
    !expected.is_empty()
        && expected.len() == presented.len()
        && memcmp::eq(expected.as_bytes(), presented.as_bytes())
}

/// Forms that are posted before a session exists, checked by the double-submit cookie.
fn pre_session_path(path: &str) -> bool {
    path == "/console/sign-in" || path.starts_with("/console/invitations/")
}

fn field_of(pairs: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(pairs)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

/// The middleware on the console scope.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    if req.method() != Method::POST {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let lang = super::browser_language(req.request());
    let mut presented = None;
    let urlencoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim() == "application/x-www-form-urlencoded")
        });
    if urlencoded {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(64 * 1024, |s| s.settings.body_limit);
        let body = match crate::request_guard::read_body(&mut req, limit).await {
            Ok(body) => body,
            Err(problem) => return Ok(req.error_response(problem).map_into_right_body()),
        };
        presented = field_of(&body);
        req.set_payload(body.into());
    }
    let presented = presented
        .or_else(|| field_of(req.query_string().as_bytes()))
        .or_else(|| {
            req.headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let expected = if pre_session_path(req.path()) {
        pre_session_value(req.request()).unwrap_or_default()
    } else {
        match (
            req.cookie(super::SESSION_COOKIE),
            req.app_data::<web::Data<AppState>>(),
        ) {
            (Some(cookie), Some(state)) => session_token(&state.site_secret, cookie.value()),
            _ => String::new(),
        }
    };
    if !equal(&expected, &presented) {
        tracing::info!(
            path = req.path(),
            "console POST refused: CSRF token missing or wrong"
        );
        let res = PageError::Csrf(lang).error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_the_session_and_compare_exactly() {
        let secret = [7u8; 32];
        let a = session_token(&secret, "session-a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, session_token(&secret, "session-b"));
        assert_ne!(a, session_token(&[8u8; 32], "session-a"));
        assert!(equal(&a, &a.clone()));
        assert!(!equal(&a, &a[..63]));
        assert!(!equal("", ""));
    }

    #[test]
    fn the_field_is_found_among_others() {
        assert_eq!(
            field_of(b"email=a%40b.c&csrf=abc123&x=1").as_deref(),
            Some("abc123")
        );
        assert_eq!(field_of(b"email=a"), None);
    }
}
