//! "Send to my phone": a short-lived link, signed with the installation's secret (merchant,
//! template, the draft's hash, expiry; nothing stored), that downloads a signed pass of the
//! working copy with sample data. It is marked as a test (serial `test-…`, a back field
//! saying so) and carries no web service URL or token, so a phone never registers it and
//! it is never counted as an install.

use crate::app::AppState;
use crate::apple::assets::TemplateAssets;
use crate::apple::pass_json::{render, PassInput};
use crate::db::{self, Tenant};
use crate::problem::{ApiError, ProblemKind};
use crate::template::document::Field;
use crate::template::images::Images;
use crate::template::preview::SampleCard;
use crate::template::validate::parse_document;
use crate::template::versions;
use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long a link works.
pub const LIFETIME_MINUTES: i64 = 15;

/// The hash of a working copy: a link stops working when the draft changes.
pub fn draft_hash(document: &serde_json::Value, images: &Images) -> String {
    let mut h = Sha256::new();
    h.update(document.to_string().as_bytes());
    for (name, data) in images {
        h.update(name.as_bytes());
        h.update(Sha256::digest(data));
    }
    hex::encode(&h.finalize()[..16])
}

fn mac(secret: &[u8], payload: &str) -> Vec<u8> {
    (|| {
        let key = PKey::hmac(secret).ok()?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key).ok()?;
        signer.update(b"designer-test-pass\0").ok()?;
        signer.update(payload.as_bytes()).ok()?;
        signer.sign_to_vec().ok()
    })()
    .unwrap_or_default()
}

/// The link's token.
pub fn token(
    secret: &[u8],
    merchant: Uuid,
    template: &str,
    hash: &str,
    expires: DateTime<Utc>,
) -> String {
    let payload = format!("{merchant}\n{template}\n{hash}\n{}", expires.timestamp());
    let signature = mac(secret, &payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

pub fn link(state: &AppState, merchant: Uuid, template: &str, hash: &str) -> String {
    let expires = state.clock.now() + Duration::minutes(LIFETIME_MINUTES);
    format!(
        "{}/console/test-pass/{}",
        state.settings.public_url.trim_end_matches('/'),
        token(&state.site_secret, merchant, template, hash, expires)
    )
}

/// (merchant, template, hash) of a token that is genuine and not expired.
fn verify(secret: &[u8], token: &str, now: DateTime<Utc>) -> Option<(Uuid, String, String)> {
    let (payload, signature) = token.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let expected = mac(secret, &payload);
    if expected.is_empty()
        || expected.len() != signature.len()
        || !memcmp::eq(&expected, &signature)
    {
        return None;
    }
    let mut parts = payload.split('\n');
    let merchant = Uuid::parse_str(parts.next()?).ok()?;
    let template = parts.next()?.to_string();
    let hash = parts.next()?.to_string();
    let expires: i64 = parts.next()?.parse().ok()?;
    (now.timestamp() <= expires).then_some((merchant, template, hash))
}

fn gone(text: &str) -> HttpResponse {
    HttpResponse::Gone()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(text.to_string())
}

/// `GET /console/test-pass/{token}`: the pass (no session: it is opened on a phone).
pub async fn download(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some((merchant, template, hash)) = verify(&state.site_secret, &token, state.clock.now())
    else {
        return Ok(gone(
            "This test link has expired or is not genuine. Make a new one in the designer.",
        ));
    };
    // The signature is the authentication: only the console makes these links.
    let tenant = Tenant::of_authenticated(merchant);
    let lookup = template.clone();
    let (working, merchant_name) = db::run(&state.pool, move |conn| {
        let working = versions::working(conn, &tenant, &lookup)?;
        let merchant = crate::models::Merchant::find(conn, merchant)?;
        Ok((working, merchant.name))
    })
    .await?;
    if draft_hash(&working.document, &working.images) != hash {
        return Ok(gone(
            "The draft has changed since this link was made. Make a new one in the designer.",
        ));
    }
    let public_url = state.settings.public_url.clone();
    let worker = state.clone();
    let built = state
        .image_decodes
        .run(move || -> Result<Vec<u8>, ApiError> {
            let mut document = parse_document(&working.document, &working.images)
                .map_err(ApiError::invalid_fields)?;
            document.fields.back.insert(
                0,
                Field {
                    key: "passfold_test".into(),
                    label: Some("Test pass".into()),
                    value: "A test of a draft design from the passfold designer. It is never updated and counts as no card.".into(),
                    change_message: None,
                    text_alignment: None,
                },
            );
            let card = SampleCard::sample(document.kind, &merchant_name, &public_url);
            let serial = format!("test-{}", crate::domain::tokens::serial_number());
            let identity = &worker.identity;
            let rendered = render(&PassInput {
                template: &document,
                context: &card.context,
                pass_type_id: &identity.pass_type_id,
                team_id: &identity.team_id,
                serial_number: &serial,
                authentication_token: "",
                web_service_url: "",
                voided: false,
                card_number: &card.card_number,
                message: None,
            });
            crate::apple::pkpass::build(identity, &rendered, &TemplateAssets::new(&working.images))
                .map_err(|e| ApiError::new(ProblemKind::Internal, e.to_string()))
        })
        .await??;
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.apple.pkpass")
        .insert_header(("cache-control", "no-store"))
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"test-{template}.pkpass\""),
        ))
        .body(built))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_not_when_altered() {
        let secret = [3u8; 32];
        let now = Utc::now();
        let m = Uuid::new_v4();
        let t = token(
            &secret,
            m,
            "loyalty-default",
            "abc",
            now + Duration::minutes(15),
        );
        assert_eq!(
            verify(&secret, &t, now),
            Some((m, "loyalty-default".into(), "abc".into()))
        );
        assert_eq!(verify(&secret, &t, now + Duration::minutes(16)), None);
        assert_eq!(verify(&[4u8; 32], &t, now), None);
        assert_eq!(verify(&secret, "x.y", now), None);
    }
}
