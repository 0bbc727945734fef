//! CSV imports (admin): upload a file, read its progress and errors, list past imports
//! (docs/IMPORTS.md). The work is done by the `imports` job.

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::imports::{self, ImportView, Kind, Request};
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::ToSchema;
use uuid::Uuid;

/// Chunks stored per row of `import_chunks`.
const CHUNK: usize = 1024 * 1024;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `members`, `purchases` or `gift_cards`.
    pub kind: Option<String>,
    /// The program (members and purchases).
    pub program_id: Option<String>,
    /// `true`: check every row and report, import nothing. Default `false`.
    pub dry_run: Option<String>,
    /// Gift cards: the template their passes use (default `gift-card-default`).
    pub template: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct ImportList {
    /// Newest first.
    pub imports: Vec<ImportView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct CsvBody(#[allow(dead_code)] Vec<u8>);

/// What the query names, or its problems.
pub fn request(query: &ImportQuery) -> Result<Request, ApiError> {
    let mut problems = Vec::new();
    let kind = match query.kind.as_deref().map(Kind::parse) {
        Some(Some(k)) => Some(k),
        _ => {
            problems.push(FieldProblem::new(
                "/kind",
                "members, purchases or gift_cards",
            ));
            None
        }
    };
    let program_id = match query.program_id.as_deref().map(str::parse::<Uuid>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            problems.push(FieldProblem::new("/program_id", "a program's id (a UUID)"));
            None
        }
    };
    if matches!(kind, Some(Kind::Members | Kind::Purchases))
        && program_id.is_none()
        && query.program_id.is_none()
    {
        problems.push(FieldProblem::new(
            "/program_id",
            "required for members and purchases",
        ));
    }
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            problems.push(FieldProblem::new("/dry_run", "true or false"));
            false
        }
    };
    let template_id = match kind {
        Some(Kind::GiftCards) => Some(
            query
                .template
                .clone()
                .unwrap_or_else(|| "gift-card-default".into()),
        ),
        _ => None,
    };
    match kind {
        Some(kind) if problems.is_empty() => Ok(Request {
            kind,
            program_id,
            template_id,
            dry_run,
        }),
        _ => Err(ApiError::invalid_fields(problems)),
    }
}

/// Start an import from a CSV file (`text/csv`, up to 100 MB, streamed), checked and
/// imported by a background job: follow it at `GET /imports/{id}`. The first row names the
/// columns. A dry run checks every row and imports nothing. Running the same file again
/// imports nothing again: rows already present are skipped.
#[utoipa::path(operation_id = "startImport", tag = "imports", security(("bearer" = ["admin"])), params(ImportQuery),
    request_body(content((CsvBody = "text/csv"))),
    responses(crate::openapi::AdminKey, crate::openapi::CsvUpload, (status = 202, body = Accepted)))]
#[post("/imports")]
pub async fn start(
    caller: AdminCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if content_type.as_deref() != Some("text/csv") {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the file as the body, with Content-Type text/csv",
        ));
    }
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > imports::MAX_BYTES as u64) {
        return Err(too_large());
    }
    let request = request(&query)?;
    let id = receive(&state, caller.0.tenant, request, body).await?;
    Ok(HttpResponse::Accepted().json(Accepted { id }))
}

/// Starts the import `request` names from the file `body` streams: the program or template
/// checked, the bytes stored a chunk at a time (at most `imports::MAX_BYTES`), the import
/// queued for the job; on any failure nothing is left. The API's upload, and the console's.
pub async fn receive<S, E>(
    state: &web::Data<AppState>,
    tenant: crate::db::Tenant,
    request: Request,
    mut body: S,
) -> Result<Uuid, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let at = state.clock.now();
    let id = db::run(&state.pool, move |conn| {
        match request.kind {
            Kind::Members | Kind::Purchases => {
                let program = request.program_id.unwrap_or_default();
                crate::models::Program::find(conn, &tenant, program)
                    .map_err(|_| ApiError::not_found("no such program"))?;
            }
            Kind::GiftCards => {
                let template = request.template_id.as_deref().unwrap_or_default();
                crate::models::Template::find(conn, &tenant, template)
                    .map_err(|_| ApiError::not_found("no such template"))?;
            }
        }
        Ok(imports::begin(conn, &tenant, &request, at)?)
    })
    .await?;
    // The body goes to the database a chunk at a time: memory stays at one chunk.
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let (mut total, mut n) = (0usize, 0i32);
    // The file's hash recognises it when it comes again (gift cards without a GAN).
    let mut hash = sha2::Sha256::new();
    let outcome: Result<(), ApiError> = async {
        loop {
            let next = body.next().await;
            let done = next.is_none();
            if let Some(piece) = next {
                let piece = piece.map_err(|e| {
                    ApiError::bad_request(format!("the body could not be read: {e}"))
                })?;
                total += piece.len();
                if total > imports::MAX_BYTES {
                    return Err(too_large());
                }
                hash.update(&piece);
                buf.extend_from_slice(&piece);
            }
            if buf.len() >= CHUNK || (done && !buf.is_empty()) {
                let data = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK));
                let chunk = n;
                db::run(&state.pool, move |conn| {
                    Ok(imports::append(conn, &tenant, id, chunk, &data)?)
                })
                .await?;
                n += 1;
            }
            if done {
                break;
            }
        }
        if total == 0 {
            return Err(ApiError::bad_request(
                "the body is empty: send the CSV file",
            ));
        }
        let sha256 = hex::encode(hash.finalize());
        db::run(&state.pool, move |conn| {
            Ok(imports::received(conn, id, total as i64, &sha256)?)
        })
        .await
    }
    .await;
    if let Err(e) = outcome {
        let _ = db::run(&state.pool, move |conn| Ok(imports::abandon(conn, id)?)).await;
        return Err(e);
    }
    Ok(id)
}

fn too_large() -> ApiError {
    ApiError::new(
        ProblemKind::PayloadTooLarge,
        format!(
            "an import file is at most {} MB",
            imports::MAX_BYTES / (1024 * 1024)
        ),
    )
}

/// An import's progress: rows read, imported, skipped (already present), and the errors
/// by line and column (the first 1,000; `error_count` counts all).
#[utoipa::path(operation_id = "getImport", tag = "imports", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    responses(crate::openapi::AdminKey, crate::openapi::PathObject, (status = 200, body = ImportView)))]
#[get("/imports/{id}")]
pub async fn get(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.0.tenant, id.into_inner());
    let view = db::run(&state.pool, move |conn| {
        imports::find(conn, &tenant, id).map_err(|e| match e {
            diesel::result::Error::NotFound => ApiError::not_found("no such import"),
            e => e.into(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// The merchant's imports, newest first.
#[utoipa::path(operation_id = "listImports", tag = "imports", security(("bearer" = ["admin"])), params(PageQuery),
    responses(crate::openapi::AdminKey, crate::openapi::Query, (status = 200, body = ImportList)))]
#[get("/imports")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let limit = match query.limit.as_deref().map(str::parse::<i64>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            problems.push(FieldProblem::new("/limit", "a whole number from 1 to 100"));
            0
        }
    };
    let cursor = match query.cursor.as_deref().map(str::parse::<Uuid>) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            problems.push(FieldProblem::new("/cursor", "not a cursor of this list"));
            None
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    let tenant = caller.0.tenant;
    let (imports, next_cursor) = db::run(&state.pool, move |conn| {
        imports::page(conn, &tenant, limit, cursor).map_err(|e| match e {
            diesel::result::Error::NotFound => ApiError::invalid_fields(vec![FieldProblem::new(
                "/cursor",
                "not a cursor of this list",
            )]),
            e => e.into(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(ImportList {
        imports,
        next_cursor,
    }))
}
