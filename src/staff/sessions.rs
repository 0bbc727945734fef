//! Sign-in, sessions and sign-out. A session is a random token in an HttpOnly cookie; only
//! its SHA-256 is stored. It ends after [`Lifetimes::idle`] without a request or
//! [`Lifetimes::max`] after sign-in, on sign-out, on "sign out everywhere", when the
//! password changes (the other sessions) and when the account is removed.

use super::audit::{self, Actor};
use super::{new_secret, secret_hash, secret_well_formed, throttle, Lifetimes};
use crate::db::Tenant;
use crate::domain::{Email, Password};
use crate::models::staff::{StaffMember, StaffSessionRow};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

/// A session's last request is written at most this often: a page view costs a read, not
/// a write, and idle expiry is that much less exact.
const TOUCH_EVERY: i64 = 30;

pub enum SignIn {
    /// Signed in: the cookie's token (shown once) and the account.
    Ok {
        token: String,
        staff: Box<StaffMember>,
    },
    /// Unknown email or wrong password (one answer for both).
    Wrong,
    /// Too many wrong passwords: retry after this many seconds.
    Limited(u64),
}

/// A hash no password matches, checked when no account has the email, so that unknown
/// emails take as long to refuse as wrong passwords.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| Password::presented(&new_secret()).hash())
}

/// Checks an email and password. The email may belong to accounts at several merchants:
/// the first (most recently used) whose password matches is signed in. Every attempt on an
/// existing account is audited at its merchant; attempts on unknown emails only logged.
pub fn sign_in(
    conn: &mut PgConnection,
    email_typed: &str,
    password: &str,
    client: &str,
    now: DateTime<Utc>,
    lifetimes: Lifetimes,
) -> QueryResult<SignIn> {
    let dummy = dummy_hash();
    // What the limits count: the email as typed, normalized like `Email` when it parses.
    let key: String = match Email::parse(email_typed) {
        Ok(e) => e.as_str().to_string(),
        Err(_) => email_typed
            .trim()
            .to_lowercase()
            .chars()
            .take(254)
            .collect(),
    };
    let accounts = match Email::parse(email_typed) {
        Ok(e) => StaffMember::by_email_any_merchant(conn, e.as_str())?,
        Err(_) => Vec::new(),
    };
    let actor_of = |m: &StaffMember| Actor {
        tenant: Tenant::of_authenticated(m.merchant_id),
        staff_id: Some(m.id),
        client: Some(client.to_string()),
    };
    let attempt = match throttle::begin(conn, &key, client, now)? {
        Ok(attempt) => attempt,
        Err(retry_after) => {
            for m in &accounts {
                audit::record(
                    conn,
                    &actor_of(m),
                    now,
                    audit::SIGN_IN_LIMITED,
                    json!({"email": m.email}),
                )?;
            }
            tracing::info!(client, "console sign-in limited");
            return Ok(SignIn::Limited(retry_after));
        }
    };
    let presented = Password::presented(password);
    let matching = if accounts.is_empty() {
        let _ = presented.matches(dummy);
        None
    } else {
        accounts
            .iter()
            .find(|m| presented.matches(&m.password_hash))
    };
    let Some(member) = matching else {
        for m in &accounts {
            audit::record(
                conn,
                &actor_of(m),
                now,
                audit::SIGN_IN_FAILED,
                json!({"email": m.email}),
            )?;
        }
        if accounts.is_empty() {
            tracing::info!(client, "console sign-in with an email that has no account");
        }
        return Ok(SignIn::Wrong);
    };
    attempt.succeeded(conn)?;
    let token = new_secret();
    let tenant = Tenant::of_authenticated(member.merchant_id);
    conn.transaction(|conn| {
        StaffSessionRow::delete_expired_of_staff(
            conn,
            &tenant,
            member.id,
            now - lifetimes.idle,
            now - lifetimes.max,
        )?;
        StaffSessionRow::insert(conn, &tenant, member.id, &secret_hash(&token), now)?;
        StaffMember::record_sign_in(conn, &tenant, member.id, now)?;
        audit::record(
            conn,
            &actor_of(member),
            now,
            audit::SIGN_IN,
            json!({"email": member.email}),
        )
    })?;
    Ok(SignIn::Ok {
        token,
        staff: Box::new(member.clone()),
    })
}

/// Starts a session for an account that just proved itself another way (accepting an
/// invitation by choosing its password).
pub fn start(
    conn: &mut PgConnection,
    tenant: &Tenant,
    staff_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let token = new_secret();
    StaffSessionRow::insert(conn, tenant, staff_id, &secret_hash(&token), now)?;
    StaffMember::record_sign_in(conn, tenant, staff_id, now)?;
    Ok(token)
}

/// A live session: its account and the hash that names it.
pub struct Authenticated {
    pub staff: StaffMember,
    pub token_hash: Vec<u8>,
    pub tenant: Tenant,
}

/// The account of a session token, if the session is live at `now`; an expired session is
/// deleted on sight.
pub fn authenticate(
    conn: &mut PgConnection,
    token: &str,
    now: DateTime<Utc>,
    lifetimes: Lifetimes,
) -> QueryResult<Option<Authenticated>> {
    if !secret_well_formed(token) {
        return Ok(None);
    }
    let hash = secret_hash(token);
    let Some((session, staff)) = StaffSessionRow::by_token_hash(conn, &hash)? else {
        return Ok(None);
    };
    let tenant = Tenant::of_authenticated(session.merchant_id);
    if now - session.last_seen_at >= lifetimes.idle || now - session.created_at >= lifetimes.max {
        StaffSessionRow::delete(conn, &tenant, &hash)?;
        return Ok(None);
    }
    if now - session.last_seen_at >= Duration::seconds(TOUCH_EVERY) {
        StaffSessionRow::touch(conn, &tenant, &hash, now)?;
    }
    Ok(Some(Authenticated {
        staff,
        token_hash: hash,
        tenant,
    }))
}

/// Ends this session.
pub fn sign_out(
    conn: &mut PgConnection,
    actor: &Actor,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        StaffSessionRow::delete(conn, &actor.tenant, token_hash)?;
        audit::record(conn, actor, now, audit::SIGN_OUT, json!({}))
    })
}

/// Ends every session of the actor's account, this one included.
pub fn sign_out_everywhere(
    conn: &mut PgConnection,
    actor: &Actor,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let Some(staff_id) = actor.staff_id else {
        return Ok(0);
    };
    conn.transaction(|conn| {
        let ended = StaffSessionRow::delete_of_staff(conn, &actor.tenant, staff_id, None)?;
        audit::record(
            conn,
            actor,
            now,
            audit::SIGN_OUT_EVERYWHERE,
            json!({"sessions_ended": ended}),
        )?;
        Ok(ended)
    })
}

/// Deletes every expired session (the pruning job): they are refused when presented anyway,
/// this only keeps the table to the sessions that can still be used.
pub fn prune(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lifetimes: Lifetimes,
) -> diesel::QueryResult<usize> {
    StaffSessionRow::delete_all_expired(conn, now - lifetimes.idle, now - lifetimes.max)
}
