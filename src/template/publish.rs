//! Publishing a template's new version: the row and its images replaced, and every pass
//! built from it changed in the same transaction (new versions, and their deliveries).

use crate::db::Tenant;
use crate::models::template::{Template, TemplateChange};
use crate::pass_events::{self, Channels};
use crate::template::images::Images;
use crate::template::TemplateDocument;
use diesel::prelude::*;

pub fn update(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    document: &TemplateDocument,
    images: Option<&Images>,
) -> QueryResult<Result<Template, TemplateChange>> {
    conn.transaction(|conn| {
        let updated = Template::update(conn, tenant, id, document, images)?;
        if updated.is_ok() {
            pass_events::template_passes_changed(conn, channels, tenant.merchant_id(), id)?;
        }
        Ok(updated)
    })
}
