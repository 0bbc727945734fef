use crate::db;
use crate::google::callbacks::verify;
use crate::models::Pass;
use crate::problem::{ApiError, ProblemKind};
use crate::schema::{google_callbacks, google_installs};
use crate::startup::AppState;
use actix_web::{post, web, HttpResponse};
use diesel::prelude::*;

/// Google Wallet's save and delete callbacks (the URL in every class's `callbackOptions`).
/// The `ECv2SigningOnly` signature is verified; each nonce counts once.
#[utoipa::path(operation_id = "receiveGoogleCallback", tag = "google",
    request_body(content = Object, description = "The callback envelope as Google sends it: `signature`, `intermediateSigningKey`, `protocolVersion`, `signedMessage`"),
    responses(crate::openapi::Database, crate::openapi::JsonBody, (status = 200, description = "Recorded (or a duplicate)"),
    (status = 401, description = "The signature does not verify", body = crate::problem::Problem, content_type = "application/problem+json")))]
#[post("/google/callbacks")]
pub async fn callback(
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    // The signatures cover the strings inside the envelope, not its outer formatting.
    let body = serde_json::to_vec(&body.into_inner()).unwrap_or_default();
    let roots = state
        .google_keys
        .keys()
        .await
        .map_err(|e| ApiError::new(ProblemKind::Unavailable, e).with_retry_after(30))?;
    let issuer = state.google.issuer();
    let callback = verify(&roots, &issuer.issuer_id, &body).map_err(|e| {
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
