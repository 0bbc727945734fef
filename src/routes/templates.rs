use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::{TemplateId, TemplateKind};
use crate::models::template::{Template, TemplateChange};
use crate::models::template_version::Author;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::template::images::{pointer_token, Images};
use crate::template::preview as designer_preview;
use crate::template::validate::parse_document;
use crate::template::TemplateDocument;
use crate::template::{fit, publish};
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

/// One file made from an upload.
#[derive(Serialize, ToSchema)]
pub struct FittedImage {
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

/// What an upload became: the template as now published, the files made for the slot, the
/// part of the upload they show, and one of them to display.
#[derive(Serialize, ToSchema)]
pub struct ImageFitView {
    pub template: TemplateView,
    pub slot: String,
    pub files: Vec<FittedImage>,
    /// The upload's size, upright (after its EXIF orientation).
    pub source_width: u32,
    pub source_height: u32,
    /// The rectangle of the upload kept: a centre crop, or all of it.
    pub kept: fit::Rect,
    /// A `data:` URI of the @2x file (Apple) or the only file (Google).
    pub preview: String,
}

/// A raw PNG or JPEG body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBody(#[allow(dead_code)] Vec<u8>);

/// Upload a PNG or JPEG of any size into one of a template's image slots (`icon`, `logo`,
/// `strip`, `google_logo`, `google_hero`). It is cropped or scaled into every file the
/// slot needs (1x, 2x, 3x for Apple) and published at once, like a `PUT` of the template:
/// passes built from it change. Centre crop for `icon`, `strip` and Google's images;
/// `logo` is scaled to fit within 160x50 points. Refused with a reason: other formats,
/// broken files, over 40 megapixels, or so small it would be enlarged more than twice.
#[utoipa::path(operation_id = "putTemplateImage", tag = "templates", security(("bearer" = ["admin"])),
    params(("id" = String, Path), ("slot" = String, Path, description = "icon, logo, strip, google_logo or google_hero")),
    request_body(content(
        (ImageBody = "image/jpeg"),
        (ImageBody = "image/png"),
    )),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::ImageUpload,
    (status = 200, body = ImageFitView)))]
#[put("/templates/{id}/images/{slot}")]
pub async fn put_image(
    caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (id, slot) = path.into_inner();
    let slot = fit::Slot::parse(&slot).ok_or_else(|| {
        ApiError::not_found("no such image slot: icon, logo, strip, google_logo or google_hero")
    })?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(content_type.as_deref(), Some("image/png" | "image/jpeg")) {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the image's bytes as the body, with Content-Type image/png or image/jpeg",
        ));
    }
    let tenant = caller.0.tenant;
    let lookup_id = id.clone();
    let (current, images) = db::run(&state.pool, move |conn| {
        let t = Template::find(conn, &tenant, &lookup_id)?;
        let images = Template::images(conn, &tenant, &lookup_id)?;
        Ok((t, images))
    })
    .await?;
    let read_version = current.version;
    let raw = current.document;
    // The upload is whatever the body says it is: the bytes decide, not the header.
    let (fitted, result, images) = state
        .image_decodes
        .run(move || {
            let mut images = images;
            let fitted = fit::fit(&body, slot);
            if let Ok(fitted) = &fitted {
                fitted.apply_to(&mut images);
            }
            let result = fitted.is_ok().then(|| parse_document(&raw, &images));
            (fitted, result, images)
        })
        .await?;
    let fitted = fitted.map_err(|p| ApiError::invalid_fields(vec![p]))?;
    let document = match result {
        Some(result) => validated_parts(result, Vec::new())?,
        None => return Err(ApiError::internal("image fitted without a document check")),
    };
    let channels = state.channels;
    let save_id = id.clone();
    let (saved, images) = db::run(&state.pool, move |conn| {
        let saved = publish::update_from_version(
            conn,
            channels,
            &tenant,
            &save_id,
            read_version,
            &document,
            &images,
            Author::ApiKey(caller.0.key_id),
        )?;
        Ok((saved, images))
    })
    .await?;
    let t = match saved {
        None => {
            return Err(ApiError::new(
                ProblemKind::Conflict,
                "the template changed while the image was being fitted; send it again",
            ))
        }
        Some(Ok(t)) => t,
        Some(Err(_)) => return Err(ApiError::internal("unexpected template state")),
    };
    state.pass_cache.evict_template(tenant.merchant_id(), &t.id);
    let preview = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&fitted.preview().png)
    );
    Ok(HttpResponse::Ok().json(ImageFitView {
        template: view(t, &images),
        slot: slot.name().to_string(),
        files: fitted
            .files
            .iter()
            .map(|f| FittedImage {
                file: f.name.to_string(),
                width: f.width,
                height: f.height,
                bytes: f.png.len(),
            })
            .collect(),
        source_width: fitted.source_width,
        source_height: fitted.source_height,
        kept: fitted.kept,
        preview,
    }))
}

/// A draft to preview.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    /// Draw the card as a phone in this language shows it (one of the template's
    /// `localizations`); by default, and for a language it lacks, the default language.
    #[serde(default)]
    pub language: Option<String>,
}

/// A draft's preview, or what keeps it from being one.
#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    /// The Apple pass (front, back) and the Google card, in one `div.pf-preview`; `null`
    /// when the draft has problems. Styled by the preview stylesheet, with its colours
    /// from `colors`.
    pub html: Option<String>,
    /// CSS custom properties to set on `.pf-preview` (name -> `#rrggbb`).
    pub colors: BTreeMap<String, String>,
    /// The validator's problems, each with its pointer (`/template/...`, as a `PUT` answers).
    pub problems: Vec<FieldProblem>,
    /// What the real builders make of the draft, for sample values: Apple's pass.json,
    /// Google's class and object; each `null` when the draft has problems.
    #[schema(value_type = Option<Object>)]
    pub apple_pass: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub google_class: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub google_object: Option<serde_json::Value>,
}

/// Preview a draft of the template, as the pass designer does while one types: the Apple
/// pass (front and back) and the Google card, drawn from what the real pass and Google
/// object would carry with sample values, and the template's stored images. Nothing is
/// saved. A draft that does not validate answers 200 with its problems.
#[utoipa::path(operation_id = "previewTemplate", tag = "templates", security(("bearer" = ["admin"])), params(("id" = String, Path)), request_body = PreviewInput, responses(crate::openapi::AdminKey, crate::openapi::PathObject, crate::openapi::JsonBody,
    (status = 200, body = PreviewView)))]
#[post("/templates/{id}/preview")]
pub async fn preview_draft(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PreviewInput>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let templates = state.clone();
    let lookup_id = id.clone();
    let (merchant, loaded) = db::run(&state.pool, move |conn| {
        let loaded = templates.templates.load(conn, &tenant, &lookup_id)?;
        let merchant = crate::models::Merchant::find(conn, tenant.merchant_id())?;
        Ok((merchant.name, loaded))
    })
    .await?;
    let public_url = &state.settings.public_url;
    let card = designer_preview::SampleCard::sample(loaded.document.kind, &merchant, public_url);
    let rendered = designer_preview::render(&designer_preview::PreviewInput {
        document: &body.template,
        images: designer_preview::PreviewImages::Stored {
            assets: &loaded.assets,
            merchant_id: tenant.merchant_id(),
            template_id: &id,
            version: loaded.version,
        },
        card: &card,
        merchant_id: tenant.merchant_id(),
        template_id: &id,
        issuer: state.google.issuer(),
        public_url,
        language: body.language.as_deref(),
    });
    let view = match rendered {
        Ok(p) => PreviewView {
            html: Some(p.html),
            colors: p
                .colors
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
            problems: Vec::new(),
            apple_pass: Some(p.apple_pass),
            google_class: Some(p.google_class),
            google_object: Some(p.google_object),
        },
        Err(problems) => PreviewView {
            html: None,
            colors: BTreeMap::new(),
            problems: problems
                .into_iter()
                .map(|p| FieldProblem::new(format!("/template{}", p.pointer), p.reason.to_string()))
                .collect(),
            apple_pass: None,
            google_class: None,
            google_object: None,
        },
    };
    Ok(HttpResponse::Ok().json(view))
}
