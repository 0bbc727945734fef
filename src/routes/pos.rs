//! The one way a POS mutation runs: it needs an `Idempotency-Key`, its body is fingerprinted
//! and parsed, the work and the stored answer share one transaction, and after the commit
//! this process's pass cache drops the pass that changed.

use crate::app::AppState;
use crate::db::{self, Tenant};
use crate::idempotency::{self, FastOutcome, IdempotencyKey};
use crate::problem::ApiError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::PgConnection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// What a mutation changed, for the pass cache.
pub trait ChangesPass {
    fn changed_passes(&self) -> Vec<Uuid>;
}

impl ChangesPass for crate::giftcard::Movement {
    fn changed_passes(&self) -> Vec<Uuid> {
        vec![self.pass_id]
    }
}

impl ChangesPass for crate::giftcard::redeem::Redeemed {
    fn changed_passes(&self) -> Vec<Uuid> {
        vec![self.pass_id]
    }
}

impl ChangesPass for crate::loyalty::points::PointsChange {
    fn changed_passes(&self) -> Vec<Uuid> {
        let mut passes = vec![self.pass_id];
        passes.extend(self.also_changed.iter().copied());
        passes
    }
}

impl ChangesPass for crate::loyalty::payment::PointsPaid {
    fn changed_passes(&self) -> Vec<Uuid> {
        vec![self.pass_id]
    }
}

impl ChangesPass for crate::loyalty::refund::Refunded {
    fn changed_passes(&self) -> Vec<Uuid> {
        vec![self.pass_id]
    }
}

/// A non-member receipt belongs to no pass.
impl ChangesPass for crate::analytics::receipts::Receipt {
    fn changed_passes(&self) -> Vec<Uuid> {
        Vec::new()
    }
}

/// A campaign's creation changes no pass: the worker sends it later.
impl ChangesPass for crate::campaigns::CampaignView {
    fn changed_passes(&self) -> Vec<Uuid> {
        Vec::new()
    }
}

impl ChangesPass for crate::campaigns::automations::AutomationView {
    fn changed_passes(&self) -> Vec<Uuid> {
        Vec::new()
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
    mutation_fast_first(req, state, tenant, body, success, |_, _, _| Ok(None), work).await
}

/// A mutation whose common case runs as one statement (`fast`, given the request, its key
/// and fingerprint), falling back to `work` for everything it does not settle.
pub async fn mutation_fast_first<B, T, F, G>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    tenant: Tenant,
    body: serde_json::Value,
    success: StatusCode,
    fast: G,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    B: DeserializeOwned + Send + 'static,
    T: Serialize + ChangesPass + Send + 'static,
    F: FnOnce(&mut PgConnection, &Tenant, B) -> Result<T, ApiError> + Send + 'static,
    G: FnOnce(&mut PgConnection, &Tenant, (&B, &IdempotencyKey, &[u8])) -> FastOutcome
        + Send
        + 'static,
{
    let key = IdempotencyKey::from_request(req)?;
    let fingerprint = idempotency::fingerprint(req.method().as_str(), req.path(), &body);
    let parsed: B = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("the JSON body does not fit: {e}")))?;
    let (answer, changed) = db::run(&state.pool, move |conn| {
        if let Some((pass_id, body)) = fast(conn, &tenant, (&parsed, &key, &fingerprint))? {
            return Ok((
                idempotency::StoredAnswer::first_json(success, body),
                vec![pass_id],
            ));
        }
        let (answer, value) =
            idempotency::run(conn, &tenant, &key, &fingerprint, success, |conn| {
                work(conn, &tenant, parsed)
            })?;
        Ok((
            answer,
            value
                .as_ref()
                .map(ChangesPass::changed_passes)
                .unwrap_or_default(),
        ))
    })
    .await?;
    for pass_id in changed {
        state.pass_cache.evict_pass(pass_id);
    }
    Ok(answer.into_response())
}
