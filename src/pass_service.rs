//! Serving a pass and its Google link, the same way to customers' download links, Apple's
//! web service and the public pages: from the pass cache, else built, with 304s only for
//! settled times; and the "Add to Google Wallet" link finished after the database work.

use crate::app::AppState;
use crate::apple::pkpass;
use crate::db;
use crate::google::save_link::{self, SaveLink};
use crate::models::Pass;
use crate::pass_cache::CachedPass;
use crate::pass_content::PassContent;
use crate::problem::ApiError;
use actix_web::http::header::{self, HttpDate};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::time::SystemTime;

/// Whether the client's copy (by `If-None-Match` or `If-Modified-Since`) is current.
/// `last_modified` is `None` while the pass's time may not be handed out yet (see
/// [`settled`]): then `If-Modified-Since` never matches.
pub fn not_modified(req: &HttpRequest, etag: &str, last_modified: Option<SystemTime>) -> bool {
    if let Some(tags) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return tags.split(',').any(|t| t.trim() == etag || t.trim() == "*");
    }
    let Some(last_modified) = last_modified else {
        return false;
    };
    req.headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<HttpDate>().ok())
        .is_some_and(|since| {
            // HTTP dates have whole seconds: compare at that resolution.
            let since: SystemTime = since.into();
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            };
            secs(last_modified) <= secs(since)
        })
}

/// The earliest `updated_at` any change not yet visible can carry: a change's time is
/// taken inside its transaction (by `passfold_pass_changed`, see `outbox`), so it is no earlier than that
/// transaction's start, and transactions not running now start later. Read *before* the
/// pass, so every version the read misses is at or after it.
pub fn settled_before(conn: &mut diesel::PgConnection) -> diesel::QueryResult<DateTime<Utc>> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Settled {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        at: DateTime<Utc>,
    }
    let row: Settled = diesel::sql_query(
        "SELECT LEAST(statement_timestamp(), min(xact_start)) AS at FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid() \
            AND backend_type = 'client backend'",
    )
    .get_result(conn)?;
    Ok(row.at)
}

/// The `Last-Modified` of a pass last changed at `updated_at`, if it may be handed out:
/// only once its whole second lies before `settled` (RFC 9110 8.8.2.2), so that no change
/// still to come can fall into the second it names. Otherwise a change committed within
/// that second would be answered 304 to a phone holding the older version.
pub fn settled(updated_at: DateTime<Utc>, settled: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (settled.timestamp() > updated_at.timestamp()).then_some(updated_at)
}

/// The one way a pass is served, to customers and to Apple's web service alike: from the
/// pass cache when it holds the pass (keyed by the download token), else loaded with
/// `load`, answered 304 when the client's copy is current, else signed and cached.
pub async fn current_pass<F>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    token: &str,
    load: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut diesel::PgConnection, &AppState) -> Result<PassContent, ApiError>
        + Send
        + 'static,
{
    if let Some(hit) = state.pass_cache.get(token) {
        // Only passes whose Last-Modified was settled are cached.
        state.metrics.pass_download("cache");
        return Ok(answer(
            req,
            &hit.etag,
            Some(hit.last_modified.into()),
            || hit.bytes.clone(),
        ));
    }
    let generation = state.pass_cache.generation();
    let app = state.clone();
    let (content, settled_at) = db::run(&state.pool, move |conn| {
        let settled_at = settled_before(conn)?;
        Ok((load(conn, &app)?, settled_at))
    })
    .await?;
    let etag = content.etag();
    let last_modified = settled(content.last_modified(), settled_at);
    let http_time = last_modified.map(SystemTime::from);
    if not_modified(req, &etag, http_time) {
        state.metrics.pass_download("not_modified");
        return Ok(answer(req, &etag, http_time, Bytes::new));
    }
    state.metrics.pass_download("built");
    let pass_id = content.pass.id;
    let template = (content.pass.merchant_id, content.pass.template_id.clone());
    let bytes = Bytes::from(build(state, content).await?);
    if let Some(last_modified) = last_modified {
        state.pass_cache.insert(
            token,
            CachedPass {
                pass_id,
                template,
                etag: etag.clone(),
                last_modified,
                bytes: bytes.clone(),
            },
            generation,
        );
    }
    Ok(answer(req, &etag, http_time, || bytes))
}

/// Signs the pass on the blocking pool.
pub async fn build(state: &web::Data<AppState>, content: PassContent) -> Result<Vec<u8>, ApiError> {
    let app = state.clone();
    web::block(move || {
        let web_service_url = format!("{}/apple", app.settings.public_url);
        pkpass::build_pass(&app.identity, &content, &web_service_url)
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "building a pass failed");
        ApiError::internal("the pass could not be built; the error has been logged")
    })
}

/// The pass, or 304 when the client's copy is current, with `ETag` and, once settled,
/// `Last-Modified`.
pub fn answer(
    req: &HttpRequest,
    etag: &str,
    last_modified: Option<SystemTime>,
    bytes: impl FnOnce() -> Bytes,
) -> HttpResponse {
    let current = not_modified(req, etag, last_modified);
    let mut response = if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response.insert_header((header::ETAG, etag.to_string()));
    if let Some(time) = last_modified {
        response.insert_header((header::LAST_MODIFIED, HttpDate::from(time).to_string()));
    }
    if current {
        return response.finish();
    }
    response
        .content_type("application/vnd.apple.pkpass")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"pass.pkpass\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes())
}

/// The card's "Add to Google Wallet" link, built from the same content as its Apple pass:
/// finish it with [`SaveLink::resolve`] once the database work is done. With Google Wallet
/// configured the link names an object inserted over REST (the first time, by `resolve`);
/// else it carries the whole object.
pub fn google_save_url(
    conn: &mut diesel::PgConnection,
    tenant: &crate::db::Tenant,
    pass: &Pass,
    state: &AppState,
) -> Result<SaveLink, ApiError> {
    if let Some(url) = state.save_links.get(pass.id, pass.update_tag) {
        return Ok(SaveLink::Ready(Some(url.to_string())));
    }
    let content = PassContent::load(
        conn,
        tenant,
        pass.clone(),
        &state.templates,
        &state.settings.public_url,
    )?;
    let issuer = state.google.issuer();
    let public_url = &state.settings.public_url;
    let object = crate::google::objects::object_for(issuer, &content, public_url);
    let signed = if !state.settings.google.configured() {
        save_link::save_url(issuer, &object, public_url)
    } else if save_link::object_inserted(conn, pass.id)? {
        save_link::skinny_save_url(issuer, &object, public_url)
    } else {
        let class = crate::google::objects::class_for(issuer, &content, public_url);
        return Ok(SaveLink::Insert {
            pass_id: pass.id,
            merchant_id: pass.merchant_id,
            update_tag: pass.update_tag,
            class: Box::new(class),
            object: Box::new(object),
        });
    };
    match signed {
        Ok(url) => {
            state
                .save_links
                .put(pass.id, pass.update_tag, url.as_str().into());
            Ok(SaveLink::Ready(Some(url)))
        }
        Err(e) => {
            tracing::error!(error = %e, "signing a Google save link failed");
            Ok(SaveLink::Ready(None))
        }
    }
}

/// Finishes a save link once the database work is done (the REST insert happens here, on
/// the async client, with no connection held).
pub async fn finish_save_link(state: &AppState, link: SaveLink) -> Option<String> {
    link.resolve(
        &state.google,
        &state.pool,
        &state.save_links,
        &state.settings.public_url,
    )
    .await
}
