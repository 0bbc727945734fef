//! The home page: a placeholder dashboard with the merchant and the signed-in person (the
//! dashboard's figures come with a later step).

use super::error::PageError;
use super::session::{Section, StaffSession};
use actix_web::HttpResponse;
use maud::html;

pub async fn page(session: StaffSession) -> Result<HttpResponse, PageError> {
    session.require(Section::Home)?;
    let t = session.texts();
    Ok(session.page(
        Section::Home,
        t.home_title,
        html! {
            section class="panel" id="dashboard" {
                p id="welcome" { (t.welcome) ", " (session.staff.email) }
                p class="note" { (t.dashboard_soon) }
            }
        },
    ))
}
