use crate::apple::pkpass;
use crate::db;
use crate::models::Pass;
use crate::pass_cache::CachedPass;
use crate::pass_content::PassContent;
use crate::problem::ApiError;
use crate::startup::AppState;
use actix_web::http::header::{self, HttpDate};
use actix_web::{get, web, HttpRequest, HttpResponse};
use bytes::Bytes;
use std::time::SystemTime;

/// The unguessable download link of a pass: the token is the only secret.
pub fn url(public_url: &str, pass: &Pass) -> String {
    format!("{public_url}/passes/{}", pass.download_token)
}

/// Whether the client's copy (by `If-None-Match` or `If-Modified-Since`) is current.
pub(crate) fn not_modified(req: &HttpRequest, etag: &str, last_modified: SystemTime) -> bool {
    if let Some(tags) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return tags.split(',').any(|t| t.trim() == etag || t.trim() == "*");
    }
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

/// The current signed pass behind a download link.
#[utoipa::path(operation_id = "downloadPass", tag = "passes", params(("token" = String, Path)), responses(crate::openapi::Database, crate::openapi::PathObject,
    (status = 200, description = "The signed pass", content_type = "application/vnd.apple.pkpass"),
    (status = 304, description = "Not modified"),
    (status = 404, body = crate::problem::Problem, content_type = "application/problem+json")))]
#[get("/passes/{token}")]
pub async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = token.into_inner();
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("no pass at this link"));
    }
    let lookup = token.clone();
    current_pass(&req, &state, &token, move |conn, app| {
        let (pass, tenant) = Pass::by_download_token(conn, &lookup)?
            .ok_or_else(|| ApiError::not_found("no pass at this link"))?;
        Ok(PassContent::load(
            conn,
            &tenant,
            pass,
            &app.templates,
            &app.settings.public_url,
        )?)
    })
    .await
}

/// The one way a pass is served, to customers and to Apple's web service alike: from the
/// pass cache when it holds the pass (keyed by the download token), else loaded with
/// `load`, answered 304 when the client's copy is current, else signed and cached.
pub(crate) async fn current_pass<F>(
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
        state.metrics.pass_download("cache");
        return Ok(answer(req, &hit.etag, hit.last_modified.into(), || {
            hit.bytes.clone()
        }));
    }
    let generation = state.pass_cache.generation();
    let app = state.clone();
    let content = db::run(&state.pool, move |conn| load(conn, &app)).await?;
    let etag = content.etag();
    let last_modified = content.last_modified();
    if not_modified(req, &etag, last_modified.into()) {
        state.metrics.pass_download("not_modified");
        return Ok(answer(req, &etag, last_modified.into(), Bytes::new));
    }
    state.metrics.pass_download("built");
    let pass_id = content.pass.id;
    let template = (content.pass.merchant_id, content.pass.template_id.clone());
    let bytes = Bytes::from(build(state, content).await?);
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
    Ok(answer(req, &etag, last_modified.into(), || bytes))
}

/// Signs the pass on the blocking pool.
pub(crate) async fn build(
    state: &web::Data<AppState>,
    content: PassContent,
) -> Result<Vec<u8>, ApiError> {
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

/// The pass, or 304 when the client's copy is current, with `Last-Modified` and `ETag`.
pub(crate) fn answer(
    req: &HttpRequest,
    etag: &str,
    last_modified: SystemTime,
    bytes: impl FnOnce() -> Bytes,
) -> HttpResponse {
    let last_modified_text = HttpDate::from(last_modified).to_string();
    if not_modified(req, etag, last_modified) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag.to_string()))
            .insert_header((header::LAST_MODIFIED, last_modified_text))
            .finish();
    }
    HttpResponse::Ok()
        .content_type("application/vnd.apple.pkpass")
        .insert_header((header::ETAG, etag.to_string()))
        .insert_header((header::LAST_MODIFIED, last_modified_text))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"pass.pkpass\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes())
}

/// The card's "Add to Google Wallet" link: a JWT signed by the service account carrying
/// the card's object, built from the same content as its Apple pass.
pub(crate) fn google_save_url(
    conn: &mut diesel::PgConnection,
    tenant: &crate::db::Tenant,
    pass: &Pass,
    state: &AppState,
) -> Result<Option<String>, ApiError> {
    if let Some(url) = state.save_links.get(pass.id, pass.update_tag) {
        return Ok(Some(url.to_string()));
    }
    let content = PassContent::load(
        conn,
        tenant,
        pass.clone(),
        &state.templates,
        &state.settings.public_url,
    )?;
    let issuer = state.google.issuer();
    let object = crate::google::objects::object_for(issuer, &content, &state.settings.public_url);
    match crate::google::save_link::save_url(issuer, &object, &state.settings.public_url) {
        Ok(url) => {
            state
                .save_links
                .put(pass.id, pass.update_tag, url.as_str().into());
            Ok(Some(url))
        }
        Err(e) => {
            tracing::error!(error = %e, "signing a Google save link failed");
            Ok(None)
        }
    }
}
