//! Personal data (issue 17): what a member agreed to ([`consents`]), everything held about
//! them ([`export`]), and erasure ([`erasure`]): their details wiped, their ledger kept.
//! docs/PRIVACY.md describes all three.

pub mod consents;
pub mod erasure;
pub mod export;

use crate::problem::{ApiError, ProblemKind};

/// What an erased member's name becomes (no personal data, and not a name anyone has).
pub const ERASED_NAME: &str = "Erased member";

/// The answer to anything that would act on an erased member's card (a purchase, points,
/// a message, a change of details): 410 `gone`.
pub fn erased_problem() -> ApiError {
    ApiError::new(
        ProblemKind::Gone,
        "this member's personal data was erased; the card no longer earns, spends or changes",
    )
}
