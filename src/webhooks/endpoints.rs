//! A merchant's webhook endpoints: where to send, which events, and the secret to sign with.

use super::{safety, signing, EVENT_TYPES};
use crate::db::Tenant;
use crate::problem::FieldProblem;
use crate::schema::{outbox, webhook_endpoints};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long a rotated-out secret still signs (so receivers can switch without a gap).
pub const PREVIOUS_SECRET_HOURS: i64 = 24;
/// Endpoints one merchant may have.
pub const MAX_ENDPOINTS: i64 = 50;
const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Disabled by passfold after failing for days, not by a person: what the console's
    /// home page warns of.
    pub fn gave_up(&self) -> bool {
        !self.enabled && self.disabled_reason.is_some()
    }

    /// The keys that sign a delivery at `now`: the secret, and the previous one for 24 hours
    /// after a rotation.
    pub fn signing_keys(&self, now: DateTime<Utc>) -> Vec<Vec<u8>> {
        let previous = self
            .previous_secret
            .as_deref()
            .filter(|_| self.previous_secret_until.is_some_and(|until| now < until));
        std::iter::once(self.secret.as_str())
            .chain(previous)
            .filter_map(signing::key_of)
            .collect()
    }
}

/// What an endpoint is, as the merchant says it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// https URL receiving POSTs (a public address).
    pub url: String,
    /// Event types to receive (see the `webhooks` section of this document).
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Defaults to true.
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; what is left out stays.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// An empty text removes the description.
    pub description: Option<String>,
    /// Enabling an endpoint that was disabled after failing starts its failure count over.
    pub enabled: Option<bool>,
}

/// Checks the event list: known types, at least one, no repeats (kept in the given order).
pub fn check_events(events: &[String], problems: &mut Vec<FieldProblem>) -> Vec<String> {
    if events.is_empty() || events.len() > 100 {
        problems.push(FieldProblem::new("/events", "from 1 to 100 event types"));
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            problems.push(FieldProblem::new(
                format!("/events/{i}"),
                format!("unknown event type; one of {}", EVENT_TYPES.join(", ")),
            ));
        } else if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

/// Checks a description's length; an empty one is none.
pub fn check_description(text: Option<&str>, problems: &mut Vec<FieldProblem>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    if text.chars().count() > MAX_DESCRIPTION {
        problems.push(FieldProblem::new(
            "/description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Some(text.to_string())
}

/// Checks a URL's shape and where it resolves now; returns it as it will be stored.
pub async fn check_url(text: &str, allow_private: bool) -> Result<String, FieldProblem> {
    let target = safety::parse(text, allow_private).map_err(|e| FieldProblem::new("/url", e))?;
    safety::resolve(&target, allow_private)
        .await
        .map_err(|e| FieldProblem::new("/url", e))?;
    Ok(target.url.to_string())
}

/// The merchant has as many endpoints as allowed.
#[derive(Debug)]
pub struct TooMany;

/// Stores a checked endpoint with a new secret.
pub fn create(
    conn: &mut PgConnection,
    tenant: &Tenant,
    url: &str,
    events: &[String],
    description: Option<&str>,
    enabled: bool,
    now: DateTime<Utc>,
) -> QueryResult<Result<Endpoint, TooMany>> {
    conn.transaction(|conn| {
        let count: i64 = webhook_endpoints::table
            .filter(webhook_endpoints::merchant_id.eq(tenant.merchant_id()))
            .count()
            .get_result(conn)?;
        if count >= MAX_ENDPOINTS {
            return Ok(Err(TooMany));
        }
        diesel::insert_into(webhook_endpoints::table)
            .values((
                webhook_endpoints::id.eq(Uuid::new_v4()),
                webhook_endpoints::merchant_id.eq(tenant.merchant_id()),
                webhook_endpoints::url.eq(url),
                webhook_endpoints::description.eq(description),
                webhook_endpoints::events.eq(events),
                webhook_endpoints::enabled.eq(enabled),
                webhook_endpoints::secret.eq(signing::new_secret()),
                webhook_endpoints::created_at.eq(now),
                webhook_endpoints::updated_at.eq(now),
            ))
            .returning(Endpoint::as_returning())
            .get_result(conn)
            .map(Ok)
    })
}

pub fn list(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::merchant_id.eq(tenant.merchant_id()))
        .order((webhook_endpoints::created_at, webhook_endpoints::id))
        .select(Endpoint::as_select())
        .load(conn)
}

pub fn find(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<Endpoint> {
    webhook_endpoints::table
        .filter(webhook_endpoints::merchant_id.eq(tenant.merchant_id()))
        .filter(webhook_endpoints::id.eq(id))
        .select(Endpoint::as_select())
        .first(conn)
}

/// Checked changes, as [`update`] applies them.
#[derive(Debug, Default)]
pub struct Checked {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

pub fn update(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: Uuid,
    changes: Checked,
    now: DateTime<Utc>,
) -> QueryResult<Endpoint> {
    conn.transaction(|conn| {
        let current = find(conn, tenant, id)?;
        let enabling = changes.enabled == Some(true) && !current.enabled;
        let target = webhook_endpoints::table
            .filter(webhook_endpoints::merchant_id.eq(tenant.merchant_id()))
            .filter(webhook_endpoints::id.eq(id));
        let endpoint = diesel::update(target)
            .set((
                webhook_endpoints::url.eq(changes.url.unwrap_or(current.url)),
                webhook_endpoints::events.eq(changes.events.unwrap_or(current.events)),
                webhook_endpoints::description
                    .eq(changes.description.unwrap_or(current.description)),
                webhook_endpoints::enabled.eq(changes.enabled.unwrap_or(current.enabled)),
                webhook_endpoints::updated_at.eq(now),
            ))
            .returning(Endpoint::as_returning())
            .get_result(conn)?;
        if enabling {
            diesel::update(target)
                .set((
                    webhook_endpoints::failing_since.eq(None::<DateTime<Utc>>),
                    webhook_endpoints::disabled_reason.eq(None::<String>),
                ))
                .execute(conn)?;
        }
        if changes.enabled == Some(false) {
            // A disabled endpoint is sent nothing: what waited for it is dropped (a replay
            // after enabling it again sends it).
            forget_queue(conn, tenant, id)?;
        }
        find(conn, tenant, endpoint.id)
    })
}

/// Deletes the endpoint, its queue and its delivery log.
pub fn delete(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<bool> {
    conn.transaction(|conn| {
        forget_queue(conn, tenant, id)?;
        let n = diesel::delete(
            webhook_endpoints::table
                .filter(webhook_endpoints::merchant_id.eq(tenant.merchant_id()))
                .filter(webhook_endpoints::id.eq(id)),
        )
        .execute(conn)?;
        Ok(n > 0)
    })
}

/// A new secret; the current one keeps signing for [`PREVIOUS_SECRET_HOURS`].
pub fn rotate(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Endpoint> {
    conn.transaction(|conn| {
        let current = find(conn, tenant, id)?;
        diesel::update(
            webhook_endpoints::table
                .filter(webhook_endpoints::merchant_id.eq(tenant.merchant_id()))
                .filter(webhook_endpoints::id.eq(id)),
        )
        .set((
            webhook_endpoints::previous_secret.eq(Some(current.secret)),
            webhook_endpoints::previous_secret_until
                .eq(Some(now + Duration::hours(PREVIOUS_SECRET_HOURS))),
            webhook_endpoints::secret.eq(signing::new_secret()),
            webhook_endpoints::updated_at.eq(now),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
    })
}

fn forget_queue(conn: &mut PgConnection, tenant: &Tenant, id: Uuid) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::merchant_id.eq(tenant.merchant_id()))
            .filter(outbox::endpoint_id.eq(id)),
    )
    .execute(conn)
}

/// An endpoint as the API shows it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why passfold disabled it (failing deliveries), when it did.
    pub disabled_reason: Option<String>,
    /// Deliveries have been failing since then.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until then the secret replaced by the last rotation signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            id: e.id,
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            previous_secret_until: e.previous_secret_until,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}
