//! Figures about a merchant's programs and cards, read from the ledgers and current state,
//! and the receipts of non-members that share-of-revenue figures need.

pub mod dashboard;
pub mod receipts;
pub mod report;
pub mod surveys;
