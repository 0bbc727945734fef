//! The designer's routes: the page, saving the form as the draft (or only re-drawing its
//! preview), the live preview for the script, image uploads into the draft, the test pass
//! link, publishing, discarding, rolling back, and a publish's progress. Every change goes
//! through `template::versions` with `Author::Staff` and writes one audit line.

use super::form::{control_id, document_from, FormInput};
use super::test_pass;
use super::view::{
    contrast_markup, limit_markup, pointer_label, preview_of, render, summary_markup, Notice,
    SlotNote, View,
};
use crate::app::AppState;
use crate::console::document::Head;
use crate::console::error::PageError;
use crate::console::i18n::{designer_texts, fill, DesignerTexts};
use crate::console::session::{Section, StaffSession};
use crate::db;
use crate::models::template_version::{self, Author, Draft};
use crate::models::Template;
use crate::problem::ApiError;
use crate::staff::audit;
use crate::template::fit::{self, Slot};
use crate::template::images::Images;
use crate::template::reason::Reason;
use crate::template::versions::{self, Refusal};
use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use maud::html;
use serde_json::json;

fn to(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, path.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The template's working copy as a view, or the console's 404 for another merchant's or
/// no template.
async fn working_view(
    session: &StaffSession,
    state: &AppState,
    id: &str,
) -> Result<View, PageError> {
    let tenant = session.tenant;
    let lookup = id.to_string();
    let found = db::run(&state.pool, move |conn| {
        match versions::working(conn, &tenant, &lookup) {
            Ok(w) => Ok(Some(w)),
            Err(diesel::result::Error::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
    .map_err(|e| session.failed(e))?;
    let working = found.ok_or(PageError::NotFound(session.lang))?;
    Ok(View {
        template_id: id.to_string(),
        is_draft: working.draft.is_some(),
        document: working.document,
        images: working.images,
        based_on: working.based_on,
        current: working.current,
        notice: None,
        slot: None,
        test_link: None,
        preview_lang: None,
        history_before: None,
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    /// The history's cursor: the version last shown.
    before: Option<String>,
}

pub async fn show(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        // Anything but a version number is no page of this history.
        Some(b) => Some(
            b.parse::<i32>()
                .map_err(|_| PageError::NotFound(session.lang))?,
        ),
        None => None,
    };
    let mut view = working_view(&session, &state, &id).await?;
    view.history_before = before;
    render(&session, &state, StatusCode::OK, view).await
}

fn audit_line(
    session: &StaffSession,
    state: &AppState,
    action: &'static str,
    details: serde_json::Value,
) -> impl FnOnce(&mut diesel::PgConnection) -> Result<(), ApiError> {
    let actor = session.actor();
    let now = state.clock.now();
    move |conn| Ok(audit::record(conn, &actor, now, action, details)?)
}

/// The document a posted form describes: its fields, or its JSON when that was applied.
fn typed_document(
    form: &FormInput,
    original: &serde_json::Value,
    d: &DesignerTexts,
) -> Result<serde_json::Value, String> {
    if form.action() == "json" {
        let text = form.get("json").unwrap_or_default();
        return match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(d.reason(&Reason::NotObject)),
            Err(e) => Err(format!("JSON: {e}")),
        };
    }
    Ok(document_from(form, original))
}

/// `POST /console/templates/{id}`: saves the form as the draft, or (`action=refresh`)
/// re-draws the page with the preview of what was typed, saving nothing.
pub async fn save(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let form = FormInput(form.into_inner());
    let mut view = working_view(&session, &state, &id).await?;
    view.preview_lang = form.get("preview_lang").map(str::to_string);
    let document = match typed_document(&form, &view.document, designer_texts(session.lang)) {
        Ok(doc) => doc,
        Err(why) => {
            view.notice = Some(Notice::Rejected(why));
            return render(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, view).await;
        }
    };
    if form.action() == "refresh" {
        view.document = document;
        view.notice = Some(Notice::Refreshed);
        return render(&session, &state, StatusCode::OK, view).await;
    }
    let tenant = session.tenant;
    let author = Author::Staff(session.staff.id);
    let template_id = id.to_string();
    let record = audit_line(
        &session,
        &state,
        audit::TEMPLATE_DRAFT_SAVE,
        json!({ "template": template_id }),
    );
    let saved_doc = document.clone();
    let working = db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            let working =
                versions::save_draft(conn, &tenant, &template_id, &saved_doc, None, author)?;
            record(conn)?;
            Ok::<_, ApiError>(working)
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    view.document = working.document;
    view.images = working.images;
    view.is_draft = true;
    view.based_on = working.based_on;
    view.current = working.current;
    view.notice = Some(Notice::Saved);
    // A draft that does not validate is kept, and shown with its problems (422).
    let valid = crate::template::validate::parse_document(&view.document, &view.images).is_ok();
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(&session, &state, status, view).await
}

/// `POST /console/templates/{id}/preview` (the script, with `X-CSRF-Token`): the preview of
/// the form as typed, and its problems, as JSON. Nothing is saved.
pub async fn live_preview(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let d = designer_texts(session.lang);
    let form = FormInput(form.into_inner());
    let view = working_view(&session, &state, &id).await?;
    let document = document_from(&form, &view.document);
    let language = form.get("preview_lang").map(str::to_string);
    let (result, document, _) = preview_of(&state, &session, &id, document, view.images, language)
        .await
        .map_err(|e| session.failed(e))?;
    let (html, colors, problems) = match result {
        Ok(p) => (
            Some(p.html),
            p.colors
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<std::collections::BTreeMap<_, _>>(),
            Vec::new(),
        ),
        Err(problems) => (None, Default::default(), problems),
    };
    let errors: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| {
            json!({
                "id": control_id(&p.pointer),
                "text": format!("{}: {}", pointer_label(d, &p.pointer), d.reason(&p.reason)),
            })
        })
        .collect();
    let all: Vec<&crate::template::reason::TemplateProblem> = problems.iter().collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "html": html,
            "colors": colors,
            "errors": errors,
            "summary": summary_markup(d, &all, problems.len()).into_string(),
            "contrast": contrast_markup(d, &document).into_string(),
            "limit": limit_markup(d, &document).into_string(),
        })))
}

/// What an upload posted: the designer's fields as typed (when the upload came from the
/// designer's form) and the slot's file, all parts together at most `limit` bytes.
struct Upload {
    fields: Vec<(String, String)>,
    file: Option<Vec<u8>>,
}

async fn read_upload(mut payload: Multipart, slot: Slot, limit: usize) -> Result<Upload, String> {
    let file_name = format!("file-{}", slot.name());
    let mut upload = Upload {
        fields: Vec::new(),
        file: None,
    };
    let mut total = 0usize;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| e.to_string())?;
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_name())
            .unwrap_or_default()
            .to_string();
        // `file` is what a plain upload form (or a script) sends.
        let is_file = name == file_name || name == "file";
        let is_other_file = name.starts_with("file-") && !is_file;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            total += chunk.len();
            if total > limit {
                return Err(format!(
                    "the file is larger than {} MB",
                    limit / (1024 * 1024)
                ));
            }
            if !is_other_file {
                bytes.extend_from_slice(&chunk);
            }
        }
        if is_file {
            upload.file = Some(bytes);
        } else if !is_other_file {
            let text = String::from_utf8(bytes).map_err(|_| "a field is not text".to_string())?;
            upload.fields.push((name, text));
        }
    }
    Ok(upload)
}

/// `POST /console/templates/{id}/images/{slot}?csrf=…` (multipart): the upload fitted to
/// the slot and saved into the draft; the page shows the crop, or why it was refused.
pub async fn upload(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: Multipart,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let (id, slot) = path.into_inner();
    let slot = Slot::parse(&slot).ok_or(PageError::NotFound(session.lang))?;
    let d = designer_texts(session.lang);
    let mut view = working_view(&session, &state, &id).await?;
    let upload = match read_upload(payload, slot, state.settings.body_limit).await {
        Ok(upload) => upload,
        Err(why) => {
            view.slot = Some((slot, SlotNote::Refused(why)));
            return render(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, view).await;
        }
    };
    // Sent from the designer's form: what was typed is kept with the image.
    if upload.fields.iter().any(|(name, _)| name != "csrf") {
        let fields = FormInput(upload.fields);
        view.preview_lang = fields.get("preview_lang").map(str::to_string);
        if let Ok(typed) = typed_document(&fields, &view.document, d) {
            view.document = typed;
        }
    }
    let bytes = match upload.file {
        Some(bytes) if !bytes.is_empty() => bytes,
        _ => {
            view.slot = Some((slot, SlotNote::Refused(d.no_file.to_string())));
            return render(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, view).await;
        }
    };
    let images = view.images.clone();
    let (fitted, images): (Result<fit::Fitted, _>, Images) = state
        .image_decodes
        .run(move || {
            let mut images = images;
            let fitted = fit::fit(&bytes, slot);
            if let Ok(f) = &fitted {
                f.apply_to(&mut images);
            }
            (fitted, images)
        })
        .await
        .map_err(|e| session.failed(e))?;
    let fitted = match fitted {
        Ok(f) => f,
        Err(problem) => {
            view.slot = Some((slot, SlotNote::Refused(problem.detail)));
            return render(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, view).await;
        }
    };
    let tenant = session.tenant;
    let author = Author::Staff(session.staff.id);
    let template_id = id.clone();
    let document = view.document.clone();
    let record = audit_line(
        &session,
        &state,
        audit::TEMPLATE_IMAGE,
        json!({ "template": id, "slot": slot.name(), "width": fitted.source_width, "height": fitted.source_height }),
    );
    let working = db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            let w = versions::save_draft(
                conn,
                &tenant,
                &template_id,
                &document,
                Some(&images),
                author,
            )?;
            record(conn)?;
            Ok::<_, ApiError>(w)
        })
    })
    .await
    .map_err(|e| session.failed(e))?;
    let shown = fitted.preview();
    view.slot = Some((
        slot,
        SlotNote::Fitted {
            png: shown.png.clone(),
            width: shown.width,
            height: shown.height,
            source: (fitted.source_width, fitted.source_height),
        },
    ));
    view.images = working.images;
    view.is_draft = true;
    view.based_on = working.based_on;
    view.current = working.current;
    render(&session, &state, StatusCode::OK, view).await
}

/// `POST /console/templates/{id}/test-pass`: the page with the test pass's QR code.
pub async fn test_link(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let mut view = working_view(&session, &state, &id).await?;
    let hash = test_pass::draft_hash(&view.document, &view.images);
    view.test_link = Some(test_pass::link(
        &state,
        session.tenant.merchant_id(),
        &id,
        &hash,
    ));
    render(&session, &state, StatusCode::OK, view).await
}

/// Shows a publish or rollback refusal on the page.
async fn refused(
    session: &StaffSession,
    state: &AppState,
    id: &str,
    refusal: Refusal,
) -> Result<HttpResponse, PageError> {
    let d = designer_texts(session.lang);
    let mut view = working_view(session, state, id).await?;
    let (status, notice) = match refusal {
        Refusal::Stale { based_on, current } => (
            StatusCode::CONFLICT,
            Notice::Stale(fill(
                &fill(d.stale, "based", &based_on.to_string()),
                "current",
                &current.to_string(),
            )),
        ),
        Refusal::NoDraft => (StatusCode::CONFLICT, Notice::Rejected(d.no_draft.into())),
        Refusal::Invalid(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::Rejected(d.invalid_draft.into()),
        ),
        Refusal::KindChanged => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::Rejected(d.kind_changed.into()),
        ),
    };
    view.notice = Some(notice);
    render(session, state, status, view).await
}

/// `POST /console/templates/{id}/publish`.
pub async fn publish(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let tenant = session.tenant;
    let author = Author::Staff(session.staff.id);
    let channels = state.channels;
    let template_id = id.to_string();
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            Template::find(conn, &tenant, &template_id)?;
            let published = versions::publish_draft(conn, channels, &tenant, &template_id, author)?;
            if let Ok(p) = &published {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::TEMPLATE_PUBLISH,
                    json!({ "template": template_id, "version": p.template.version }),
                )?;
            }
            Ok::<_, ApiError>(published)
        })
    })
    .await
    .map_err(|e| not_found_or(&session, e))?;
    match done {
        Ok(_) => {
            state.pass_cache.evict_template(tenant.merchant_id(), &id);
            Ok(to(&format!("/console/templates/{id}/progress")))
        }
        Err(refusal) => refused(&session, &state, &id, refusal).await,
    }
}

fn not_found_or(session: &StaffSession, e: ApiError) -> PageError {
    if e.status == StatusCode::NOT_FOUND {
        PageError::NotFound(session.lang)
    } else {
        session.failed(e)
    }
}

/// `POST /console/templates/{id}/discard`.
pub async fn discard(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let tenant = session.tenant;
    let template_id = id.to_string();
    let record = audit_line(
        &session,
        &state,
        audit::TEMPLATE_DRAFT_DISCARD,
        json!({ "template": template_id }),
    );
    db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            Template::find(conn, &tenant, &template_id)?;
            if Draft::discard(conn, &tenant, &template_id)? {
                record(conn)?;
            }
            Ok::<_, ApiError>(())
        })
    })
    .await
    .map_err(|e| not_found_or(&session, e))?;
    let mut view = working_view(&session, &state, &id).await?;
    view.notice = Some(Notice::Discarded);
    render(&session, &state, StatusCode::OK, view).await
}

/// `POST /console/templates/{id}/versions/{version}/restore`: a rollback.
pub async fn rollback(
    session: StaffSession,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let (id, version) = path.into_inner();
    let tenant = session.tenant;
    let author = Author::Staff(session.staff.id);
    let channels = state.channels;
    let template_id = id.clone();
    let actor = session.actor();
    let now = state.clock.now();
    let done = db::run(&state.pool, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            let restored = versions::restore(conn, channels, &tenant, &template_id, version, author)?;
            if let Ok(p) = &restored {
                audit::record(
                    conn,
                    &actor,
                    now,
                    audit::TEMPLATE_ROLLBACK,
                    json!({ "template": template_id, "restored": version, "version": p.template.version }),
                )?;
            }
            Ok::<_, ApiError>(restored)
        })
    })
    .await
    .map_err(|e| not_found_or(&session, e))?;
    match done {
        Ok(_) => {
            state.pass_cache.evict_template(tenant.merchant_id(), &id);
            Ok(to(&format!("/console/templates/{id}/progress")))
        }
        Err(refusal) => refused(&session, &state, &id, refusal).await,
    }
}

async fn queued(
    session: &StaffSession,
    state: &AppState,
    id: &str,
) -> Result<(i32, std::collections::BTreeMap<String, i64>), PageError> {
    let tenant = session.tenant;
    let id = id.to_string();
    db::run(&state.pool, move |conn| {
        let t = Template::find(conn, &tenant, &id)?;
        Ok((t.version, template_version::queued(conn, &tenant, &id)?))
    })
    .await
    .map_err(|e| not_found_or(session, e))
}

/// `GET /console/templates/{id}/progress`: deliveries still queued after a publish, falling
/// to zero: the script polls every second; without it, a link checks again. The page never
/// reloads itself on a timer (WCAG 2.2.1: a timed refresh takes the page from under a
/// reader).
pub async fn progress(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let d = designer_texts(session.lang);
    let (version, queued) = queued(&session, &state, &id).await?;
    let total: i64 = queued.values().sum();
    let body = html! {
        div id="progress" data-poll=(format!("/console/templates/{id}/progress.json")) data-done=(total == 0) {
            p id="progress-version" { (fill(d.published_version, "version", &version.to_string())) }
            p id="queued" aria-live="polite" {
                (fill(d.queued, "count", &total.to_string()))
            }
            p id="progress-done" class=(if total == 0 { "notice" } else { "hidden" }) { (d.all_delivered) }
            @if total > 0 {
                p id="check-again" { a href=(format!("/console/templates/{id}/progress")) { (d.check_again) } }
            }
        }
        p { a href=(format!("/console/templates/{id}")) id="back-to-designer" { (d.back_to_designer) } }
    };
    let head = Head {
        scripts: vec![crate::console::assets::url("designer.js")],
        ..Head::default()
    };
    Ok(session.page_with_head(
        StatusCode::OK,
        Section::Templates,
        d.progress_title,
        &head,
        body,
    ))
}

/// `GET /console/templates/{id}/progress.json`: `{"queued": n, "channels": {...}}`.
pub async fn progress_json(
    session: StaffSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    session.require(Section::Templates)?;
    let d = designer_texts(session.lang);
    let (version, queued) = queued(&session, &state, &id).await?;
    let total: i64 = queued.values().sum();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "version": version,
            "queued": total,
            "channels": queued,
            "text": fill(d.queued, "count", &total.to_string()),
        })))
}
