//! The merchant console under `/console`: server-rendered pages for staff who sign in with
//! an email and a password (`crate::staff`). Thin, like `routes/`: a handler takes a
//! [`StaffSession`] (the signed-in person, their role and `Tenant`), checks its
//! [`Section`] with one call, calls a domain function and renders inside the shared layout
//! with one call:
//!
//! ```ignore
//! async fn page(session: StaffSession) -> Result<HttpResponse, PageError> {
//!     session.require(Section::Home)?;
//!     Ok(session.page(Section::Home, "Title", html! { p { "…" } }))
//! }
//! ```
//!
//! Every POST under `/console` is checked for its CSRF token before any handler runs
//! ([`csrf`]); forms carry it with [`StaffSession::csrf_field`]. Pages send a strict
//! Content-Security-Policy, load only `/console/assets/*` (names carry a content hash), work
//! without JavaScript and lay out from 320 px up. Words come from [`i18n`] in English and
//! Russian, in the staff member's own language (switchable on the account page).

pub mod account;
pub mod analytics_page;
pub mod api_keys_page;
pub mod assets;
pub mod audit_page;
pub mod automation_form;
pub mod automations_page;
pub mod campaign_form;
pub mod campaigns_page;
pub mod charts;
pub mod csrf;
pub mod designer;
pub mod document;
pub mod error;
pub mod exports_page;
pub mod format;
pub mod gift_cards_page;
pub mod home;
pub mod i18n;
pub mod imports_page;
pub mod insights_page;
pub mod invitation;
pub mod layout;
pub mod members_page;
pub mod paging;
pub mod programs_page;
pub mod segments_page;
pub mod session;
pub mod sign_in;
pub mod staff_page;
pub mod webhooks_page;

pub use error::PageError;
pub use session::{Section, StaffSession};

use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest};

/// The session cookie (HttpOnly, SameSite=Lax, Secure on https, path `/console`).
pub const SESSION_COOKIE: &str = "pf_console";

/// Every console route; `startup` mounts this.
pub fn scope() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("/console")
        .wrap(from_fn(csrf::guard))
        .route("/", web::get().to(sign_in::front))
        .route("", web::get().to(sign_in::to_front))
        .route("/sign-in", web::post().to(sign_in::submit))
        .route("/sign-out", web::post().to(sign_in::sign_out))
        .route("/staff", web::get().to(staff_page::show))
        .route("/staff/invitations", web::post().to(staff_page::invite))
        .route(
            "/staff/invitations/{id}/revoke",
            web::post().to(staff_page::revoke),
        )
        .route("/staff/{id}/role", web::post().to(staff_page::change_role))
        .route("/staff/{id}/remove", web::post().to(staff_page::remove))
        .route("/invitations/{token}", web::get().to(invitation::show))
        .route("/invitations/{token}", web::post().to(invitation::accept))
        .route("/account", web::get().to(account::show))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route(
            "/account/language",
            web::post().to(account::change_language),
        )
        .route(
            "/account/sign-out-everywhere",
            web::post().to(account::sign_out_everywhere),
        )
        .route("/audit", web::get().to(audit_page::show))
        .route("/templates", web::get().to(designer::list::show))
        .service(
            web::resource("/templates/{id}")
                .app_data(designer_form_limit())
                .route(web::get().to(designer::handlers::show))
                .route(web::post().to(designer::handlers::save)),
        )
        .service(
            web::resource("/templates/{id}/preview")
                .app_data(designer_form_limit())
                .route(web::post().to(designer::handlers::live_preview)),
        )
        .route(
            "/templates/{id}/images/{slot}",
            web::post().to(designer::handlers::upload),
        )
        .route(
            "/templates/{id}/test-pass",
            web::post().to(designer::handlers::test_link),
        )
        .route(
            "/templates/{id}/publish",
            web::post().to(designer::handlers::publish),
        )
        .route(
            "/templates/{id}/discard",
            web::post().to(designer::handlers::discard),
        )
        .route(
            "/templates/{id}/versions/{version}/restore",
            web::post().to(designer::handlers::rollback),
        )
        .route(
            "/templates/{id}/progress",
            web::get().to(designer::handlers::progress),
        )
        .route(
            "/templates/{id}/progress.json",
            web::get().to(designer::handlers::progress_json),
        )
        .route(
            "/test-pass/{token}",
            web::get().to(designer::test_pass::download),
        )
        .route("/programs", web::get().to(programs_page::list))
        .route("/programs/{id}", web::get().to(programs_page::show))
        .route("/programs/{id}", web::post().to(programs_page::change))
        .route("/insights", web::get().to(insights_page::list))
        .route(
            "/programs/{id}/segments",
            web::get().to(segments_page::show),
        )
        .route(
            "/programs/{id}/segments.csv",
            web::get().to(segments_page::download),
        )
        .route(
            "/programs/{id}/campaigns",
            web::get().to(campaigns_page::list),
        )
        .route(
            "/programs/{id}/campaigns",
            web::post().to(campaign_form::create),
        )
        .route(
            "/programs/{id}/campaigns/new",
            web::get().to(campaign_form::new),
        )
        .route("/campaigns/{id}", web::get().to(campaigns_page::show))
        .route(
            "/campaigns/{id}/cancel",
            web::post().to(campaigns_page::cancel),
        )
        .route(
            "/programs/{id}/automations",
            web::get().to(automations_page::list),
        )
        .route(
            "/programs/{id}/automations",
            web::post().to(automation_form::create),
        )
        .route(
            "/programs/{id}/automations/new",
            web::get().to(automation_form::new),
        )
        .route("/automations/{id}", web::get().to(automations_page::show))
        .route(
            "/automations/{id}/pause",
            web::post().to(automations_page::pause),
        )
        .route(
            "/automations/{id}/resume",
            web::post().to(automations_page::resume),
        )
        .route(
            "/programs/{id}/analytics",
            web::get().to(analytics_page::show),
        )
        .route(
            "/programs/{id}/analytics.csv",
            web::get().to(analytics_page::download),
        )
        .route(
            "/programs/{id}/cohorts.csv",
            web::get().to(analytics_page::download_cohorts),
        )
        .route("/imports", web::get().to(imports_page::list))
        .route("/imports", web::post().to(imports_page::start))
        .route("/imports/{id}", web::get().to(imports_page::show))
        .route("/gift-cards", web::get().to(gift_cards_page::find))
        .route("/gift-cards.csv", web::get().to(exports_page::gift_cards))
        .route("/gift-cards/{gan}", web::get().to(gift_cards_page::show))
        .route(
            "/gift-cards/{gan}/deactivate",
            web::get().to(gift_cards_page::confirm),
        )
        .route(
            "/gift-cards/{gan}/deactivate",
            web::post().to(gift_cards_page::deactivate),
        )
        .route("/api-keys", web::get().to(api_keys_page::list))
        .route("/api-keys", web::post().to(api_keys_page::create))
        .route(
            "/api-keys/{id}/revoke",
            web::post().to(api_keys_page::revoke),
        )
        .route("/webhooks", web::get().to(webhooks_page::list))
        .route("/webhooks", web::post().to(webhooks_page::create))
        .route("/webhooks/{id}", web::get().to(webhooks_page::show))
        .route(
            "/webhooks/{id}/state",
            web::post().to(webhooks_page::change_state),
        )
        .route(
            "/webhooks/{id}/rotate",
            web::post().to(webhooks_page::rotate),
        )
        .route(
            "/webhooks/{id}/delete",
            web::post().to(webhooks_page::remove),
        )
        .route(
            "/webhooks/{id}/messages/{message}/resend",
            web::post().to(webhooks_page::resend),
        )
        .route("/members", web::get().to(members_page::search))
        .route("/members.csv", web::get().to(exports_page::members))
        .route("/members/{id}/erase", web::post().to(members_page::erase))
        .route("/members/{id}", web::get().to(members_page::show))
        .route("/members/{id}/points", web::post().to(members_page::adjust))
        .route("/assets/{file}", web::get().to(assets::serve))
        .default_service(web::to(error::not_found))
}

/// The designer's form carries a whole template (long back texts in every language): more
/// than the 16 KiB a form gets by default, within the body limit the CSRF check reads.
fn designer_form_limit() -> web::FormConfig {
    web::FormConfig::default().limit(1024 * 1024)
}

/// The language of a page shown before anyone signs in: the browser's choice.
pub fn browser_language(req: &HttpRequest) -> crate::domain::Language {
    use crate::public_pages::i18n::Lang;
    let header = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    match Lang::from_accept_language(header) {
        Lang::En => crate::domain::Language::En,
        Lang::Ru => crate::domain::Language::Ru,
    }
}

/// Whether cookies must be `Secure`: the public URL is https.
pub fn secure_cookies(state: &crate::app::AppState) -> bool {
    state.settings.public_url.starts_with("https://")
}
