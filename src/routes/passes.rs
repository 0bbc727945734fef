//! Customers' pass download links.

use crate::app::AppState;
use crate::models::Pass;
use crate::pass_content::PassContent;
use crate::pass_service::current_pass;
use crate::problem::ApiError;
use actix_web::{get, web, HttpRequest, HttpResponse};

/// The current signed pass behind a download link.
#[utoipa::path(operation_id = "downloadPass", tag = "passes", params(("token" = String, Path)), responses(crate::openapi::Database, crate::openapi::PathObject, crate::openapi::Missing,
    (status = 200, description = "The signed pass", content_type = "application/vnd.apple.pkpass"),
    (status = 304, description = "Not modified")))]
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

/// The card's "Add to Google Wallet" link, signed now: a redirect to
/// `https://pay.google.com/gp/v/save/<JWT>`. Exports carry this lasting link instead of a
/// signed one per card.
#[utoipa::path(operation_id = "googleSaveRedirect", tag = "passes", params(("token" = String, Path)), responses(crate::openapi::Database, crate::openapi::PathObject, crate::openapi::Missing,
    (status = 302, description = "Redirect to the Google Wallet save link")))]
#[get("/passes/{token}/google")]
pub async fn google_save(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = token.into_inner();
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("no pass at this link"));
    }
    let app = state.clone();
    let link = crate::db::run(&state.pool, move |conn| {
        let (pass, tenant) = Pass::by_download_token(conn, &token)?
            .ok_or_else(|| ApiError::not_found("no pass at this link"))?;
        crate::pass_service::google_save_url(conn, &tenant, &pass, &app)
    })
    .await?;
    let url = crate::pass_service::finish_save_link(&state, link)
        .await
        .ok_or_else(|| {
            ApiError::internal("the save link could not be made; the error has been logged")
        })?;
    Ok(HttpResponse::Found()
        .insert_header((actix_web::http::header::LOCATION, url))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .finish())
}
