//! Loyalty program rules: tiers, earning, welcome and referral rewards.

pub mod enrollment;
pub mod ledger;
pub mod points;
pub mod program;
pub mod referral;
pub mod rules;

pub use rules::{ProgramRules, ReferralRule, ReferralTrigger, Tier};
