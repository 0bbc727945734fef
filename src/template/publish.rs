//! Publishing a template's new version: the row and its images replaced, the version
//! recorded with who made it, and every pass built from it changed in the same transaction
//! (new versions, and their deliveries). Every publish goes through [`update_as`].

use crate::db::Tenant;
use crate::models::template::{Template, TemplateChange};
use crate::models::template_version::{Author, NewVersion, Version};
use crate::pass_events::{self, Channels};
use crate::template::images::Images;
use crate::template::TemplateDocument;
use diesel::prelude::*;

/// A publish whose author is not known (kept for callers that have none).
pub fn update(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    document: &TemplateDocument,
    images: Option<&Images>,
) -> QueryResult<Result<Template, TemplateChange>> {
    update_as(
        conn,
        channels,
        tenant,
        id,
        document,
        images,
        Author::Nobody,
        None,
    )
}

/// Publishes `document` (and `images`, when given) as the template's next version;
/// `restored_from` names the earlier version a rollback republishes.
#[allow(clippy::too_many_arguments)]
pub fn update_as(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    document: &TemplateDocument,
    images: Option<&Images>,
    author: Author,
    restored_from: Option<i32>,
) -> QueryResult<Result<Template, TemplateChange>> {
    conn.transaction(|conn| {
        let updated = Template::update(conn, tenant, id, document, images)?;
        if let Ok(template) = &updated {
            let stored;
            let images = match images {
                Some(images) => images,
                None => {
                    stored = Template::images(conn, tenant, id)?;
                    &stored
                }
            };
            Version::record(
                conn,
                NewVersion {
                    merchant_id: tenant.merchant_id(),
                    template_id: id,
                    version: template.version,
                    document: &template.document,
                    images,
                    author,
                    restored_from,
                },
            )?;
            pass_events::template_passes_changed(conn, channels, tenant.merchant_id(), id)?;
        }
        Ok(updated)
    })
}

/// [`update`], unless the template is no longer at `version` (`None`): for a change made
/// from what was read of it, such as one image slot replaced among the others.
#[allow(clippy::too_many_arguments)]
pub fn update_from_version(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    version: i32,
    document: &TemplateDocument,
    images: &Images,
    author: Author,
) -> QueryResult<Option<Result<Template, TemplateChange>>> {
    conn.transaction(|conn| {
        if Template::lock(conn, tenant, id)?.version != version {
            return Ok(None);
        }
        update_as(
            conn,
            channels,
            tenant,
            id,
            document,
            Some(images),
            author,
            None,
        )
        .map(Some)
    })
}
