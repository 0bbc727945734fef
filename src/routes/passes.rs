use crate::apple::pkpass;
use crate::db;
use crate::models::Pass;
use crate::pass_content::PassContent;
use crate::problem::ApiError;
use crate::startup::AppState;
use actix_web::http::header::{self, HttpDate};
use actix_web::{get, web, HttpRequest, HttpResponse};
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
#[utoipa::path(tag = "passes", params(("token" = String, Path)), responses(
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
    let app = state.clone();
    let content = db::run(&state.pool, move |conn| {
        let (pass, tenant) = Pass::by_download_token(conn, &token)?
            .ok_or_else(|| ApiError::not_found("no pass at this link"))?;
        Ok(PassContent::load(
            conn,
            &tenant,
            pass,
            &app.templates,
            &app.settings.public_url,
        )?)
    })
    .await?;
    serve_pass(&req, &state, content).await
}

/// Answers with the pass (or 304), with `Last-Modified` and `ETag`.
pub(crate) async fn serve_pass(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    content: PassContent,
) -> Result<HttpResponse, ApiError> {
    let etag = content.etag();
    let last_modified: SystemTime = content.last_modified().into();
    if not_modified(req, &etag, last_modified) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((
                header::LAST_MODIFIED,
                HttpDate::from(last_modified).to_string(),
            ))
            .finish());
    }
    let app = state.clone();
    let bytes = web::block(move || {
        let web_service_url = format!("{}/apple", app.settings.public_url);
        pkpass::build_pass(&app.identity, &content, &web_service_url)
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "building a pass failed");
        ApiError::internal("the pass could not be built; the error has been logged")
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.apple.pkpass")
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::LAST_MODIFIED,
            HttpDate::from(last_modified).to_string(),
        ))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"pass.pkpass\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes))
}
