//! Loyalty program rules: tiers, earning, welcome and referral rewards.

pub mod enrollment;
pub mod ledger;
pub mod lots;
pub mod notices;
pub mod payment;
pub mod points;
pub mod program;
pub mod referral;
pub mod refund;
pub mod rules;
pub mod sending_hours;

pub use rules::{Lifecycle, ProgramRules, ReferralRule, ReferralTrigger, Tier};
