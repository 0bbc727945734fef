//! Loyalty program rules: tiers, earning, welcome and referral rewards.

pub mod points;
pub mod rules;

pub use rules::{ProgramRules, ReferralRule, ReferralTrigger, Tier};
