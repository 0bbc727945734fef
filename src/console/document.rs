//! The console's HTML document: one shape, and the headers every page carries (a strict
//! Content-Security-Policy: nothing inline, nothing from another host). The signed-in
//! layout is in `layout`, refusals in `error`.

use super::i18n::texts;
use crate::domain::Language;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

/// What every console page sends. Scripts, styles and images only from this origin (the
/// hashed files under `/console/assets/`), never inline; forms only to this origin; never
/// framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// What a page adds to the document's head: its own stylesheets and scripts (hashed
/// assets), a nonce'd `<style>` of values computed on the server (the designer's colours),
/// `data:` images (a preview of images not stored yet).
#[derive(Default)]
pub struct Head {
    pub stylesheets: Vec<String>,
    pub scripts: Vec<String>,
    /// (nonce, CSS): allowed by the CSP for this response only.
    pub style: Option<(String, String)>,
    pub data_images: bool,
}

impl Head {
    fn csp(&self) -> String {
        if self.style.is_none() && !self.data_images {
            return CSP.to_string();
        }
        let style = match &self.style {
            Some((nonce, _)) => format!("style-src 'self' 'nonce-{nonce}'"),
            None => "style-src 'self'".into(),
        };
        let img = if self.data_images {
            "img-src 'self' data:"
        } else {
            "img-src 'self'"
        };
        CSP.replace("style-src 'self'", &style)
            .replace("img-src 'self'", img)
    }
}

/// A whole HTML answer with the console's headers.
pub fn respond(status: StatusCode, lang: Language, title: &str, body: Markup) -> HttpResponse {
    respond_with(status, lang, title, &Head::default(), body)
}

/// A whole HTML answer with a page's own additions to the head.
pub fn respond_with(
    status: StatusCode,
    lang: Language,
    title: &str,
    head: &Head,
    body: Markup,
) -> HttpResponse {
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
                @for sheet in &head.stylesheets {
                    link rel="stylesheet" href=(sheet);
                }
                @if let Some((nonce, css)) = &head.style {
                    style nonce=(nonce) { (maud::PreEscaped(css)) }
                }
                @for script in &head.scripts {
                    script src=(script) defer {}
                }
            }
            body { (body) }
        }
    };
    with_headers(HttpResponse::build(status), head.csp()).body(document.into_string())
}

fn with_headers(
    mut builder: actix_web::HttpResponseBuilder,
    csp: String,
) -> actix_web::HttpResponseBuilder {
    builder
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
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
