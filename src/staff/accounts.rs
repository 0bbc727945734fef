//! Staff accounts: created by the command line or by accepting an invitation, their role
//! changed or removed by an owner, their password and language changed by themselves. A
//! merchant always keeps at least one owner.

use super::audit::{self, Actor};
use super::{Refusal, StaffError};
use crate::db::Tenant;
use crate::domain::{Email, Language, Password, Role};
use crate::models::staff::{StaffMember, StaffSessionRow};
use crate::models::Merchant;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

/// Creates an account (`passfold staff create`): the merchant must exist, the email be
/// free at it. Audited as done by nobody in particular (the command line).
pub fn create(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    email: &Email,
    role: Role,
    password: &Password,
    now: DateTime<Utc>,
) -> Result<StaffMember, StaffError> {
    let hash = password.hash();
    conn.transaction(|conn| {
        if Merchant::find(conn, merchant_id).optional()?.is_none() {
            return Err(Refusal::NotFound.into());
        }
        // The merchant exists: its id is now an authenticated tenant (the command line runs
        // with the operator's authority over every merchant).
        let tenant = Tenant::of_authenticated(merchant_id);
        let member = insert(conn, &tenant, email, role, &hash, Language::En, now)?;
        let actor = Actor {
            tenant,
            staff_id: None,
            client: None,
        };
        audit::record(
            conn,
            &actor,
            now,
            audit::STAFF_CREATE,
            json!({"staff_id": member.id, "email": member.email, "role": role, "by": "command line"}),
        )?;
        Ok(member)
    })
}

/// Inserts an account, refusing a taken email as such (not as a database error).
pub(super) fn insert(
    conn: &mut PgConnection,
    tenant: &Tenant,
    email: &Email,
    role: Role,
    hash: &str,
    language: Language,
    now: DateTime<Utc>,
) -> Result<StaffMember, StaffError> {
    if StaffMember::by_email(conn, tenant, email)?.is_some() {
        return Err(Refusal::EmailTaken.into());
    }
    match StaffMember::insert(conn, tenant, email, role, hash, language, now) {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(Refusal::EmailTaken.into()),
        other => Ok(other?),
    }
}

/// An owner changes another account's role; the last owner cannot be demoted.
pub fn change_role(
    conn: &mut PgConnection,
    actor: &Actor,
    staff_id: Uuid,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    let tenant = actor.tenant;
    conn.transaction(|conn| {
        let owners = StaffMember::lock_owners(conn, &tenant)?;
        let member = StaffMember::find(conn, &tenant, staff_id)?.ok_or(Refusal::NotFound)?;
        if member.role == role {
            return Ok(());
        }
        if member.role == Role::Owner && owners.len() <= 1 {
            return Err(Refusal::LastOwner.into());
        }
        StaffMember::set_role(conn, &tenant, staff_id, role)?;
        audit::record(
            conn,
            actor,
            now,
            audit::ROLE_CHANGE,
            json!({"staff_id": staff_id, "email": member.email, "from": member.role, "to": role}),
        )?;
        Ok(())
    })
}

/// An owner removes an account (its sessions end with it); the last owner cannot be.
pub fn remove(
    conn: &mut PgConnection,
    actor: &Actor,
    staff_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    let tenant = actor.tenant;
    conn.transaction(|conn| {
        let owners = StaffMember::lock_owners(conn, &tenant)?;
        let member = StaffMember::find(conn, &tenant, staff_id)?.ok_or(Refusal::NotFound)?;
        if member.role == Role::Owner && owners.len() <= 1 {
            return Err(Refusal::LastOwner.into());
        }
        StaffMember::delete(conn, &tenant, staff_id)?;
        audit::record(
            conn,
            actor,
            now,
            audit::STAFF_REMOVE,
            json!({"staff_id": staff_id, "email": member.email, "role": member.role}),
        )?;
        Ok(())
    })
}

/// A staff member changes their own password, giving the current one; every other session
/// of theirs ends (the one in use, `keep`, stays).
pub fn change_password(
    conn: &mut PgConnection,
    actor: &Actor,
    current: &Password,
    new: &Password,
    keep: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    let tenant = actor.tenant;
    let staff_id = actor.staff_id.ok_or(Refusal::NotFound)?;
    let member = StaffMember::find(conn, &tenant, staff_id)?.ok_or(Refusal::NotFound)?;
    if !current.matches(&member.password_hash) {
        return Err(Refusal::WrongPassword.into());
    }
    let hash = new.hash();
    conn.transaction(|conn| {
        StaffMember::set_password_hash(conn, &tenant, staff_id, &hash)?;
        let ended = StaffSessionRow::delete_of_staff(conn, &tenant, staff_id, Some(keep))?;
        audit::record(
            conn,
            actor,
            now,
            audit::PASSWORD_CHANGE,
            json!({"other_sessions_ended": ended}),
        )?;
        Ok(())
    })
}

pub fn set_language(
    conn: &mut PgConnection,
    actor: &Actor,
    language: Language,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    let staff_id = actor.staff_id.ok_or(Refusal::NotFound)?;
    conn.transaction(|conn| {
        StaffMember::set_language(conn, &actor.tenant, staff_id, language)?;
        audit::record(
            conn,
            actor,
            now,
            audit::LANGUAGE_CHANGE,
            json!({"language": language}),
        )?;
        Ok(())
    })
}
