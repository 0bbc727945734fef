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
/// Where the problem pages live, under the public URL (see `routes::problems`).
pub const PROBLEMS_PATH: &str = "/problems/";
/// The base of `type` before this service served its own problem pages; answers stored
/// under idempotency keys may still carry it and are rewritten on replay.
const OLD_TYPE_BASE: &str = "https://passfold.dev/problems/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Unauthorized,
    Forbidden,
    NotFound,
    Validation,
    InsufficientFunds,
    CardInactive,
    Gone,
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
    pub const ALL: [ProblemKind; 19] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Validation,
        Self::InsufficientFunds,
        Self::CardInactive,
        Self::Gone,
        Self::CurrencyMismatch,
        Self::IdempotencyKeyReuse,
        Self::IdempotencyKeyInUse,
        Self::RateLimited,
        Self::Conflict,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::NotAcceptable,
        Self::RequestTimeout,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// The problem's `type`: its page under `base` (the public URL, no trailing slash).
    pub fn type_uri(self, base: &str) -> String {
        format!("{base}{PROBLEMS_PATH}{}", self.slug())
    }

    pub fn slug(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::Validation => "validation",
            Self::InsufficientFunds => "insufficient-funds",
            Self::CardInactive => "card-inactive",
            Self::Gone => "gone",
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
            Self::Gone => StatusCode::GONE,
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

    pub fn title(self) -> &'static str {
        match self {
            Self::Unauthorized => "Missing or invalid credentials",
            Self::Forbidden => "Not allowed for this key",
            Self::NotFound => "Not found",
            Self::Validation => "The request is not valid",
            Self::InsufficientFunds => "Insufficient funds",
            Self::CardInactive => "The card is not active",
            Self::Gone => "The member's personal data was erased",
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
            410 => Self::Gone,
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

    /// The document with a relative `type` (`/problems/{name}`); the error handler
    /// ([`normalize_error_responses`]) makes it absolute with the public URL before it
    /// leaves the service.
    pub fn body(&self) -> serde_json::Value {
        self.body_at("")
    }

    /// The document with `type` under `base` (the public URL).
    pub fn body_at(&self, base: &str) -> serde_json::Value {
        let problem = Problem {
            type_: self.kind.type_uri(base),
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
    /// Errors the database reports about the data (constraints) are the client's: a 409 or
    /// 422 and a warning, never a 500. The mapping follows diesel's kind, which diesel
    /// derives from the SQLSTATE; the message text (localized by the server) is never read.
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::DatabaseErrorKind as K;
        use diesel::result::Error as E;
        let (kind, info) = match e {
            E::NotFound => return ApiError::not_found("no such object"),
            E::DatabaseError(kind, info) => (kind, info),
            other => {
                tracing::error!(error = %other, "database error");
                return ApiError::internal("a database error occurred; it has been logged");
            }
        };
        let rule = info
            .constraint_name()
            .or(info.column_name())
            .unwrap_or("unnamed")
            .to_string();
        let (problem, retry) = match kind {
            K::UniqueViolation | K::ExclusionViolation => (
                ApiError::new(
                    ProblemKind::Conflict,
                    format!("this conflicts with an existing object ({rule})"),
                ),
                false,
            ),
            K::ForeignKeyViolation | K::RestrictViolation => (
                ApiError::new(
                    ProblemKind::Conflict,
                    format!("this conflicts with a related object ({rule})"),
                ),
                false,
            ),
            K::CheckViolation => (
                ApiError::validation(format!("a value is outside what is allowed ({rule})")),
                false,
            ),
            K::NotNullViolation => (
                ApiError::validation(format!("a required value is missing ({rule})")),
                false,
            ),
            K::SerializationFailure => (
                ApiError::new(
                    ProblemKind::Conflict,
                    "a concurrent change got in the way; retry the request",
                )
                .with_retry_after(1),
                true,
            ),
            K::ReadOnlyTransaction | K::ClosedConnection | K::UnableToSendCommand => {
                tracing::error!(error = %info.message(), "database unavailable");
                return ApiError::new(
                    ProblemKind::Unavailable,
                    "the database is not reachable right now",
                )
                .with_retry_after(1);
            }
            _ => {
                tracing::error!(
                    error = %info.message(),
                    details = info.details().unwrap_or(""),
                    "database error"
                );
                return ApiError::internal("a database error occurred; it has been logged");
            }
        };
        tracing::warn!(
            ?kind,
            rule,
            table = info.table_name().unwrap_or(""),
            retry,
            "the database refused a change"
        );
        problem
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

/// The public URL the problem `type`s live under, from the app's settings.
fn public_base(req: &actix_web::HttpRequest) -> String {
    req.app_data::<actix_web::web::Data<ProblemBase>>()
        .map(|base| base.0.clone())
        .unwrap_or_default()
}

/// The public URL problem `type`s live under, registered by `startup` as app data of its
/// own (this module sits below the application state).
pub struct ProblemBase(pub String);

/// A stored problem document (an idempotent replay) with its `type` made absolute.
fn absolute_type(body: &[u8], base: &str) -> Option<Vec<u8>> {
    let mut doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let type_ = doc.get_mut("type")?;
    let name = type_
        .as_str()?
        .strip_prefix(PROBLEMS_PATH)
        .or_else(|| type_.as_str()?.strip_prefix(OLD_TYPE_BASE))?
        .to_string();
    *type_ = serde_json::Value::String(format!("{base}{PROBLEMS_PATH}{name}"));
    serde_json::to_vec(&doc).ok()
}

/// Middleware hook (see `startup`): gives every problem its absolute `type` under the public
/// URL, and turns every 4xx/5xx that is not already a problem document (actix's own answers
/// to bad JSON, unknown routes, oversize bodies, ...) into one, keeping the status and
/// the headers.
pub fn normalize_error_responses<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>>
where
    B: actix_web::body::MessageBody + 'static,
{
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The public pages' own HTML answers pass as they are (a person reads those, in their
    // language).
    if content_type.starts_with("text/html") {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let base = public_base(res.request());
    if let Some(api) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        let body = api.body_at(&base).to_string();
        return Ok(ErrorHandlerResponse::Response(
            res.map_body(|_, _| BoxBody::new(body))
                .map_into_right_body::<B>(),
        ));
    }
    if content_type.starts_with(PROBLEM_CONTENT_TYPE) {
        // A problem without its error at hand: an answer replayed from storage.
        let (req, res) = res.into_parts();
        let (res, body) = res.into_parts();
        return Ok(ErrorHandlerResponse::Future(Box::pin(async move {
            let bytes = actix_web::body::to_bytes(body).await.map_err(|e| {
                let e: Box<dyn std::error::Error> = e.into();
                actix_web::error::ErrorInternalServerError(e.to_string())
            })?;
            let bytes = absolute_type(&bytes, &base).map_or(bytes, Into::into);
            Ok(ServiceResponse::new(req, res.set_body(BoxBody::new(bytes)))
                .map_into_right_body::<B>())
        })));
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
    let problem = ApiError::new(kind, detail).with_status(status);
    let body = problem.body_at(&base).to_string();
    Ok(ErrorHandlerResponse::Response(
        res.map_body(|head, _| {
            head.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
            );
            head.headers_mut().remove(header::CONTENT_LENGTH);
            BoxBody::new(body)
        })
        .map_into_right_body::<B>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

    struct Info;
    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            "a message in whatever language the server speaks"
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            Some("members")
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            Some("members_points_check")
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn from(kind: DatabaseErrorKind) -> ApiError {
        DieselError::DatabaseError(kind, Box::new(Info)).into()
    }

    #[test]
    fn constraint_violations_are_the_clients_not_500() {
        use DatabaseErrorKind as K;
        for (kind, status) in [
            (K::UniqueViolation, 409),
            (K::ForeignKeyViolation, 409),
            (K::RestrictViolation, 409),
            (K::ExclusionViolation, 409),
            (K::CheckViolation, 422),
            (K::NotNullViolation, 422),
            (K::SerializationFailure, 409),
            (K::ClosedConnection, 503),
        ] {
            let e = from(kind);
            assert_eq!(e.status.as_u16(), status, "{kind:?}");
        }
        assert!(from(K::CheckViolation)
            .detail
            .contains("members_points_check"));
    }

    #[test]
    fn types_live_under_the_public_url() {
        let e = ApiError::forbidden("no");
        assert_eq!(e.body()["type"], "/problems/forbidden");
        assert_eq!(
            e.body_at("https://cards.example.com")["type"],
            "https://cards.example.com/problems/forbidden"
        );
        let stored = br#"{"type":"https://passfold.dev/problems/rate-limited","status":429}"#;
        let fixed = absolute_type(stored, "https://x.example").unwrap();
        let fixed: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(fixed["type"], "https://x.example/problems/rate-limited");
    }
}
