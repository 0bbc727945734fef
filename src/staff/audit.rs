//! The audit log: one append-only line per thing a person did in the console (the table
//! refuses UPDATE and DELETE). A later console action adds its line with one call:
//!
//! ```ignore
//! audit::record(conn, &session.actor(), now, audit::TEMPLATE_PUBLISH, json!({"template": id}))?;
//! ```
//! inside the transaction of the change itself, so a change is never without its line.

use crate::db::Tenant;
use crate::models::staff::AuditEntry;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

/// Who did it: the merchant, the staff member (none for the command line), and the client
/// address (none for the command line).
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant: Tenant,
    pub staff_id: Option<Uuid>,
    pub client: Option<String>,
}

// Actions written so far; later ones add a constant here.
pub const SIGN_IN: &str = "sign_in";
pub const SIGN_IN_FAILED: &str = "sign_in_failed";
pub const SIGN_IN_LIMITED: &str = "sign_in_limited";
pub const SIGN_OUT: &str = "sign_out";
pub const SIGN_OUT_EVERYWHERE: &str = "sign_out_everywhere";
pub const STAFF_CREATE: &str = "staff_create";
pub const INVITE: &str = "invite";
pub const INVITATION_REVOKE: &str = "invitation_revoke";
pub const INVITATION_ACCEPT: &str = "invitation_accept";
pub const ROLE_CHANGE: &str = "role_change";
pub const STAFF_REMOVE: &str = "staff_remove";
pub const PASSWORD_CHANGE: &str = "password_change";
pub const LANGUAGE_CHANGE: &str = "language_change";
pub const TEMPLATE_DRAFT_SAVE: &str = "template_draft_save";
pub const TEMPLATE_IMAGE: &str = "template_image";
pub const TEMPLATE_DRAFT_DISCARD: &str = "template_draft_discard";
pub const TEMPLATE_PUBLISH: &str = "template_publish";
pub const TEMPLATE_ROLLBACK: &str = "template_rollback";
pub const POINTS_ADJUST: &str = "points_adjust";
pub const PROGRAM_CHANGE: &str = "program_change";
pub const GIFT_CARD_DEACTIVATE: &str = "gift_card_deactivate";
pub const API_KEY_CREATE: &str = "api_key_create";
pub const API_KEY_REVOKE: &str = "api_key_revoke";
pub const WEBHOOK_CREATE: &str = "webhook_create";
pub const WEBHOOK_CHANGE: &str = "webhook_change";
pub const WEBHOOK_ROTATE: &str = "webhook_rotate";
pub const WEBHOOK_DELETE: &str = "webhook_delete";
pub const WEBHOOK_RESEND: &str = "webhook_resend";
pub const CAMPAIGN_CREATE: &str = "campaign_create";
pub const CAMPAIGN_CANCEL: &str = "campaign_cancel";
pub const AUTOMATION_CREATE: &str = "automation_create";
pub const AUTOMATION_PAUSE: &str = "automation_pause";
pub const AUTOMATION_RESUME: &str = "automation_resume";
pub const MEMBER_ERASE: &str = "member_erase";
pub const IMPORT_START: &str = "import_start";

/// Appends one line.
pub fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    at: DateTime<Utc>,
    action: &str,
    details: serde_json::Value,
) -> QueryResult<()> {
    AuditEntry::insert(
        conn,
        &actor.tenant,
        actor.staff_id,
        action,
        &details,
        actor.client.as_deref(),
        at,
    )
    .map(drop)
}

/// Lines shown per page of the audit log.
pub const PAGE: i64 = 50;

/// A page of the log: lines (each with the email of its staff member while the account
/// exists), newest first, and the cursor of the next (older) page.
pub struct Page {
    pub lines: Vec<(AuditEntry, Option<String>)>,
    pub next: Option<i64>,
}

/// The page of lines older than `before` (the newest without it).
pub fn page(conn: &mut PgConnection, tenant: &Tenant, before: Option<i64>) -> QueryResult<Page> {
    let mut lines = AuditEntry::page(conn, tenant, before, PAGE + 1)?;
    let next = if lines.len() as i64 > PAGE {
        lines.truncate(PAGE as usize);
        lines.last().map(|(e, _)| e.id)
    } else {
        None
    };
    Ok(Page { lines, next })
}
