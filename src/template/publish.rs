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

/// [`update`], unless the template is no longer at `version` (`None`): for a change made
/// from what was read of it, such as one image slot replaced among the others.
pub fn update_from_version(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    version: i32,
    document: &TemplateDocument,
    images: &Images,
) -> QueryResult<Option<Result<Template, TemplateChange>>> {
    conn.transaction(|conn| {
        if Template::lock(conn, tenant, id)?.version != version {
            return Ok(None);
        }
        update(conn, channels, tenant, id, document, Some(images)).map(Some)
    })
}
