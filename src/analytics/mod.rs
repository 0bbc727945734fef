//! Figures about a merchant's programs and cards, read from the ledgers and current state.

pub mod dashboard;
