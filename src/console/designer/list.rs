//! `/console/templates`: the merchant's templates (both kinds), their version and whether a
//! draft waits, each linking to its designer.

use crate::app::AppState;
use crate::console::error::PageError;
use crate::console::i18n::designer_texts;
use crate::console::session::{Section, StaffSession};
use crate::db;
use crate::domain::TemplateKind;
use crate::models::template_version::Draft;
use crate::models::Template;
use actix_web::{web, HttpResponse};
use maud::html;

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let d = designer_texts(session.lang);
    let tenant = session.tenant;
    let rows = db::run(&state.pool, move |conn| {
        let mut rows = Vec::new();
        for t in Template::list(conn, &tenant)? {
            let draft = Draft::find(conn, &tenant, &t.id)?;
            rows.push((t, draft));
        }
        Ok(rows)
    })
    .await
    .map_err(|e| session.failed(e))?;
    let body = html! {
        section class="panel" aria-labelledby="templates-title" {
            h2 id="templates-title" { (d.templates_list) }
            div class="table-wrap" {
                table class="cards" id="templates" {
                    thead { tr {
                        th scope="col" { (d.name) }
                        th scope="col" { (d.kind) }
                        th scope="col" { (d.version) }
                        th scope="col" { (d.draft) }
                    } }
                    tbody {
                        @for (t, draft) in &rows {
                            tr data-template=(t.id) {
                                td data-label=(d.name) {
                                    a href=(format!("/console/templates/{}", t.id)) id=(format!("open-{}", t.id)) {
                                        (t.document.get("name").and_then(|n| n.as_str()).unwrap_or(&t.id))
                                    }
                                    " " code { (t.id) }
                                }
                                td data-label=(d.kind) {
                                    (match t.kind { TemplateKind::Loyalty => d.kind_loyalty, TemplateKind::GiftCard => d.kind_gift_card })
                                }
                                td data-label=(d.version) { (t.version) }
                                td data-label=(d.draft) {
                                    @match draft {
                                        Some(dr) => { (d.draft_waiting) " (" (dr.updated_at.format("%Y-%m-%d %H:%M")) ")" },
                                        None => (d.no_draft_short),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(session.page(Section::Templates, d.templates_title, body))
}
