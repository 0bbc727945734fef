//! Drafts and versions of a template (issue 14): a draft is saved as the designer types and
//! changes no card; publishing it makes the template's next version through
//! [`publish::update_as`]; a rollback publishes an earlier version again. Publishing over a
//! version the draft did not start from is refused, so two designers do not silently undo
//! each other.

use super::images::Images;
use super::publish;
use super::validate::parse_document;
use crate::db::Tenant;
use crate::models::template::{Template, TemplateChange};
use crate::models::template_version::{self, Author, Draft, Version};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use diesel::prelude::*;

/// What the designer works on: the draft when there is one, else the published version.
pub struct Working {
    pub document: serde_json::Value,
    pub images: Images,
    /// The published version the work started from.
    pub based_on: i32,
    /// The template's published version now.
    pub current: i32,
    pub draft: Option<Draft>,
}

pub fn working(conn: &mut PgConnection, tenant: &Tenant, id: &str) -> QueryResult<Working> {
    let template = Template::find(conn, tenant, id)?;
    match Draft::find(conn, tenant, id)? {
        Some(draft) => Ok(Working {
            images: template_version::load_blobs(conn, tenant, &draft.images)?,
            document: draft.document.clone(),
            based_on: draft.based_on,
            current: template.version,
            draft: Some(draft),
        }),
        None => Ok(Working {
            images: Template::images(conn, tenant, id)?,
            document: template.document,
            based_on: template.version,
            current: template.version,
            draft: None,
        }),
    }
}

/// Saves a draft as typed (it may not validate yet). `images` absent keeps the draft's
/// images, or the published ones. A draft keeps the version it was started from.
pub fn save_draft(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: &str,
    document: &serde_json::Value,
    images: Option<&Images>,
    author: Author,
) -> QueryResult<Working> {
    conn.transaction(|conn| {
        let now = working(conn, tenant, id)?;
        let images = images.unwrap_or(&now.images);
        let draft = Draft::save(conn, tenant, id, document, images, now.based_on, author)?;
        Ok(Working {
            document: document.clone(),
            images: images.clone(),
            based_on: now.based_on,
            current: now.current,
            draft: Some(draft),
        })
    })
}

/// Why a publish was refused.
#[derive(Debug)]
pub enum Refusal {
    NoDraft,
    /// Someone published version `current` after this draft was started from `based_on`.
    Stale {
        based_on: i32,
        current: i32,
    },
    Invalid(Vec<FieldProblem>),
    KindChanged,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::NoDraft => ApiError::new(ProblemKind::Conflict, "there is no draft to publish"),
            Refusal::Stale { based_on, current } => ApiError::new(
                ProblemKind::Conflict,
                format!(
                    "the draft was started from version {based_on}, but version {current} has \
                     been published since; discard the draft or start again from the current version"
                ),
            )
            .with_extra("current_version", current.into()),
            Refusal::Invalid(problems) => ApiError::invalid_fields(problems),
            Refusal::KindChanged => ApiError::invalid_fields(vec![FieldProblem::new(
                "/kind",
                "a template's kind cannot change: cards already use it",
            )]),
        }
    }
}

/// A version made by a publish, and whom it reaches.
pub struct Published {
    pub template: Template,
    pub reach: template_version::Reach,
}

/// Publishes the draft as the next version and discards it.
pub fn publish_draft(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    author: Author,
) -> QueryResult<Result<Published, Refusal>> {
    conn.transaction(|conn| {
        // The template row's lock orders publishes: the staleness check cannot race.
        let current: i32 = crate::schema::templates::table
            .find((tenant.merchant_id(), id))
            .select(crate::schema::templates::version)
            .for_update()
            .first(conn)?;
        let Some(draft) = Draft::find(conn, tenant, id)? else {
            return Ok(Err(Refusal::NoDraft));
        };
        if draft.based_on != current {
            return Ok(Err(Refusal::Stale {
                based_on: draft.based_on,
                current,
            }));
        }
        let images = template_version::load_blobs(conn, tenant, &draft.images)?;
        let document = match parse_document(&draft.document, &images) {
            Ok(document) => document,
            Err(problems) => return Ok(Err(Refusal::Invalid(problems))),
        };
        let published = publish::update_as(
            conn,
            channels,
            tenant,
            id,
            &document,
            Some(&images),
            author,
            None,
        )?;
        let template = match published {
            Ok(template) => template,
            Err(TemplateChange::KindChanged) => return Ok(Err(Refusal::KindChanged)),
            Err(TemplateChange::Exists) => return Err(diesel::result::Error::RollbackTransaction),
        };
        Draft::discard(conn, tenant, id)?;
        let reach = template_version::reach(conn, tenant, id)?;
        Ok(Ok(Published { template, reach }))
    })
}

/// Publishes an earlier version again, as the next version (a rollback). A draft, if any,
/// is left as it is.
pub fn restore(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    id: &str,
    version: i32,
    author: Author,
) -> QueryResult<Result<Published, Refusal>> {
    conn.transaction(|conn| {
        let earlier = Version::find(conn, tenant, id, version)?;
        let images = template_version::load_blobs(conn, tenant, &earlier.images)?;
        // An old version is re-checked: the rules may have grown stricter since.
        let document = match parse_document(&earlier.document, &images) {
            Ok(document) => document,
            Err(problems) => return Ok(Err(Refusal::Invalid(problems))),
        };
        let template = match publish::update_as(
            conn,
            channels,
            tenant,
            id,
            &document,
            Some(&images),
            author,
            Some(version),
        )? {
            Ok(template) => template,
            Err(TemplateChange::KindChanged) => return Ok(Err(Refusal::KindChanged)),
            Err(TemplateChange::Exists) => return Err(diesel::result::Error::RollbackTransaction),
        };
        let reach = template_version::reach(conn, tenant, id)?;
        Ok(Ok(Published { template, reach }))
    })
}
