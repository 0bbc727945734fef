//! Why a console request was not answered with its page, as pages of their own (and the
//! redirect to sign in).

use super::document::signed_out;
use super::i18n::{texts, Texts};
use crate::domain::Language;
use crate::problem::ApiError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use maud::html;

/// Why a console request was not answered with its page.
#[derive(Debug)]
pub enum PageError {
    /// No live session: to the sign-in page.
    SignedOut,
    /// The role does not allow the section (403, refused on the server).
    Forbidden(Language),
    NotFound(Language),
    /// A POST without the right CSRF token (403).
    Csrf(Language),
    /// The database or the service failed; shown as a page with the problem's status.
    Failed(Language, ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Failed(Language::En, e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::SignedOut => f.write_str("not signed in"),
            PageError::Forbidden(_) => f.write_str("forbidden for this role"),
            PageError::NotFound(_) => f.write_str("not found"),
            PageError::Csrf(_) => f.write_str("missing or wrong CSRF token"),
            PageError::Failed(_, e) => write!(f, "{e}"),
        }
    }
}

fn message(status: StatusCode, lang: Language, text: &str) -> HttpResponse {
    let t: &Texts = texts(lang);
    signed_out(
        status,
        lang,
        text,
        html! {
            p class="errors" role="alert" id="refusal" { (text) }
            p { a href="/console/" { (t.back_home) } }
        },
    )
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignedOut => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::Csrf(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Failed(_, e) => e.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::SignedOut => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish(),
            PageError::Forbidden(lang) => {
                message(StatusCode::FORBIDDEN, *lang, texts(*lang).forbidden)
            }
            PageError::Csrf(lang) => {
                message(StatusCode::FORBIDDEN, *lang, texts(*lang).csrf_failed)
            }
            PageError::NotFound(lang) => {
                message(StatusCode::NOT_FOUND, *lang, texts(*lang).not_found)
            }
            PageError::Failed(lang, e) => {
                if e.status.is_server_error() {
                    tracing::warn!(error = %e, "console page failed");
                }
                let mut res = message(e.status, *lang, texts(*lang).error_generic);
                if let Some(seconds) = e.retry_after {
                    if let Ok(v) = header::HeaderValue::from_str(&seconds.to_string()) {
                        res.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                }
                res
            }
        }
    }
}

/// Any path under `/console` that is no page.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    PageError::NotFound(super::browser_language(&req)).error_response()
}
