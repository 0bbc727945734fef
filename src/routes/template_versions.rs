//! A template's draft, its publishing, its version history and rollbacks (issue 14): the
//! console's designer and integrators use the same operations.

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::models::template_version::{self, Author, Reach, Version};
use crate::problem::{ApiError, FieldProblem};
use crate::routes::templates::{decode_images, ImageInfo};
use crate::template::images::Images;
use crate::template::validate::parse_document;
use crate::template::versions::{self, Published, Working};
use actix_web::{delete, get, post, put, web, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    /// The document as typed; it may not validate yet.
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    /// Base64 PNGs by file name; absent keeps the draft's images (or the published ones).
    pub images: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema)]
pub struct DraftView {
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    pub images: Vec<ImageInfo>,
    /// Whether a draft is saved (otherwise this is the published version).
    pub is_draft: bool,
    /// The published version the draft started from.
    pub based_on: i32,
    /// The template's published version now.
    pub current_version: i32,
    pub updated_at: Option<DateTime<Utc>>,
    /// What would stop a publish, each with its JSON pointer into the template.
    pub problems: Vec<FieldProblem>,
}

#[derive(Serialize, ToSchema)]
pub struct PublishedView {
    pub version: i32,
    pub restored_from: Option<i32>,
    /// Whom the publish reaches; their pushes and patches are queued.
    pub reach: Reach,
}

#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub version: i32,
    pub published_at: DateTime<Utc>,
    /// `staff`, `api_key` or null.
    pub published_by: Option<String>,
    /// The console user or API key that published it.
    pub published_by_id: Option<uuid::Uuid>,
    pub restored_from: Option<i32>,
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    /// File name -> SHA-256 (hex) of its bytes.
    pub images: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<VersionView>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReachView {
    #[serde(flatten)]
    pub reach: Reach,
    /// Deliveries still queued for the template's passes, per channel (`apple`, `google`).
    pub queued: BTreeMap<String, i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct VersionQuery {
    /// From a previous answer's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
}

fn image_infos(images: &Images) -> Vec<ImageInfo> {
    images
        .iter()
        .map(|(file, data)| ImageInfo {
            file: file.clone(),
            bytes: data.len(),
            sha1: hex::encode(Sha1::digest(data)),
        })
        .collect()
}

fn draft_view(working: Working, problems: Vec<FieldProblem>) -> DraftView {
    DraftView {
        images: image_infos(&working.images),
        is_draft: working.draft.is_some(),
        updated_at: working.draft.as_ref().map(|d| d.updated_at),
        template: working.document,
        based_on: working.based_on,
        current_version: working.current,
        problems,
    }
}

fn published_view(published: Published, restored_from: Option<i32>) -> PublishedView {
    PublishedView {
        version: published.template.version,
        restored_from,
        reach: published.reach,
    }
}

/// The validator's problems of a document with these images, pointers into the template.
fn problems_of(document: &serde_json::Value, images: &Images) -> Vec<FieldProblem> {
    match parse_document(document, images) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

/// The draft (or, without one, the published version) with what would stop its publish.
#[utoipa::path(operation_id = "getTemplateDraft", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 200, body = DraftView)))]
#[get("/templates/{id}/draft")]
pub async fn get_draft(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let working = db::run(&state.pool, move |conn| {
        Ok(versions::working(conn, &tenant, &id)?)
    })
    .await?;
    let (working, problems) = state
        .image_decodes
        .run(move || {
            let problems = problems_of(&working.document, &working.images);
            (working, problems)
        })
        .await?;
    Ok(HttpResponse::Ok().json(draft_view(working, problems)))
}

/// Save the draft as typed: no card changes. Answers with what would stop its publish.
#[utoipa::path(operation_id = "saveTemplateDraft", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), request_body = DraftInput, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody,
    (status = 200, body = DraftView)))]
#[put("/templates/{id}/draft")]
pub async fn save_draft(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<DraftInput>,
) -> Result<HttpResponse, ApiError> {
    let DraftInput { template, images } = body.into_inner();
    if !template.is_object() {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/template",
            "a template is a JSON object",
        )]));
    }
    let decoded = match images {
        Some(encoded) => {
            let (images, problems) = state
                .image_decodes
                .run(move || {
                    let mut problems = Vec::new();
                    let images = decode_images(&encoded, &mut problems);
                    (images, problems)
                })
                .await?;
            if !problems.is_empty() {
                return Err(ApiError::invalid_fields(problems));
            }
            Some(images)
        }
        None => None,
    };
    let tenant = caller.0.tenant;
    let author = Author::ApiKey(caller.0.key_id);
    let id = id.into_inner();
    let working = db::run(&state.pool, move |conn| {
        Ok(versions::save_draft(
            conn,
            &tenant,
            &id,
            &template,
            decoded.as_ref(),
            author,
        )?)
    })
    .await?;
    let (working, problems) = state
        .image_decodes
        .run(move || {
            let problems = problems_of(&working.document, &working.images);
            (working, problems)
        })
        .await?;
    Ok(HttpResponse::Ok().json(draft_view(working, problems)))
}

/// Discard the draft.
#[utoipa::path(operation_id = "discardTemplateDraft", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 204, description = "Discarded (or there was none)")))]
#[delete("/templates/{id}/draft")]
pub async fn discard_draft(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    db::run(&state.pool, move |conn| {
        crate::models::Template::find(conn, &tenant, &id)?;
        Ok(template_version::Draft::discard(conn, &tenant, &id)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Publish the draft as the next version: every card built from the template changes.
/// Refused (409) when another version was published after the draft was started.
#[utoipa::path(operation_id = "publishTemplateDraft", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    crate::openapi::PublishRefusals, (status = 200, body = PublishedView)))]
#[post("/templates/{id}/publish")]
pub async fn publish(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let author = Author::ApiKey(caller.0.key_id);
    let channels = state.channels;
    let id = id.into_inner();
    let template_id = id.clone();
    let published = db::run(&state.pool, move |conn| {
        Ok(versions::publish_draft(
            conn, channels, &tenant, &id, author,
        )?)
    })
    .await??;
    state
        .pass_cache
        .evict_template(tenant.merchant_id(), &template_id);
    Ok(HttpResponse::Ok().json(published_view(published, None)))
}

/// The versions published, newest first.
#[utoipa::path(operation_id = "listTemplateVersions", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path), VersionQuery), responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::Query,
    (status = 200, body = VersionList)))]
#[get("/templates/{id}/versions")]
pub async fn list_versions(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(20);
    let mut problems = Vec::new();
    if !(1..=100).contains(&limit) {
        problems.push(FieldProblem::new("/limit", "from 1 to 100"));
    }
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => match decode_cursor(cursor) {
            Some(v) => Some(v),
            None => {
                problems.push(FieldProblem::new("/cursor", "not a cursor this list gave"));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let mut found = db::run(&state.pool, move |conn| {
        crate::models::Template::find(conn, &tenant, &id)?;
        Ok(Version::list(conn, &tenant, &id, before, limit + 1)?)
    })
    .await?;
    let next_cursor = if found.len() as i64 > limit {
        found.truncate(limit as usize);
        found.last().map(|v| encode_cursor(v.version))
    } else {
        None
    };
    let versions = found
        .into_iter()
        .map(|v| {
            let (by, by_id) = match v.author {
                Author::Staff(id) => (Some("staff".to_string()), Some(id)),
                Author::ApiKey(id) => (Some("api_key".to_string()), Some(id)),
                Author::Nobody => (None, None),
            };
            VersionView {
                version: v.version,
                published_at: v.published_at,
                published_by: by,
                published_by_id: by_id,
                restored_from: v.restored_from,
                template: v.document,
                images: v.images,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(VersionList {
        versions,
        next_cursor,
    }))
}

/// Publish an earlier version again, as the next version (a rollback).
#[utoipa::path(operation_id = "restoreTemplateVersion", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path), ("version" = i32, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    crate::openapi::RestoreRefusals, (status = 200, body = PublishedView)))]
#[post("/templates/{id}/versions/{version}/restore")]
pub async fn restore(
    caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, version) = path.into_inner();
    let tenant = caller.0.tenant;
    let author = Author::ApiKey(caller.0.key_id);
    let channels = state.channels;
    let template_id = id.clone();
    let published = db::run(&state.pool, move |conn| {
        Ok(versions::restore(
            conn, channels, &tenant, &id, version, author,
        )?)
    })
    .await??;
    state
        .pass_cache
        .evict_template(tenant.merchant_id(), &template_id);
    Ok(HttpResponse::Ok().json(published_view(published, Some(version))))
}

/// Whom a publish of the template reaches (its passes, registered Apple devices, saved
/// Google objects) and the deliveries still queued: a publish's progress.
#[utoipa::path(operation_id = "getTemplateReach", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 200, body = ReachView)))]
#[get("/templates/{id}/reach")]
pub async fn reach(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let view = db::run(&state.pool, move |conn| {
        crate::models::Template::find(conn, &tenant, &id)?;
        Ok(ReachView {
            reach: template_version::reach(conn, &tenant, &id)?,
            queued: template_version::queued(conn, &tenant, &id)?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

fn encode_cursor(version: i32) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v{version}"))
}

fn decode_cursor(cursor: &str) -> Option<i32> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix('v')?
        .parse()
        .ok()
}
