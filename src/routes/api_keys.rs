use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::db;
use crate::domain::Scope;
use crate::models::api_key::{ApiKey, LastAdminKey};
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub scope: Scope,
    /// Free text to tell keys apart, e.g. the till's name.
    pub label: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub scope: Scope,
    pub label: Option<String>,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The secret. Shown only in this answer; passfold keeps only its hash.
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            scope: k.scope,
            label: k.label,
            prefix: k.display_prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// Issue a new API key.
#[utoipa::path(operation_id = "createApiKey", tag = "api keys", security(("bearer" = ["admin"])), request_body = CreateApiKey, responses(crate::openapi::AdminKey, crate::openapi::JsonBody,
    (status = 201, body = CreatedApiKey)))]
#[post("/api-keys")]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let CreateApiKey { scope, label } = body.into_inner();
    let label = label
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/label",
            "at most 100 characters",
        )]));
    }
    let tenant = caller.0.tenant;
    let (key, secret) = db::run(&state.pool, move |conn| {
        Ok(ApiKey::issue(conn, &tenant, scope, label.as_deref())?)
    })
    .await?;
    Ok(HttpResponse::Created().json(CreatedApiKey {
        api_key: key.into(),
        key: secret.expose().to_string(),
    }))
}

/// List the merchant's API keys (never their secrets).
#[utoipa::path(operation_id = "listApiKeys", tag = "api keys", security(("bearer" = ["admin"])), responses(crate::openapi::AdminKey, (status = 200, body = ApiKeyList)))]
#[get("/api-keys")]
pub async fn list(
    caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let keys = db::run(&state.pool, move |conn| Ok(ApiKey::list(conn, &tenant)?)).await?;
    Ok(HttpResponse::Ok().json(ApiKeyList {
        api_keys: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke an API key. The last active admin key cannot be revoked.
#[utoipa::path(operation_id = "revokeApiKey", tag = "api keys", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)), responses(crate::openapi::AdminKey, crate::openapi::PathObject,
    crate::openapi::LastAdminKey, (status = 200, body = ApiKeyView)))]
#[delete("/api-keys/{id}")]
pub async fn revoke(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.0.tenant;
    let id = id.into_inner();
    let revoked = db::run(&state.pool, move |conn| {
        Ok(ApiKey::revoke(conn, &tenant, id)?)
    })
    .await?;
    match revoked {
        Ok(key) => {
            state.api_keys.clear();
            Ok(HttpResponse::Ok().json(ApiKeyView::from(key)))
        }
        Err(LastAdminKey) => Err(ApiError::new(
            ProblemKind::Conflict,
            "this is the merchant's last active admin key; issue another admin key first",
        )),
    }
}
