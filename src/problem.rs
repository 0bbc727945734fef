//! Errors as RFC 9457 `application/problem+json`, with the stable `type` values of the
//! contract. Every error the service answers goes through [`ApiError`], including actix's own
//! (see [`normalize_error_responses`]), so clients parse one shape.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://passfold.dev/problems/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Unauthorized,
    Forbidden,
    NotFound,
    Validation,
    InsufficientFunds,
    CardInactive,
    CurrencyMismatch,
    IdempotencyKeyReuse,
    IdempotencyKeyInUse,
    RateLimited,
    Conflict,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    NotAcceptable,
    Unavailable,
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::Validation => "validation",
            Self::InsufficientFunds => "insufficient-funds",
            Self::CardInactive => "card-inactive",
            Self::CurrencyMismatch => "currency-mismatch",
            Self::IdempotencyKeyReuse => "idempotency-key-reuse",
            Self::IdempotencyKeyInUse => "idempotency-key-in-use",
            Self::RateLimited => "rate-limited",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::RequestTimeout => "request-timeout",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::NotAcceptable => "not-acceptable",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InsufficientFunds | Self::CardInactive | Self::IdempotencyKeyInUse => {
                StatusCode::CONFLICT
            }
            Self::Conflict => StatusCode::CONFLICT,
            Self::CurrencyMismatch | Self::IdempotencyKeyReuse => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Unauthorized => "Missing or invalid credentials",
            Self::Forbidden => "Not allowed for this key",
            Self::NotFound => "Not found",
            Self::Validation => "The request is not valid",
            Self::InsufficientFunds => "Insufficient funds",
            Self::CardInactive => "The card is not active",
            Self::CurrencyMismatch => "Currency does not match the card",
            Self::IdempotencyKeyReuse => "Idempotency key reused with another request",
            Self::IdempotencyKeyInUse => "A request with this idempotency key is in progress",
            Self::RateLimited => "Too many requests",
            Self::Conflict => "Conflict with the current state",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PayloadTooLarge => "Request body too large",
            Self::RequestTimeout => "The request was not received in time",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::NotAcceptable => "Not acceptable",
            Self::Unavailable => "Service temporarily unavailable",
            Self::Internal => "Internal error",
        }
    }

    /// The kind a bare status code stands for, for responses produced outside our handlers.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            406 => Self::NotAcceptable,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::RateLimited,
            503 => Self::Unavailable,
            400..=499 => Self::Validation,
            _ => Self::Internal,
        }
    }
}

/// One problem with one part of the input, located by a JSON pointer (RFC 6901).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldProblem {
    pub pointer: String,
    pub detail: String,
}

impl FieldProblem {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ProblemKind,
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldProblem>,
    pub retry_after: Option<u64>,
    /// Extra members merged into the problem document (e.g. the available balance).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The document as serialized; also the schema named in the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.status(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            extra: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Unauthorized, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Forbidden, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::NotFound, detail)
    }
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Validation, detail)
    }
    /// A 400 `validation` problem: the request itself is malformed (e.g. a missing header).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Validation, detail).with_status(StatusCode::BAD_REQUEST)
    }
    /// A 422 listing every problem found, each with its JSON pointer.
    pub fn invalid_fields(errors: Vec<FieldProblem>) -> Self {
        let detail = match errors.len() {
            1 => format!("{}: {}", errors[0].pointer, errors[0].detail),
            n => format!("{n} problems in the request; see errors"),
        };
        let mut e = Self::new(ProblemKind::Validation, detail);
        e.errors = errors;
        e
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Internal, detail)
    }

    pub fn with_extra(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(serde_json::Map::new)
            .insert(key.to_string(), value);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn body(&self) -> serde_json::Value {
        let problem = Problem {
            type_: format!("{TYPE_BASE}{}", self.kind.slug()),
            title: self.kind.title().to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        };
        let mut value = serde_json::to_value(problem).unwrap_or_default();
        if let (Some(extra), Some(obj)) = (&self.extra, value.as_object_mut()) {
            for (k, v) in extra {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        value
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind.slug(), self.status, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        if self.kind == ProblemKind::Unauthorized {
            builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        builder.body(self.body().to_string())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => ApiError::not_found("no such object"),
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::internal("a database error occurred; it has been logged")
            }
        }
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::error!(error = %e, "database pool exhausted or unreachable");
        ApiError::new(
            ProblemKind::Unavailable,
            "the database is not reachable right now",
        )
        .with_retry_after(1)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::new(ProblemKind::Unavailable, "the service is shutting down").with_retry_after(1)
    }
}

/// Maps actix's JSON body errors to the right status and kind (actix answers 400 to a
/// wrong content type, where 415 is the honest status).
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let problem = match &err {
        E::ContentType => ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the body as application/json",
        ),
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            ProblemKind::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        ),
        E::Deserialize(e) => ApiError::bad_request(format!("the JSON body does not fit: {e}")),
        other => ApiError::bad_request(format!("the body is not readable JSON: {other}")),
    };
    problem.into()
}

/// Middleware hook (see `startup`): turns every 4xx/5xx that is not already a problem
/// document (actix's own answers to bad JSON, unknown routes, wrong methods, oversize
/// bodies, ...) into one, keeping the status and the headers that matter.
pub fn normalize_error_responses<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Problems pass as they are, and so do the public pages' own HTML answers (a person
    // reads those, in their language).
    let keep = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_CONTENT_TYPE) || v.starts_with("text/html"));
    if keep {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let kind = ProblemKind::from_status(status);
    let detail = match (res.response().error(), kind) {
        (Some(e), ProblemKind::Internal) => {
            tracing::error!(error = %e, "unhandled error");
            "an internal error occurred; it has been logged".to_string()
        }
        (Some(e), _) => e.to_string(),
        (None, ProblemKind::NotFound) => format!(
            "no route for {} {}",
            res.request().method(),
            res.request().path()
        ),
        (None, ProblemKind::MethodNotAllowed) => format!(
            "{} is not allowed on {}",
            res.request().method(),
            res.request().path()
        ),
        (None, _) => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
    };
    let (req, old) = res.into_parts();
    let mut new = ApiError::new(kind, detail)
        .with_status(status)
        .error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body::<B>(),
    ))
}
