//! Apple's PassKit web service (Wallet Passes reference, "web service"): devices register
//! and unregister passes, ask which of theirs changed since a tag, fetch the latest pass,
//! and send their logs. Mounted under `PASSFOLD_PUBLIC_URL/apple/v1`.

use crate::app::AppState;
use crate::db;
use crate::models::device::{Registered, Registration, DEVICES_PER_PASS, PASSES_PER_DEVICE};
use crate::models::pass::{renumber_restored_tags, tag_horizon, Pass};
use crate::pass_content::PassContent;
use crate::pass_service::current_pass;
use crate::problem::{ApiError, ProblemKind};
use crate::schema::device_logs;
use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Identifiers Apple sends in paths: printable ASCII of sane length.
fn checked(text: &str, what: &str) -> Result<(), ApiError> {
    if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(format!(
            "{what} is not a valid identifier"
        )));
    }
    Ok(())
}

fn our_pass_type(state: &AppState, pass_type: &str) -> Result<(), ApiError> {
    if pass_type != state.identity.pass_type_id {
        return Err(ApiError::not_found(
            "this service signs no passes of that type",
        ));
    }
    Ok(())
}

/// The pass, if the request carries its `ApplePass` authentication token.
async fn authorized_pass(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    serial: String,
) -> Result<(Pass, crate::db::Tenant), ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ApplePass "))
        .map(|t| t.trim().to_string())
        .ok_or_else(|| {
            ApiError::unauthorized("send the pass's token as `Authorization: ApplePass <token>`")
        })?;
    let found = db::run(&state.pool, move |conn| Ok(Pass::by_serial(conn, &serial)?)).await?;
    match found {
        Some((pass, tenant))
            if presented.len() == pass.authentication_token.len()
                && openssl::memcmp::eq(
                    presented.as_bytes(),
                    pass.authentication_token.as_bytes(),
                ) =>
        {
            Ok((pass, tenant))
        }
        // Unknown serial and wrong token alike: no way to probe for serial numbers.
        _ => Err(ApiError::unauthorized("wrong pass or authentication token")),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationBody {
    pub push_token: String,
}

/// Register a device to receive push notifications for a pass.
#[utoipa::path(operation_id = "registerDevice", tag = "apple web service", params(("device" = String, Path), ("pass_type" = String, Path), ("serial" = String, Path)),
    request_body = RegistrationBody, responses(crate::openapi::PathObject, crate::openapi::JsonBody, crate::openapi::Database,
    crate::openapi::ApplePassToken, crate::openapi::RegistrationLimits,
    (status = 201, description = "Registered"), (status = 200, description = "Already registered")))]
#[post("/apple/v1/devices/{device}/registrations/{pass_type}/{serial}")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    body: web::Json<RegistrationBody>,
) -> Result<HttpResponse, ApiError> {
    let (device, pass_type, serial) = path.into_inner();
    checked(&device, "the device library identifier")?;
    our_pass_type(&state, &pass_type)?;
    let (pass, _) = authorized_pass(&req, &state, serial).await?;
    let token = body.into_inner().push_token;
    if token.is_empty() || token.len() > 200 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "pushToken must be the device's hexadecimal push token",
        ));
    }
    let registered = db::run(&state.pool, move |conn| {
        Ok(Registration::register(
            conn,
            &device,
            &token,
            pass.id,
            pass.merchant_id,
        )?)
    })
    .await?;
    // Past a cap, a 403 with the reason: Wallet treats any answer but 200/201 as a failed
    // registration, reports it through the log endpoint and keeps the pass (updates still
    // come when the customer refreshes it); nothing is written for the refused device.
    match registered {
        Registered::Created => Ok(HttpResponse::Created().finish()),
        Registered::Existing => Ok(HttpResponse::Ok().finish()),
        Registered::PassFull => Err(ApiError::forbidden(format!(
            "this pass is already registered on {DEVICES_PER_PASS} devices, the most allowed; \
             remove it from a device to register it on another"
        ))),
        Registered::DeviceFull => Err(ApiError::forbidden(format!(
            "this device already holds {PASSES_PER_DEVICE} passes of this service, the most allowed"
        ))),
    }
}

/// Unregister a device from a pass.
#[utoipa::path(operation_id = "unregisterDevice", tag = "apple web service", params(("device" = String, Path), ("pass_type" = String, Path), ("serial" = String, Path)),
    responses(crate::openapi::PathObject, crate::openapi::Database, crate::openapi::ApplePassToken, (status = 200, description = "Unregistered")))]
#[delete("/apple/v1/devices/{device}/registrations/{pass_type}/{serial}")]
pub async fn unregister(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (device, pass_type, serial) = path.into_inner();
    checked(&device, "the device library identifier")?;
    our_pass_type(&state, &pass_type)?;
    let (pass, _) = authorized_pass(&req, &state, serial).await?;
    db::run(&state.pool, move |conn| {
        Ok(Registration::unregister(conn, &device, pass.id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct SinceQuery {
    /// The `lastUpdated` tag of the device's previous query.
    pub passes_updated_since: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SerialNumbers {
    pub serial_numbers: Vec<String>,
    pub last_updated: String,
}

/// The serial numbers of the device's passes changed since a tag.
#[utoipa::path(operation_id = "listChangedSerials", tag = "apple web service", params(("device" = String, Path), ("pass_type" = String, Path), SinceQuery),
    responses(crate::openapi::PathObject, crate::openapi::Query, crate::openapi::Database, (status = 200, body = SerialNumbers), (status = 204, description = "Nothing changed")))]
#[get("/apple/v1/devices/{device}/registrations/{pass_type}")]
pub async fn changed(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<SinceQuery>,
) -> Result<HttpResponse, ApiError> {
    let (device, pass_type) = path.into_inner();
    checked(&device, "the device library identifier")?;
    our_pass_type(&state, &pass_type)?;
    let since = match query
        .passes_updated_since
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(tag) => Some(tag.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
            ApiError::bad_request("passesUpdatedSince must be a tag this service gave")
        })?),
    };
    let (rows, since, horizon) = db::run(&state.pool, move |conn| {
        let mut rows = Registration::changed_since(conn, &device, since)?;
        let mut horizon = tag_horizon(conn)?;
        // Tags are transaction ids, and every tag this cluster gave is below `next`. A
        // `since` at or above it was given by another cluster: the database was restored
        // from a dump into a new one, whose ids start lower again. Without this the
        // device would never hear of a change again; it gets all its passes instead.
        let restored_since = since.is_some_and(|s| s >= horizon.next);
        let restored_tags = rows.iter().any(|(_, tag)| *tag >= horizon.next);
        if restored_since || restored_tags {
            let renumbered = renumber_restored_tags(conn)?;
            tracing::warn!(
                renumbered,
                "update tags above this cluster's transaction ids: the database was restored into a new cluster; devices are sent all their passes"
            );
            let since = since.filter(|_| !restored_since);
            rows = Registration::changed_since(conn, &device, since)?;
            horizon = tag_horizon(conn)?;
            return Ok((rows, since, horizon));
        }
        Ok((rows, since, horizon))
    })
    .await?;
    let Some(newest) = rows.iter().map(|(_, tag)| *tag).max() else {
        return Ok(HttpResponse::NoContent().finish());
    };
    // Never past a change that is still being written (see tag_horizon).
    let last = newest.min(horizon.safe).max(since.unwrap_or(0));
    Ok(HttpResponse::Ok().json(SerialNumbers {
        serial_numbers: rows.into_iter().map(|(serial, _)| serial).collect(),
        last_updated: last.to_string(),
    }))
}

/// The latest version of a pass, with `Last-Modified`; 304 to an `If-Modified-Since`
/// that is not older.
#[utoipa::path(operation_id = "getLatestPass", tag = "apple web service", params(("pass_type" = String, Path), ("serial" = String, Path)), responses(crate::openapi::PathObject, crate::openapi::Database,
    crate::openapi::ApplePassToken,
    (status = 200, description = "The signed pass", content_type = "application/vnd.apple.pkpass"), (status = 304, description = "Not modified")))]
#[get("/apple/v1/passes/{pass_type}/{serial}")]
pub async fn latest(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (pass_type, serial) = path.into_inner();
    our_pass_type(&state, &pass_type)?;
    let (pass, _) = authorized_pass(&req, &state, serial.clone()).await?;
    let token = pass.download_token.clone();
    current_pass(&req, &state, &token, move |conn, app| {
        // Read again: the version served must be read after current_pass's settled time.
        let (pass, tenant) = Pass::by_serial(conn, &serial)?
            .filter(|(p, _)| p.id == pass.id)
            .ok_or_else(|| ApiError::unauthorized("wrong pass or authentication token"))?;
        Ok(PassContent::load(
            conn,
            &tenant,
            pass,
            &app.templates,
            &app.settings.public_url,
        )?)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
pub struct LogBody {
    pub logs: Vec<String>,
}

/// Log messages kept per client address, and from everyone together, in the window; the
/// overall ceiling bounds the table when the messages come from many addresses.
const LOGS_PER_CLIENT: i64 = 60;
const LOGS_OVERALL: i64 = 1_000;
const LOG_WINDOW_MINUTES: i32 = 10;
/// Longest message kept, and longest written to the service log.
const LOG_MESSAGE_CHARS: usize = 1_000;
const LOG_LINE_CHARS: usize = 300;
/// First key of the advisory lock that serializes device log writes.
const LOCK_DEVICE_LOGS: i32 = 0x646c; // "dl"

#[derive(QueryableByName)]
struct RecentLogs {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    from_client: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    overall: i64,
}

/// Devices report problems with the web service here; kept in the service log.
#[utoipa::path(operation_id = "logDeviceMessages", tag = "apple web service", request_body = LogBody, responses(crate::openapi::JsonBody, crate::openapi::Database, crate::openapi::RateLimited, (status = 200, description = "Logged")))]
#[post("/apple/v1/log")]
pub async fn log(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LogBody>,
) -> Result<HttpResponse, ApiError> {
    let client = crate::client_address::of(&req, state.settings.trust_forwarded);
    let messages: Vec<String> = body
        .into_inner()
        .logs
        .into_iter()
        .take(20)
        .map(|m| {
            m.chars()
                .filter(|c| !c.is_control())
                .take(LOG_MESSAGE_CHARS)
                .collect()
        })
        .collect();
    if messages.is_empty() {
        return Ok(HttpResponse::Ok().finish());
    }
    // Anyone may send these: kept a week (see jobs::prune), limited per address and
    // overall, and logged at INFO, escaped and shortened.
    let kept = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            // One writer at a time (the endpoint is rare and cheap), so the counts below
            // and the insert cannot be overtaken by a parallel request.
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, 0)")
                .bind::<diesel::sql_types::Integer, _>(LOCK_DEVICE_LOGS)
                .execute(conn)?;
            let recent: RecentLogs = diesel::sql_query(
                "SELECT count(*) FILTER (WHERE client = $1) AS from_client, count(*) AS overall
                   FROM device_logs
                  WHERE created_at > now() - make_interval(mins => $2)",
            )
            .bind::<diesel::sql_types::Text, _>(&client)
            .bind::<diesel::sql_types::Integer, _>(LOG_WINDOW_MINUTES)
            .get_result(conn)?;
            let room = (LOGS_PER_CLIENT - recent.from_client)
                .min(LOGS_OVERALL - recent.overall)
                .max(0) as usize;
            if room == 0 {
                return Err(ApiError::new(
                    ProblemKind::RateLimited,
                    "too many log messages; try again later",
                )
                .with_retry_after((LOG_WINDOW_MINUTES * 60) as u64));
            }
            // What fits is kept; the rest of this batch is dropped.
            let kept: Vec<String> = messages.into_iter().take(room).collect();
            let rows: Vec<_> = kept
                .iter()
                .map(|m| (device_logs::client.eq(&client), device_logs::message.eq(m)))
                .collect();
            diesel::insert_into(device_logs::table)
                .values(rows)
                .execute(conn)?;
            Ok((client, kept))
        })
    })
    .await?;
    let (client, kept) = kept;
    for message in &kept {
        // Debug formatting quotes and escapes the text, so a message cannot forge lines.
        let short: String = message.chars().take(LOG_LINE_CHARS).collect();
        tracing::info!(client = %client, message = ?short, "Wallet device log");
    }
    Ok(HttpResponse::Ok().finish())
}
