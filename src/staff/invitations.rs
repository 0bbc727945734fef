//! Invitations: an owner invites an email with a role and hands the one-time link over
//! (passfold sends no mail). The link's token is stored only as a hash; it works once,
//! until [`LIFETIME_DAYS`] after the invitation, and the invitee chooses a password
//! through it.

use super::audit::{self, Actor};
use super::{accounts, new_secret, secret_hash, secret_well_formed, Refusal, StaffError};
use crate::db::Tenant;
use crate::domain::{Email, Language, Password, Role};
use crate::models::staff::{Invitation, StaffMember};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

pub const LIFETIME_DAYS: i64 = 7;

/// Invites `email` as `role`; the token for the link is returned once.
pub fn invite(
    conn: &mut PgConnection,
    actor: &Actor,
    email: &Email,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(Invitation, String), StaffError> {
    let invited_by = actor.staff_id.ok_or(Refusal::NotFound)?;
    let tenant = actor.tenant;
    conn.transaction(|conn| {
        if StaffMember::by_email(conn, &tenant, email)?.is_some() {
            return Err(Refusal::EmailTaken.into());
        }
        let token = new_secret();
        let invitation = Invitation::insert(
            conn,
            &tenant,
            email,
            role,
            &secret_hash(&token),
            invited_by,
            now,
            now + Duration::days(LIFETIME_DAYS),
        )?;
        audit::record(
            conn,
            actor,
            now,
            audit::INVITE,
            json!({"invitation_id": invitation.id, "email": email.as_str(), "role": role}),
        )?;
        Ok((invitation, token))
    })
}

/// The invitation a link opens, while it can still be accepted.
pub fn open(
    conn: &mut PgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<Invitation>> {
    if !secret_well_formed(token) {
        return Ok(None);
    }
    Ok(Invitation::by_token_hash(conn, &secret_hash(token))?
        .filter(|i| i.accepted_at.is_none() && i.expires_at > now))
}

/// Accepts an invitation with the invitee's chosen password: the account is created and
/// the link stops working, in one transaction (two tabs submitting at once make one
/// account). Returns the new account.
pub fn accept(
    conn: &mut PgConnection,
    token: &str,
    password: &Password,
    language: Language,
    client: &str,
    now: DateTime<Utc>,
) -> Result<StaffMember, StaffError> {
    if !secret_well_formed(token) {
        return Err(Refusal::InvitationUsedOrExpired.into());
    }
    let hash = password.hash();
    conn.transaction(|conn| {
        let invitation = Invitation::by_token_hash_for_update(conn, &secret_hash(token))?
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
            .ok_or(Refusal::InvitationUsedOrExpired)?;
        let tenant = Tenant::of_authenticated(invitation.merchant_id);
        let email = Email::parse(&invitation.email).map_err(Refusal::Invalid)?;
        let member =
            accounts::insert(conn, &tenant, &email, invitation.role, &hash, language, now)?;
        Invitation::mark_accepted(conn, &tenant, invitation.id, now)?;
        let actor = Actor {
            tenant,
            staff_id: Some(member.id),
            client: Some(client.to_string()),
        };
        audit::record(
            conn,
            &actor,
            now,
            audit::INVITATION_ACCEPT,
            json!({"invitation_id": invitation.id, "email": member.email, "role": member.role}),
        )?;
        Ok(member)
    })
}

/// Withdraws a pending invitation.
pub fn revoke(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    conn.transaction(|conn| {
        let gone = Invitation::delete_pending(conn, &actor.tenant, id)?.ok_or(Refusal::NotFound)?;
        audit::record(
            conn,
            actor,
            now,
            audit::INVITATION_REVOKE,
            json!({"invitation_id": id, "email": gone.email, "role": gone.role}),
        )?;
        Ok(())
    })
}

pub fn pending(
    conn: &mut PgConnection,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Invitation>> {
    Invitation::pending(conn, tenant, now)
}
