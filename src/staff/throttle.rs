//! Wrong passwords are limited exactly as wrong gift-card PINs are (`routes::public`,
//! migration 000017): every attempt is first recorded as a failure (committed at once, no
//! transaction) and only then counted, its own record included, so of any number of
//! concurrent guesses the k-th recorded sees at least k and no more than the limit are
//! judged. An attempt refused by the limit takes its record back (it was never judged, so
//! the owner's right password after the lock lifts costs nothing), and so does a right
//! password, which also forgets that address's earlier failures on the account.
//!
//! Limits within [`WINDOW_MINUTES`]: per email and client address (what one guesser gets:
//! the sixth wrong password in a row is refused), per email over all addresses (a ceiling
//! high enough that one attacker cannot lock the owner out), per address over all emails.
//! Emails without an account count alike, so the answer never tells which exist.

use crate::models::staff::SignInFailures;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

pub const PER_EMAIL_AND_CLIENT: i64 = 5;
pub const PER_EMAIL: i64 = 50;
pub const PER_CLIENT: i64 = 20;
pub const WINDOW_MINUTES: i64 = 15;

/// A recorded attempt, to be judged.
pub struct Attempt {
    id: i64,
    email: String,
    client: String,
}

/// Records the attempt and counts; `Err(retry_after_seconds)` when over a limit (the
/// record is then taken back).
pub fn begin(
    conn: &mut PgConnection,
    email: &str,
    client: &str,
    now: DateTime<Utc>,
) -> QueryResult<Result<Attempt, u64>> {
    let id = SignInFailures::record(conn, email, client, now)?;
    let since = now - Duration::minutes(WINDOW_MINUTES);
    let recent = SignInFailures::count_since(conn, email, client, since)?;
    if recent.email_and_client > PER_EMAIL_AND_CLIENT
        || recent.email > PER_EMAIL
        || recent.client > PER_CLIENT
    {
        SignInFailures::take_back(conn, id)?;
        return Ok(Err((WINDOW_MINUTES * 60) as u64));
    }
    Ok(Ok(Attempt {
        id,
        email: email.to_string(),
        client: client.to_string(),
    }))
}

impl Attempt {
    /// The password was right: this record and the address's earlier failures go.
    pub fn succeeded(self, conn: &mut PgConnection) -> QueryResult<()> {
        SignInFailures::take_back(conn, self.id)?;
        SignInFailures::clear(conn, &self.email, &self.client).map(drop)
    }
}

/// Records older than a day serve no limit any more (called by the pruning job).
pub fn prune(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    SignInFailures::prune_before(conn, now - Duration::days(1))
}
