//! The console's pages: one document shape, the headers every page carries (a strict
//! Content-Security-Policy: nothing inline, nothing from another host), the signed-in
//! layout with navigation filtered by role, and the pages of refusals.

use super::i18n::{texts, Texts};
use super::session::{Section, StaffSession};
use crate::domain::Language;
use crate::problem::ApiError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use maud::{html, Markup, DOCTYPE};

/// What every console page sends. Scripts, styles and images only from this origin (the
/// hashed files under `/console/assets/`), never inline; forms only to this origin; never
/// framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// A whole HTML answer with the console's headers.
pub fn respond(status: StatusCode, lang: Language, title: &str, body: Markup) -> HttpResponse {
    let t = texts(lang);
    let document = html! {
        (DOCTYPE)
        html lang=(lang.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · " (t.console) }
                link rel="stylesheet" href=(super::assets::url("console.css"));
            }
            body { (body) }
        }
    };
    with_headers(HttpResponse::build(status)).body(document.into_string())
}

fn with_headers(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    builder
}

/// A page for someone not signed in (sign-in, invitation, refusals): a narrow column.
pub fn signed_out(status: StatusCode, lang: Language, title: &str, body: Markup) -> HttpResponse {
    let t = texts(lang);
    respond(
        status,
        lang,
        title,
        html! {
            main class="narrow" id="main" {
                p class="note" { (t.console) }
                (body)
            }
        },
    )
}

/// The signed-in layout: merchant, person, sign-out, the sections this role may open.
pub fn signed_in(
    session: &StaffSession,
    status: StatusCode,
    current: Section,
    title: &str,
    body: Markup,
) -> HttpResponse {
    let t = session.texts();
    let page = html! {
        a class="skip" href="#main" { (title) }
        header class="top" {
            div class="top-row" {
                p class="brand" id="merchant-name" { (session.merchant_name) }
                p class="who" {
                    (t.signed_in_as) " "
                    span id="signed-in-email" { (session.staff.email) }
                    " · " span id="signed-in-role" { (t.role(session.role)) }
                }
                form method="post" action="/console/sign-out" {
                    (session.csrf_field())
                    button type="submit" id="sign-out" { (t.sign_out) }
                }
            }
            nav class="nav" aria-label=(t.nav_label) {
                ul {
                    @for section in Section::NAV.iter().filter(|s| s.allows(session.role)) {
                        li {
                            a href=(section.path()) id=(format!("nav-{}", section.id()))
                              aria-current=[(*section == current).then_some("page")] {
                                (section.label(t))
                            }
                        }
                    }
                }
            }
        }
        main id="main" {
            h1 { (title) }
            (body)
        }
    };
    respond(status, session.lang, title, page)
}

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
