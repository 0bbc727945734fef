//! The one way a POS mutation runs: it needs an `Idempotency-Key`, its body is fingerprinted
//! and parsed, the work and the stored answer share one transaction, and after the commit
//! this process's pass cache drops the pass that changed.

use crate::db::{self, Tenant};
use crate::idempotency::{self, IdempotencyKey};
use crate::problem::ApiError;
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::PgConnection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// What a mutation changed, for the pass cache.
pub trait ChangesPass {
    fn changed_pass(&self) -> Option<Uuid>;
}

impl ChangesPass for crate::giftcard::Movement {
    fn changed_pass(&self) -> Option<Uuid> {
        Some(self.pass_id)
    }
}

impl ChangesPass for crate::loyalty::points::PointsChange {
    fn changed_pass(&self) -> Option<Uuid> {
        Some(self.pass_id)
    }
}

pub async fn mutation<B, T, F>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    tenant: Tenant,
    body: serde_json::Value,
    success: StatusCode,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    B: DeserializeOwned + Send + 'static,
    T: Serialize + ChangesPass + Send + 'static,
    F: FnOnce(&mut PgConnection, &Tenant, B) -> Result<T, ApiError> + Send + 'static,
{
    let key = IdempotencyKey::from_request(req)?;
    let fingerprint = idempotency::fingerprint(req.method().as_str(), req.path(), &body);
    let parsed: B = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("the JSON body does not fit: {e}")))?;
    let (answer, value) = db::run(&state.pool, move |conn| {
        idempotency::run(conn, &tenant, &key, &fingerprint, success, |conn| {
            work(conn, &tenant, parsed)
        })
    })
    .await?;
    if let Some(pass_id) = value.as_ref().and_then(ChangesPass::changed_pass) {
        state.pass_cache.evict_pass(pass_id);
    }
    Ok(answer.into_response())
}
