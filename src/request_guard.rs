//! Checks every request before any handler sees it, so input PostgreSQL cannot store, or
//! headers that say two things at once, are refused in one place with a problem naming
//! what is wrong, instead of reaching the database as a 500.
//!
//! - The NUL character (U+0000) is the one character PostgreSQL's `text` and `jsonb` refuse.
//!   It is looked for in the percent-decoded path and query, and in JSON and form bodies.
//!   A body is only buffered when its media type is JSON or a form (never uploads, images
//!   or streams) and it is scanned without parsing; only a body that contains the escape
//!   is parsed, to name the field.
//! - A path or query that is not UTF-8 once percent-decoded is refused too.
//! - `Authorization`, `Idempotency-Key`, `Content-Type` and `Content-Length` given twice
//!   are refused: which one would count is anyone's guess.

use crate::app::AppState;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::HttpMessage;
use futures_util::StreamExt;

const SINGLE_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    HeaderName::from_static("idempotency-key"),
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
];

const NUL_DETAIL: &str = "contains the NUL character (U+0000), which cannot be stored";

/// The middleware (see `startup`); wrap it inside the error handlers so its problems get
/// their absolute `type` like any other.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    if let Err(problem) = check_head(&req) {
        return Ok(req.error_response(problem).map_into_right_body());
    }
    if let Some(kind) = BodyKind::of(&req) {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(4 * 1024 * 1024, |s| s.settings.body_limit);
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // An announced oversize body is left to the extractor, which refuses it unread.
        if announced.is_none_or(|n| n <= limit) {
            let body = match read_body(&mut req, limit).await {
                Ok(body) => body,
                Err(problem) => return Ok(req.error_response(problem).map_into_right_body()),
            };
            let found = kind.nul_fields(&body);
            req.set_payload(body.into());
            if !found.is_empty() {
                return Ok(req
                    .error_response(ApiError::invalid_fields(found))
                    .map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

fn check_head(req: &ServiceRequest) -> Result<(), ApiError> {
    for name in &SINGLE_HEADERS {
        if req.headers().get_all(name).nth(1).is_some() {
            return Err(ApiError::bad_request(format!(
                "the {name} header is given more than once; send it once"
            )));
        }
    }
    let path = percent_decode(req.path().as_bytes());
    if path.contains(&0) {
        return Err(ApiError::bad_request(format!(
            "the path {} {NUL_DETAIL}",
            req.path()
        )));
    }
    if std::str::from_utf8(&path).is_err() {
        return Err(ApiError::bad_request(format!(
            "the path {} is not UTF-8 text once percent-decoded",
            req.path()
        )));
    }
    let query = req.query_string();
    if query.is_empty() {
        return Ok(());
    }
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_bytes = form_decode(name.as_bytes());
        let shown = String::from_utf8_lossy(&name_bytes).replace('\0', "%00");
        let value = form_decode(value.as_bytes());
        if name_bytes.contains(&0) || value.contains(&0) {
            return Err(ApiError::bad_request(format!(
                "the query parameter `{shown}` {NUL_DETAIL}"
            )));
        }
        if std::str::from_utf8(&name_bytes).is_err() || std::str::from_utf8(&value).is_err() {
            return Err(ApiError::bad_request(format!(
                "the query parameter `{shown}` is not UTF-8 text once percent-decoded"
            )));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum BodyKind {
    Json,
    Form,
}

impl BodyKind {
    fn of(req: &ServiceRequest) -> Option<Self> {
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)?
            .to_str()
            .ok()?
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Some(Self::Json)
        } else if essence == "application/x-www-form-urlencoded" {
            Some(Self::Form)
        } else {
            None
        }
    }

    /// Where the body holds a NUL: JSON pointers (RFC 6901), or `/name` of a form field.
    fn nul_fields(self, body: &[u8]) -> Vec<FieldProblem> {
        match self {
            // A JSON text can only carry NUL as the escape `\u0000` (a raw NUL byte is
            // not JSON, and the parser refuses it); most bodies do not have it.
            Self::Json if !has_nul_escape(body) => Vec::new(),
            Self::Json => match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(value) => {
                    let mut found = Vec::new();
                    json_nul_fields(&value, &mut String::new(), &mut found);
                    found
                }
                Err(_) => Vec::new(),
            },
            Self::Form if !body.contains(&0) && !has_percent_nul(body) => Vec::new(),
            Self::Form => body
                .split(|b| *b == b'&')
                .filter_map(|pair| {
                    let mut parts = pair.splitn(2, |b| *b == b'=');
                    let name = form_decode(parts.next().unwrap_or_default());
                    let value = form_decode(parts.next().unwrap_or_default());
                    (name.contains(&0) || value.contains(&0)).then(|| {
                        let name = String::from_utf8_lossy(&name).replace('\0', "%00");
                        FieldProblem::new(format!("/{}", escape_pointer(&name)), NUL_DETAIL)
                    })
                })
                .collect(),
        }
    }
}

pub(crate) async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the body broke off: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ProblemKind::PayloadTooLarge,
                format!("the body is larger than the limit of {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Whether a JSON text holds the escape `\u0000`; jumps from backslash to backslash and
/// skips each escaped character, so `\\u0000` (a backslash, then text) does not count.
fn has_nul_escape(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some(i) = rest.iter().position(|b| *b == b'\\') {
        let tail = &rest[i + 1..];
        if tail.starts_with(b"u0000") {
            return true;
        }
        rest = tail.get(1..).unwrap_or_default();
    }
    false
}

fn has_percent_nul(body: &[u8]) -> bool {
    body.windows(3).any(|w| w == b"%00")
}

fn json_nul_fields(value: &serde_json::Value, at: &mut String, found: &mut Vec<FieldProblem>) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => {
            found.push(FieldProblem::new(at.clone(), NUL_DETAIL))
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                json_nul_fields(item, at, found);
                at.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = at.len();
                if key.contains('\0') {
                    found.push(FieldProblem::new(
                        at.clone(),
                        format!("a member name {NUL_DETAIL}"),
                    ));
                    continue;
                }
                at.push('/');
                at.push_str(&escape_pointer(key));
                json_nul_fields(item, at, found);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Percent-decoding to bytes (a stray `%` stays as it is).
fn percent_decode(input: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(input).collect()
}

/// Form and query encoding: `+` is a space, then percent-decoding.
fn form_decode(input: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = input
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&spaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_nul_is_named_by_pointer() {
        let body = br#"{"name":"ok","tiers":[{"name":"a"},{"na/me":"b\u0000"}],"x\u0000":1}"#;
        let found = BodyKind::Json.nul_fields(body);
        let pointers: Vec<&str> = found.iter().map(|f| f.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["/tiers/1/na~1me", ""]);
        // An escaped backslash before "u0000" is no NUL.
        assert!(BodyKind::Json.nul_fields(br#"{"a":"\\u0000"}"#).is_empty());
        assert!(!has_nul_escape(br#"{"a":"\\u0000"}"#));
        assert!(has_nul_escape(br#"{"a":"\\\u0000"}"#));
    }

    #[test]
    fn form_nul_is_named_by_field() {
        let found = BodyKind::Form.nul_fields(b"name=Ann&email=a%00b&consent=on");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/email");
        assert!(BodyKind::Form.nul_fields(b"name=A+B%20C").is_empty());
    }

    #[test]
    fn decoding_keeps_bytes_and_tolerates_stray_percents() {
        assert_eq!(percent_decode(b"/a%00b%zz%4"), b"/a\0b%zz%4".to_vec());
        assert_eq!(percent_decode(b"%FF"), vec![0xFF]);
    }
}

/// Which methods each path serves, so a known path asked with another method answers 405
/// with `Allow` rather than 404 (actix's macro routes are separate resources, each with its
/// own method guard, and fall through to the default service). Built from the OpenAPI
/// document, which lists every route the app serves, plus the few that are not in it.
#[derive(Clone, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<Segment>, Vec<&'static str>)>,
}

#[derive(Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one segment.
    Any,
    /// `{tail:.*}`: everything that follows.
    Rest,
}

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut table = Self::default();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("HEAD", item.head.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
                ("OPTIONS", item.options.is_some()),
            ];
            for (method, served) in methods {
                if served {
                    table.add(path, method);
                }
            }
        }
        table
    }

    /// Adds a route the OpenAPI document does not list (`{_:.*}` matches the rest).
    pub fn add(&mut self, pattern: &str, method: &'static str) {
        let segments: Vec<Segment> = pattern
            .trim_start_matches('/')
            .split('/')
            .map(|s| match s {
                s if s.starts_with('{') && s.contains(":.*") => Segment::Rest,
                s if s.starts_with('{') => Segment::Any,
                s => Segment::Literal(s.to_string()),
            })
            .collect();
        match self.routes.iter_mut().find(|(p, _)| *p == segments) {
            Some((_, methods)) if !methods.contains(&method) => methods.push(method),
            Some(_) => {}
            None => self.routes.push((segments, vec![method])),
        }
    }

    /// The methods served on `path`, in a stable order; empty for an unknown path.
    pub fn allowed(&self, path: &str) -> Vec<&'static str> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut allowed: Vec<&'static str> = Vec::new();
        for (pattern, methods) in &self.routes {
            if matches(pattern, &parts) {
                for m in methods {
                    if !allowed.contains(m) {
                        allowed.push(m);
                    }
                }
            }
        }
        let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        allowed.sort_by_key(|m| order.iter().position(|o| o == m));
        allowed
    }
}

fn matches(pattern: &[Segment], parts: &[&str]) -> bool {
    match (pattern.split_first(), parts.split_first()) {
        (Some((Segment::Rest, _)), _) => true,
        (None, None) => true,
        (Some((Segment::Any, rest)), Some((part, more))) => !part.is_empty() && matches(rest, more),
        (Some((Segment::Literal(l), rest)), Some((part, more))) => l == part && matches(rest, more),
        _ => false,
    }
}

/// The app's default service: 405 with `Allow` on a known path, 404 otherwise.
pub async fn no_route(
    req: actix_web::HttpRequest,
    table: web::Data<RouteTable>,
) -> actix_web::HttpResponse {
    let allowed = table.allowed(req.path());
    if allowed.is_empty() {
        return actix_web::HttpResponse::from_error(ApiError::not_found(format!(
            "no route for {} {}",
            req.method(),
            req.path()
        )));
    }
    let allow = allowed.join(", ");
    let mut res = actix_web::HttpResponse::from_error(ApiError::new(
        ProblemKind::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; use {allow}",
            req.method(),
            req.path()
        ),
    ));
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

#[cfg(test)]
mod table_tests {
    use super::RouteTable;

    #[test]
    fn known_paths_list_their_methods() {
        let mut t = RouteTable::default();
        t.add("/api/v1/templates", "GET");
        t.add("/api/v1/templates", "POST");
        t.add("/api/v1/templates/{id}", "PUT");
        t.add("/api/v1/templates/{id}", "GET");
        t.add("/docs/{_:.*}", "GET");
        assert_eq!(t.allowed("/api/v1/templates"), vec!["GET", "POST"]);
        assert_eq!(t.allowed("/api/v1/templates/x"), vec!["GET", "PUT"]);
        assert_eq!(t.allowed("/docs/index.html"), vec!["GET"]);
        assert!(t.allowed("/api/v1/templates/x/y").is_empty());
        assert!(t.allowed("/api/v1/templates/").is_empty());
        assert!(t.allowed("/nope").is_empty());
    }
}
