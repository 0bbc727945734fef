use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::{TemplateId, TemplateKind};
use crate::models::template::{Template, TemplateChange};
use crate::models::template_version::Author;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::template::images::{pointer_token, Images};
use crate::template::publish;
use crate::template::validate::parse_document;
use crate::template::TemplateDocument;
use actix_web::{get, post, put, web, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A template with its images as base64-encoded PNGs, keyed by file name
/// (`icon.png`, `icon@2x.png`, `logo.png`, `strip@3x.png`, ..., and Google's
/// `google_logo.png`, `google_hero.png`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// With POST: the new template's id (lowercase letters, digits, dashes); generated when absent.
    pub id: Option<String>,
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    /// Required with POST; with PUT, absent means: keep the current images.
    pub images: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema)]
pub struct ImageInfo {
    pub file: String,
    pub bytes: usize,
    pub sha1: String,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub id: String,
    #[schema(value_type = String)]
    pub kind: TemplateKind,
    pub version: i32,
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    pub images: Vec<ImageInfo>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateSummary {
    pub id: String,
    #[schema(value_type = String)]
    pub kind: TemplateKind,
    pub name: String,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateSummary>,
}

fn view(t: Template, images: &Images) -> TemplateView {
    TemplateView {
        id: t.id,
        kind: t.kind,
        version: t.version,
        template: t.document,
        images: images
            .iter()
            .map(|(file, data)| ImageInfo {
                file: file.clone(),
                bytes: data.len(),
                sha1: hex::encode(Sha1::digest(data)),
            })
            .collect(),
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

/// Decodes every image it can; the ones that are not base64 are reported, the rest are
/// still checked, so one answer names every problem.
pub(crate) fn decode_images(
    encoded: &BTreeMap<String, String>,
    problems: &mut Vec<FieldProblem>,
) -> Images {
    let mut images = Images::new();
    for (name, b64) in encoded {
        match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(bytes) => {
                images.insert(name.clone(), bytes);
            }
            Err(_) => problems.push(FieldProblem::new(
                format!("/images/{}", pointer_token(name)),
                "not valid base64",
            )),
        }
    }
    images
}

/// A template's images as they arrive: base64 text of the request, or the stored ones.
enum Upload {
    Encoded(BTreeMap<String, String>),
    Stored(Images),
}

/// Validates the document with the images it will have; every problem in one answer.
/// Decoding base64 and checking PNGs is the heavy part of an upload: it runs in turns, off
/// the actix workers; the images come back with the answer.
async fn validated(
    state: &AppState,
    raw: serde_json::Value,
    upload: Upload,
    mut problems: Vec<FieldProblem>,
) -> Result<(TemplateDocument, Images), ApiError> {
    let (result, images, problems) = state
        .image_decodes
        .run(move || {
            let images = match upload {
                // The base64 text is dropped as soon as it is decoded.
                Upload::Encoded(encoded) => decode_images(&encoded, &mut problems),
                Upload::Stored(images) => images,
            };
            (parse_document(&raw, &images), images, problems)
        })
        .await?;
    validated_parts(result, problems).map(|document| (document, images))
}

fn validated_parts(
    result: Result<TemplateDocument, Vec<FieldProblem>>,
    decode_problems: Vec<FieldProblem>,
) -> Result<TemplateDocument, ApiError> {
    let mut problems: Vec<FieldProblem> = decode_problems;
    let document = match result {
        Ok(d) => Some(d),
        Err(p) => {
            problems.extend(p.into_iter().map(|mut p| {
                if !p.pointer.starts_with("/images") {
                    p.pointer = format!("/template{}", p.pointer);
                }
                p
            }));
            None
        }
    };
    match document {
        Some(d) if problems.is_empty() => Ok(d),
        _ => Err(ApiError::invalid_fields(problems)),
    }
}

/// List the merchant's templates.
#[utoipa::path(operation_id = "listTemplates", tag = "templates", security(("bearer" = ["admin"])), responses(crate::openapi::AdminKey, (status = 200, body = TemplateList)))]
#[get("/templates")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let templates = db::run(&state.pool, move |conn| Ok(Template::list(conn, &tenant)?)).await?;
    Ok(HttpResponse::Ok().json(TemplateList {
        templates: templates
            .into_iter()
            .map(|t| TemplateSummary {
                name: t
                    .document
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
                id: t.id,
                kind: t.kind,
                version: t.version,
                updated_at: t.updated_at,
            })
            .collect(),
    }))
}

/// One template with the list of its images.
#[utoipa::path(operation_id = "getTemplate", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    (status = 200, body = TemplateView)))]
#[get("/templates/{id}")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let (template, images) = db::run(&state.pool, move |conn| {
        let t = Template::find(conn, &tenant, &id)?;
        let images = Template::images(conn, &tenant, &id)?;
        Ok((t, images))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view(template, &images)))
}

/// Create a template. Problems are answered all at once, each with its JSON pointer.
#[utoipa::path(operation_id = "createTemplate", tag = "templates", security(("bearer" = ["admin"])), request_body = TemplateInput, responses(crate::openapi::AdminKey, crate::openapi::JsonBody,
    crate::openapi::TemplateExists, (status = 201, body = TemplateView)))]
#[post("/templates")]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<TemplateInput>,
) -> Result<HttpResponse, ApiError> {
    let mut input = body.into_inner();
    let mut problems = Vec::new();
    let id = match input.id.as_deref() {
        Some(id) => TemplateId::parse(id)
            .map_err(|e| problems.push(FieldProblem::new("/id", e)))
            .ok(),
        None => TemplateId::parse(&format!(
            "tpl-{}",
            crate::domain::tokens::secret(10).to_lowercase()
        ))
        .ok(),
    };
    let upload = Upload::Encoded(input.images.take().unwrap_or_default());
    let (document, images) = validated(&state, input.template, upload, problems).await?;
    let id = id.ok_or_else(|| ApiError::internal("template id missing"))?;
    let tenant = caller.0.tenant;
    let author = Author::ApiKey(caller.0.key_id);
    let saved = db::run(&state.pool, move |conn| {
        let created = Template::create(conn, &tenant, &id, &document, &images, author)?;
        Ok(created.map(|t| (t, images)))
    })
    .await?;
    match saved {
        Ok((t, images)) => Ok(HttpResponse::Created().json(view(t, &images))),
        Err(_) => Err(ApiError::new(
            ProblemKind::Conflict,
            "a template with this id exists; change it with PUT",
        )),
    }
}

/// Replace a template (its images too when given). Passes built from it show the change
/// the next time they are fetched.
#[utoipa::path(operation_id = "updateTemplate", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), request_body = TemplateInput, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody,
    (status = 200, body = TemplateView)))]
#[put("/templates/{id}")]
pub async fn update(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<TemplateInput>,
) -> Result<HttpResponse, ApiError> {
    let mut input = body.into_inner();
    let id = id.into_inner();
    let tenant = caller.0.tenant;
    let mut problems = Vec::new();
    if input.id.as_deref().is_some_and(|body_id| body_id != id) {
        problems.push(FieldProblem::new("/id", "differs from the id in the path"));
    }
    let replaced = input.images.is_some();
    let upload = match input.images.take() {
        Some(encoded) => Upload::Encoded(encoded),
        None => {
            let lookup_id = id.clone();
            Upload::Stored(
                db::run(&state.pool, move |conn| {
                    Template::find(conn, &tenant, &lookup_id)?;
                    Ok(Template::images(conn, &tenant, &lookup_id)?)
                })
                .await?,
            )
        }
    };
    let (document, images) = validated(&state, input.template, upload, problems).await?;
    let channels = state.channels;
    let author = Author::ApiKey(caller.0.key_id);
    let (saved, images) = db::run(&state.pool, move |conn| {
        let images_given = replaced.then_some(&images);
        let saved = publish::update_as(
            conn,
            channels,
            &tenant,
            &id,
            &document,
            images_given,
            author,
            None,
        )?;
        Ok((saved, images))
    })
    .await?;
    match saved {
        Ok(t) => {
            // Other processes hear of it through NOTIFY; this one must not wait for that.
            state.pass_cache.evict_template(tenant.merchant_id(), &t.id);
            Ok(HttpResponse::Ok().json(view(t, &images)))
        }
        Err(TemplateChange::KindChanged) => Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/template/kind",
            "a template's kind cannot change: cards already use it",
        )])),
        Err(TemplateChange::Exists) => Err(ApiError::internal("unexpected template state")),
    }
}
