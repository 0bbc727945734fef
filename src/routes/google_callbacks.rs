use crate::app::AppState;
use crate::db;
use crate::google::callbacks::{verify, MAX_BODY};
use crate::models::Pass;
use crate::problem::{ApiError, ProblemKind};
use crate::schema::{google_callbacks, google_installs};
use actix_web::{post, web, HttpResponse};
use diesel::prelude::*;
use futures_util::StreamExt;

/// Google Wallet's save and delete callbacks (the URL in every class's `callbackOptions`).
/// The `ECv2SigningOnly` signature is verified; each nonce counts once. The body is read up
/// to 64 KiB and checked on the blocking pool: nothing is authenticated before the check.
#[utoipa::path(operation_id = "receiveGoogleCallback", tag = "google",
    request_body(content = Object, description = "The callback envelope as Google sends it: `signature`, `intermediateSigningKey`, `protocolVersion`, `signedMessage`"),
    responses(crate::openapi::Database, crate::openapi::JsonBody, crate::openapi::GoogleCallbackRefusals, (status = 200, description = "Recorded (or a duplicate)")))]
#[post("/google/callbacks")]
pub async fn callback(
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Read by hand, not through the app's 4 MiB JSON limit: a callback is a few KB.
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ProblemKind::Validation, e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::new(
                ProblemKind::PayloadTooLarge,
                format!("a Google callback is at most {MAX_BODY} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let roots = state
        .google_keys
        .keys()
        .await
        .map_err(|e| ApiError::new(ProblemKind::Unavailable, e).with_retry_after(30))?;
    let issuer = state.google.issuer();
    let issuer_id = issuer.issuer_id.clone();
    // Signature checks are CPU work: off the request threads.
    let callback = web::block(move || verify(&roots, &issuer_id, &body))
        .await
        .map_err(|e| ApiError::new(ProblemKind::Unavailable, e.to_string()))?
        .map_err(|e| {
            tracing::warn!(reason = %e, "refused a Google callback");
            ApiError::unauthorized(format!("not a valid Google callback: {e}"))
        })?;
    let serial = callback
        .object_id
        .strip_prefix(&format!("{}.pass_", issuer.issuer_id))
        .map(str::to_string);
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let fresh = diesel::insert_into(google_callbacks::table)
                .values((
                    google_callbacks::nonce.eq(&callback.nonce),
                    google_callbacks::object_id.eq(&callback.object_id),
                    google_callbacks::event_type.eq(&callback.event_type),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            if fresh == 0 {
                return Ok(()); // a duplicate delivery
            }
            let pass = match &serial {
                Some(serial) => Pass::by_serial(conn, serial)?,
                None => None,
            };
            if let Some((pass, _)) = pass {
                let saved = callback.event_type == "save";
                diesel::insert_into(google_installs::table)
                    .values((
                        google_installs::pass_id.eq(pass.id),
                        google_installs::merchant_id.eq(pass.merchant_id),
                        google_installs::saved.eq(saved),
                    ))
                    .on_conflict(google_installs::pass_id)
                    .do_update()
                    .set((
                        google_installs::saved.eq(saved),
                        google_installs::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .map_err(|e: diesel::result::Error| ApiError::from(e))
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}
