//! Idempotency keys for POS mutations (after Stripe's and zero2prod's): the first answer is
//! stored in the same transaction as the mutation; a retry with the same key and body gets
//! that answer back with `Idempotent-Replayed: true`, the same key with another body is
//! refused, and a retry while the first is still running waits for it.

mod key;

pub use key::{fingerprint, IdempotencyKey};

use crate::db::Tenant;
use crate::problem::{ApiError, ProblemKind};
use crate::schema::idempotency_keys;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use diesel::prelude::*;
use serde::Serialize;

/// An answer as stored and replayed.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub replayed: bool,
}

/// What a one-statement fast path did: the changed pass and the JSON body of the answer it
/// stored under the key, or nothing written (then the general path runs).
pub type FastOutcome = Result<Option<(uuid::Uuid, Vec<u8>)>, ApiError>;

impl StoredAnswer {
    /// A first answer (not a replay) with a JSON body.
    pub fn first_json(status: StatusCode, body: Vec<u8>) -> Self {
        StoredAnswer {
            status: status.as_u16(),
            body,
            content_type: "application/json".into(),
            replayed: false,
        }
    }

    pub fn into_response(self) -> HttpResponse {
        let mut res =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK));
        res.content_type(self.content_type);
        if self.replayed {
            res.insert_header(("Idempotent-Replayed", "true"));
        }
        res.body(self.body)
    }
}

enum TxError {
    Api(ApiError),
    KeyTaken,
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// Whether an error is an answer to store (the request was judged) rather than a failure
/// to judge it (then nothing is stored and a retry runs it again).
fn is_verdict(e: &ApiError) -> bool {
    e.status.is_client_error()
        && !matches!(
            e.kind,
            ProblemKind::IdempotencyKeyInUse | ProblemKind::RateLimited
        )
}

/// Runs `work` once per key. `work` must write nothing when it returns an error: its
/// transaction is rolled back either way, and a judged error is stored on its own.
pub fn run<T, F>(
    conn: &mut PgConnection,
    tenant: &Tenant,
    key: &IdempotencyKey,
    fingerprint: &[u8],
    success: StatusCode,
    work: F,
) -> Result<(StoredAnswer, Option<T>), ApiError>
where
    T: Serialize,
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError>,
{
    let outcome = conn.transaction::<_, TxError, _>(|conn| {
        let value = work(conn).map_err(TxError::Api)?;
        let answer =
            StoredAnswer::first_json(success, serde_json::to_vec(&value).unwrap_or_default());
        store(conn, tenant, key, fingerprint, &answer)?;
        Ok((answer, Some(value)))
    });
    match outcome {
        Ok(done) => Ok(done),
        Err(TxError::KeyTaken) => replay(conn, tenant, key, fingerprint).map(|a| (a, None)),
        Err(TxError::Api(e)) if is_verdict(&e) => {
            // Judged and refused: remember the refusal too, unless another request with
            // this key got there first.
            let answer = StoredAnswer {
                status: e.status.as_u16(),
                body: e.body().to_string().into_bytes(),
                content_type: crate::problem::PROBLEM_CONTENT_TYPE.into(),
                replayed: false,
            };
            let stored = conn.transaction::<_, TxError, _>(|conn| {
                store(conn, tenant, key, fingerprint, &answer)
            });
            match stored {
                Ok(()) => Err(e),
                Err(TxError::KeyTaken) => replay(conn, tenant, key, fingerprint).map(|a| (a, None)),
                Err(TxError::Db(db)) if crate::db::is_lock_timeout(&db) => Err(in_use()),
                Err(TxError::Db(db)) => Err(db.into()),
                Err(TxError::Api(e)) => Err(e),
            }
        }
        Err(TxError::Api(e)) => Err(e),
        Err(TxError::Db(db)) if crate::db::is_lock_timeout(&db) => Err(in_use()),
        Err(TxError::Db(db)) => Err(db.into()),
    }
}

pub(crate) fn in_use() -> ApiError {
    ApiError::new(
        ProblemKind::IdempotencyKeyInUse,
        "a request with this idempotency key is still being processed; retry shortly",
    )
    .with_retry_after(1)
}

/// Inserts the answer under the key; a row already there (committed by another request,
/// which this insert waits for) means the key is taken. Through `passfold_store_answer`,
/// so that a wait past the lock timeout is recognisable.
fn store(
    conn: &mut PgConnection,
    tenant: &Tenant,
    key: &IdempotencyKey,
    fingerprint: &[u8],
    answer: &StoredAnswer,
) -> Result<(), TxError> {
    use diesel::sql_types::{Bool, Bytea, SmallInt, Text, Uuid};
    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Bool)]
        inserted: bool,
    }
    let stored: Stored =
        diesel::sql_query("SELECT passfold_store_answer($1, $2, $3, $4, $5, $6) AS inserted")
            .bind::<Uuid, _>(tenant.merchant_id())
            .bind::<Text, _>(key.as_str())
            .bind::<Bytea, _>(fingerprint)
            .bind::<SmallInt, _>(answer.status as i16)
            .bind::<Bytea, _>(&answer.body)
            .bind::<Text, _>(&answer.content_type)
            .get_result(conn)?;
    if !stored.inserted {
        return Err(TxError::KeyTaken);
    }
    Ok(())
}

fn replay(
    conn: &mut PgConnection,
    tenant: &Tenant,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> Result<StoredAnswer, ApiError> {
    let (stored_fp, status, body, content_type): (Vec<u8>, i16, Vec<u8>, String) =
        idempotency_keys::table
            .find((tenant.merchant_id(), key.as_str()))
            .select((
                idempotency_keys::fingerprint,
                idempotency_keys::response_status,
                idempotency_keys::response_body,
                idempotency_keys::response_content_type,
            ))
            .first(conn)?;
    if stored_fp != fingerprint {
        return Err(ApiError::new(
            ProblemKind::IdempotencyKeyReuse,
            "this idempotency key was used for another request; use a new key for a new request",
        ));
    }
    Ok(StoredAnswer {
        status: status as u16,
        body,
        content_type,
        replayed: true,
    })
}

/// Deletes keys older than `hours`; returns how many.
pub fn prune(
    conn: &mut PgConnection,
    now: chrono::DateTime<chrono::Utc>,
    hours: i64,
) -> QueryResult<usize> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::created_at.lt(now - chrono::Duration::hours(hours))),
    )
    .execute(conn)
}
