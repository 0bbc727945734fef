//! The OpenAPI document's frame; paths are collected from the handlers as they are mounted
//! (utoipa-actix-web), so a route cannot be served without being documented.
//!
//! Handlers declare what is theirs (success answers, and the conflicts or rate limits they
//! know of) and list the standard error sets their shape calls for ([`AdminKey`],
//! [`JsonBody`], [`PathObject`], ...): each set stands for a few references to the reusable
//! problem answers under `components/responses`. (A `Modify` pass cannot add them: it runs
//! before utoipa-actix-web collects the paths.) Answers particular to a few operations are
//! declared once here too ([`RedeemRefusals`], [`JoinRefusals`], ...), as is the
//! [`IdempotencyKeyHeader`] parameter. tests/api/openapi.rs checks that every operation lists
//! what its shape needs.

use std::collections::BTreeMap;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "passfold",
        description = "Apple Wallet and Google Wallet loyalty cards and gift cards, issued and kept live. \
                       Errors are application/problem+json."
    ),
    components(schemas(crate::problem::Problem, crate::problem::FieldProblem)),
    modifiers(&BearerKeys, &StandardErrors, &WebhookEvents)
)]
pub struct ApiDoc;

/// Operations name a role in their bearer requirement (OpenAPI 3.1 allows role names in
/// non-OAuth requirements): `admin` needs an admin key, `pos` takes a pos or an admin key.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "An API key (`pf_...`). Operations requiring the role `admin` need an admin key; \
             those requiring `pos` take a pos or an admin key."
                .to_string(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// One reusable error answer: its name under `components/responses`, status, description.
const STANDARD: &[(&str, &str, &str)] = &[
    ("BadRequest", "400", "The request is malformed: unreadable JSON, a value of the wrong type (e.g. a fraction or a number beyond 64 bits where an integer is expected), or a missing header"),
    ("Unauthorized", "401", "No API key, or an unknown or revoked one"),
    ("Forbidden", "403", "The key's scope does not allow this (a pos key on an admin operation)"),
    ("NotFound", "404", "No such object for this merchant"),
    ("Conflict", "409", "The request conflicts with the current state, or a request with this Idempotency-Key is still running"),
    ("PayloadTooLarge", "413", "The body is larger than PASSFOLD_BODY_LIMIT_BYTES"),
    ("UnsupportedMediaType", "415", "The body is not sent as application/json"),
    ("Unprocessable", "422", "The input is not valid; `errors` names each field by its JSON pointer"),
    ("TooManyRequests", "429", "Too many requests from this address, or in all; retry after Retry-After"),
    ("Unavailable", "503", "The database is not reachable right now; retry after Retry-After"),
];

/// Registers the standard error answers under `components/responses`, each
/// `application/problem+json` with the `Problem` schema; operations reference them through
/// the [`IntoResponses`] types below.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, _, description) in STANDARD {
            components
                .responses
                .insert(name.to_string(), RefOr::T(problem_response(description)));
        }
        // `errors` is left out of the document when empty: it is not required.
        if let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("Problem") {
            problem.required.retain(|f| f != "errors");
        }
    }
}

fn refs(statuses: &[&str]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .filter_map(|status| STANDARD.iter().find(|(_, s, _)| s == status))
        .map(|(name, status, _)| {
            (
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// Declares a set of standard error answers, named by what in an operation calls for them;
/// a handler lists the sets that fit it first in `responses(...)`, so that its own, more
/// specific answers (listed after) replace a standard one of the same status.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident: $($status:literal),+) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                refs(&[$($status),+])
            }
        }
    };
}

error_set!(
    /// A pos or an admin key (role `pos`); the key is checked against the database.
    PosKey: "401", "503"
);
error_set!(
    /// An admin key (role `admin`): a pos key is refused with 403.
    AdminKey: "401", "403", "503"
);
error_set!(
    /// A JSON body: unreadable or mistyped (400), too large (413), not JSON (415), invalid (422).
    JsonBody: "400", "413", "415", "422"
);
error_set!(
    /// A form body (the public pages): unreadable (400), too large (413), not a form (415).
    FormBody: "400", "413", "415"
);
error_set!(
    /// An object named in the path: a segment no database can hold, such as a NUL (400),
    /// or no such object (404).
    PathObject: "400", "404"
);
error_set!(
    /// A gift card's number in the path: an unreadable segment (400), a malformed number
    /// (422) or no such card (404).
    CardPath: "400", "404", "422"
);
error_set!(
    /// Query parameters: missing or mistyped (400), invalid (422).
    Query: "400", "422"
);
error_set!(
    /// An `Idempotency-Key`: missing (400), still running (409), reused with another body (422).
    Idempotent: "400", "409", "422"
);
error_set!(
    /// No key, but the database answers it.
    Database: "503"
);
error_set!(
    /// Limited per client address or overall (429, with Retry-After).
    RateLimited: "429"
);

/// Declares problem answers specific to a few operations, with their own descriptions
/// (inline, not under `components/responses`); listed after the standard sets, they replace
/// a standard answer of the same status.
macro_rules! problem_answers {
    ($(#[$doc:meta])* $name:ident: $($status:literal => $description:literal),+ $(,)?) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([$(
                    ($status.to_string(), RefOr::T(problem_response($description))),
                )+])
            }
        }
    };
}

problem_answers!(
    /// What a redemption is refused with, beyond the standard answers.
    RedeemRefusals:
        "409" => "insufficient-funds, card-inactive or idempotency-key-in-use",
        "422" => "validation, currency-mismatch or idempotency-key-reuse",
);
problem_answers!(
    /// Enrolling someone whose email, phone or external id a member of the program has.
    MemberExists: "409" => "A member of the program has this email, phone or external id"
);
problem_answers!(
    /// An erased member's card: it neither earns, spends nor changes.
    MemberErased: "410" => "gone: the member's personal data was erased (DELETE /members/{id})"
);
problem_answers!(
    /// A points adjustment refused.
    PointsRefusals:
        "409" => "insufficient-funds (the points would go below zero) or idempotency-key-in-use"
);
problem_answers!(
    /// The public balance check: no such card, or not its PIN (not told apart).
    UnknownCardOrPin: "404" => "Unknown card or wrong PIN"
);
problem_answers!(
    /// Creating a template under an id already used.
    TemplateExists: "409" => "A template with this id exists"
);
problem_answers!(
    /// Publishing a template's draft.
    PublishRefusals:
        "409" => "No draft to publish, or the draft was started from a version older than the current one",
        "422" => "The draft does not validate; `errors` names each field by its JSON pointer",
);
problem_answers!(
    /// Publishing an earlier version of a template again.
    RestoreRefusals:
        "422" => "The earlier version does not pass today's checks; `errors` names each field",
);
problem_answers!(
    /// An image upload: a raw PNG or JPEG body.
    ImageUpload:
        "400" => "The body could not be read",
        "409" => "The template changed while the image was being fitted: send it again",
        "413" => "The body is larger than PASSFOLD_BODY_LIMIT_BYTES",
        "415" => "The body is not sent as image/png or image/jpeg",
        "422" => "The image cannot be used (not PNG/JPEG, broken, too small or too large), \
                  each reason with the slot's pointer",
);
problem_answers!(
    /// A CSV upload for an import.
    CsvUpload:
        "400" => "The body could not be read, or is empty",
        "404" => "No such program (or template) of this merchant",
        "408" => "The body did not arrive within PASSFOLD_BODY_TIMEOUT_SECS",
        "413" => "The file is larger than 100 MB",
        "415" => "The body is not sent as text/csv",
        "422" => "A query parameter is missing or invalid; `errors` names each",
);
problem_answers!(
    /// Cancelling a campaign whose audience is already fixed.
    CampaignStarted: "409" => "conflict: the campaign is sending or sent"
);
problem_answers!(
    /// Revoking the merchant's last active admin key.
    LastAdminKey: "409" => "The merchant's last active admin key cannot be revoked"
);
problem_answers!(
    /// Apple's web service: the pass's `ApplePass` token is missing or wrong.
    ApplePassToken: "401" => "The pass's ApplePass authentication token is missing or wrong"
);
problem_answers!(
    /// Apple's web service: registration limits (per pass and per device).
    RegistrationLimits:
        "403" => "The pass or the device holds as many registrations as allowed"
);
problem_answers!(
    /// Google's save and delete callbacks.
    GoogleCallbackRefusals:
        "401" => "The signature does not verify",
        "413" => "The body is larger than 64 KiB",
);
problem_answers!(
    /// A public link, file or image that does not exist (no merchant's key is involved).
    Missing: "404" => "Unknown link or file"
);
problem_answers!(
    /// The readiness probe.
    NotReady: "503" => "The database does not answer"
);
problem_answers!(
    /// A problem page by name.
    NoSuchProblem: "404" => "No such problem"
);
problem_answers!(
    /// What a pos key may not record without an admin key (the program's pos limits, and
    /// times long past).
    PosLimit:
        "403" => "Beyond a pos key: more than the program's pos_max_purchase or pos_max_points_adjustment, or a purchased_at more than 48 hours back; an admin key may"
);
problem_answers!(
    /// A receipt dated long ago by a pos key.
    PosBackdate: "403" => "A purchased_at more than 48 hours back needs an admin key"
);
problem_answers!(
    /// Sending a webhook endpoint's messages again.
    EndpointDisabled: "409" => "The endpoint is disabled: enable it first"
);
problem_answers!(
    /// Adding a webhook endpoint.
    EndpointLimit: "409" => "The merchant has the most webhook endpoints allowed"
);

/// The public pages' answer to a code or token that names nothing: an HTML page.
pub struct UnknownLink;

impl IntoResponses for UnknownLink {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("404".to_string(), RefOr::T(page_response("Unknown link")))])
    }
}

/// What a join form is answered with when it does not join: HTML pages, and a problem for a
/// field no database can store.
pub struct JoinRefusals;

impl IntoResponses for JoinRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut invalid = page_response(
            "The form again, with what to fix (HTML); a field no database can store, such as a \
             NUL character, is refused before the page as a problem",
        );
        invalid.content.insert(
            crate::problem::PROBLEM_CONTENT_TYPE.to_string(),
            Content::new(Some(Ref::from_schema_name("Problem"))),
        );
        BTreeMap::from([
            ("403", page_response("Missing or wrong CSRF token")),
            ("409", page_response("Already a member")),
            ("422", invalid),
            ("429", page_response("Too many joins from this address")),
        ])
        .into_iter()
        .map(|(status, response)| (status.to_string(), RefOr::T(response)))
        .collect()
    }
}

fn page_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response
        .content
        .insert("text/html".to_string(), Content::new(None::<RefOr<Schema>>));
    response
}

/// The `Idempotency-Key` header every POS mutation needs, as a parameter.
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[!-~]+$"));
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(
                "1 to 255 visible ASCII characters, unique per intended change",
            ))
            .schema(Some(schema))
            .build()]
    }
}

fn problem_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        crate::problem::PROBLEM_CONTENT_TYPE.to_string(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    response
}

/// The events passfold POSTs to webhook endpoints, as OpenAPI 3.1's top-level `webhooks`:
/// one operation per event type, its body's schema and the Standard Webhooks headers.
/// (utoipa has no field for it; the document's extensions are serialized at its top level.)
struct WebhookEvents;

impl Modify for WebhookEvents {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut webhooks = serde_json::Map::new();
        for (kind, when, data) in crate::webhooks::events::SCHEMAS {
            webhooks.insert(kind.to_string(), webhook_operation(kind, when, data));
        }
        openapi
            .extensions
            .get_or_insert_with(Default::default)
            .insert("webhooks".into(), serde_json::Value::Object(webhooks));
    }
}

fn webhook_operation(kind: &str, when: &str, data: &[(&str, &str)]) -> serde_json::Value {
    use serde_json::json;
    let properties: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(name, ty)| {
            let schema = match *ty {
                "uuid" => json!({"type": "string", "format": "uuid"}),
                "uuid?" => json!({"type": ["string", "null"], "format": "uuid"}),
                "time" => json!({"type": "string", "format": "date-time"}),
                "time?" => json!({"type": ["string", "null"], "format": "date-time"}),
                "string[]" => json!({"type": "array", "items": {"type": "string"}}),
                optional if optional.ends_with('?') => {
                    json!({"type": [optional.trim_end_matches('?'), "null"]})
                }
                plain => json!({"type": plain}),
            };
            (name.to_string(), schema)
        })
        .collect();
    let header = |name: &str, description: &str| {
        json!({"name": name, "in": "header", "required": true,
               "description": description, "schema": {"type": "string"}})
    };
    json!({"post": {
        "operationId": format!("webhook.{kind}"),
        "tags": ["webhooks"],
        "summary": when,
        "description": "Signed per Standard Webhooks (docs/WEBHOOKS.md). Any 2xx within 15 s acknowledges the message; anything else is retried with backoff for up to 3 days.",
        "parameters": [
            header("webhook-id", "The message id (`msg_...`), the same on every attempt: deduplicate by it."),
            header("webhook-timestamp", "Seconds since the epoch when the attempt was made."),
            header("webhook-signature", "`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the base64-decoded secret after `whsec_`; two, space-separated, for 24 hours after a rotation."),
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"const": kind},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": {"type": "object", "properties": properties},
            },
        }}}},
        "responses": {"2XX": {"description": "Received"}},
    }})
}
