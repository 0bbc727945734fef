//! Staff of a merchant and what they do in the console: accounts with Argon2id passwords
//! ([`accounts`]), sign-in and sessions ([`sessions`]), limits on wrong passwords
//! ([`throttle`]), invitations ([`invitations`]) and the append-only audit log ([`audit`]).
//!
//! Every function here takes `now` from the caller (the application's `Clock`), never from
//! the system or the database, so tests move time instead of sleeping.

pub mod accounts;
pub mod audit;
pub mod invitations;
pub mod sessions;
pub mod throttle;

use chrono::Duration;
use sha2::{Digest, Sha256};

/// How long a console session lives: it ends after `idle` without a request, and `max`
/// after sign-in whatever happens (`PASSFOLD_SESSION_IDLE_MINUTES`,
/// `PASSFOLD_SESSION_MAX_HOURS`).
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub max: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            idle: Duration::minutes(30),
            max: Duration::hours(12),
        }
    }
}

/// What a console action refused, in words the console translates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The email already has an account at this merchant.
    EmailTaken,
    /// The merchant would be left without an owner.
    LastOwner,
    /// No such account, invitation or merchant (of this tenant).
    NotFound,
    /// The invitation's link has expired or was already used.
    InvitationUsedOrExpired,
    /// The current password given to change it was wrong.
    WrongPassword,
    /// A new password or email that does not parse, with the reason.
    Invalid(String),
}

#[derive(Debug)]
pub enum StaffError {
    Refused(Refusal),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for StaffError {
    fn from(e: diesel::result::Error) -> Self {
        StaffError::Db(e)
    }
}

impl From<Refusal> for StaffError {
    fn from(r: Refusal) -> Self {
        StaffError::Refused(r)
    }
}

impl std::fmt::Display for StaffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaffError::Refused(Refusal::EmailTaken) => {
                f.write_str("this email already has an account at this merchant")
            }
            StaffError::Refused(Refusal::LastOwner) => {
                f.write_str("the merchant must keep at least one owner")
            }
            StaffError::Refused(Refusal::NotFound) => f.write_str("not found"),
            StaffError::Refused(Refusal::InvitationUsedOrExpired) => {
                f.write_str("the invitation has expired or was already used")
            }
            StaffError::Refused(Refusal::WrongPassword) => {
                f.write_str("the current password is wrong")
            }
            StaffError::Refused(Refusal::Invalid(why)) => f.write_str(why),
            StaffError::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for StaffError {}

/// What is stored for a secret handed out in a cookie or a link: its SHA-256 (the secret
/// is 256 random bits, so a fast hash is enough, and a stolen table opens nothing).
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new secret for a cookie or a link: 43 alphanumeric characters, about 256 bits.
pub fn new_secret() -> String {
    crate::domain::tokens::secret(43)
}

/// Whether a presented secret is well-formed (before any lookup).
pub fn secret_well_formed(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}
