//! Bearer API keys. Handlers ask for [`AdminCaller`] or [`PosCaller`]; either one carries the
//! [`Tenant`] every data-access call needs, so a handler cannot reach data without one.

use crate::db::DbPool;
use crate::db::{self, Tenant};
use crate::domain::{ApiKeySecret, Scope};
use crate::models::ApiKey;
use crate::problem::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub scope: Scope,
    pub key_id: Uuid,
}

/// A caller holding an `admin` key.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

/// A caller holding a `pos` or an `admin` key: what a till may do.
#[derive(Debug, Clone)]
pub struct PosCaller(pub Caller);

fn presented_key(req: &HttpRequest) -> Result<ApiKeySecret, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("send an API key as `Authorization: Bearer <key>`")
    })?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not readable text"))?;
    // The scheme is case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` count too.
    let token = text
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must use the Bearer scheme")
        })?;
    ApiKeySecret::parse(token.trim())
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))
}

/// Recently authenticated keys, so a busy till costs no key lookup per request. An entry
/// lives 5 seconds: a key revoked through another process stops working within that time
/// (at once in the process that revoked it, which clears its cache).
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Vec<u8>, (Caller, Instant)>>,
}

const KEY_TTL: Duration = Duration::from_secs(5);
const KEY_CACHE_ENTRIES: usize = 10_000;

impl KeyCache {
    fn get(&self, hash: &[u8]) -> Option<Caller> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_TTL)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, hash: Vec<u8>, caller: Caller) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= KEY_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (caller, Instant::now()));
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The tenant an API key acts for, outside HTTP (tools and benchmarks that hold a key);
/// None for an unknown or revoked key.
pub fn tenant_of_key(
    conn: &mut diesel::PgConnection,
    key: &crate::domain::ApiKeySecret,
) -> diesel::QueryResult<Option<Tenant>> {
    Ok(ApiKey::authenticate(conn, key)?.map(|k| Tenant::of_authenticated(k.merchant_id)))
}

/// What the key extractors need: the database and the recently seen keys. `startup`
/// registers it as app data of its own, so this module does not depend on the
/// application state (which holds the same cache, to clear it on revocation).
pub struct Authenticator {
    pub pool: DbPool,
    pub api_keys: std::sync::Arc<KeyCache>,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = presented_key(req);
        let state = req.app_data::<web::Data<Authenticator>>().cloned();
        Box::pin(async move {
            let key = key?;
            let state = state.ok_or_else(|| ApiError::internal("authenticator missing"))?;
            let hash = key.hash();
            if let Some(caller) = state.api_keys.get(&hash) {
                return Ok(caller);
            }
            let found = db::run(&state.pool, move |conn| {
                Ok(ApiKey::authenticate(conn, &key)?)
            })
            .await?;
            let found =
                found.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
            let caller = Caller {
                tenant: Tenant::of_authenticated(found.merchant_id),
                scope: found.scope,
                key_id: found.id,
            };
            state.api_keys.put(hash, caller.clone());
            Ok(caller)
        })
    }
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            match caller.scope {
                Scope::Admin => Ok(AdminCaller(caller)),
                Scope::Pos => Err(ApiError::forbidden(
                    "this needs an admin key; a pos key may only do what a till does",
                )),
            }
        })
    }
}

impl FromRequest for PosCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move { Ok(PosCaller(caller.await?)) })
    }
}
