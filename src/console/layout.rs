//! The signed-in layout: the merchant, the person, sign-out, and the navigation filtered
//! by role ([`Section`]), around a page's own content. Handlers call
//! [`StaffSession::page`].

use super::document::{respond_with, Head};
use super::session::{Section, StaffSession};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup};

impl StaffSession {
    /// The page inside the console's layout (200).
    pub fn page(&self, section: Section, title: &str, body: Markup) -> HttpResponse {
        signed_in(self, StatusCode::OK, section, title, &Head::default(), body)
    }

    /// The page with another status (a form sent back with its problems: 422).
    pub fn page_with_status(
        &self,
        status: StatusCode,
        section: Section,
        title: &str,
        body: Markup,
    ) -> HttpResponse {
        signed_in(self, status, section, title, &Head::default(), body)
    }

    /// The page with additions to its head (scripts, a nonce'd style).
    pub fn page_with_head(
        &self,
        status: StatusCode,
        section: Section,
        title: &str,
        head: &Head,
        body: Markup,
    ) -> HttpResponse {
        signed_in(self, status, section, title, head, body)
    }
}

/// The signed-in layout: merchant, person, sign-out, the sections this role may open.
fn signed_in(
    session: &StaffSession,
    status: StatusCode,
    current: Section,
    title: &str,
    head: &Head,
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
    respond_with(status, session.lang, title, head, page)
}
