//! HTTP resources, one file each. Handlers stay thin: parse, call the model, answer.

pub mod activities;
pub mod analytics;
pub mod api_keys;
pub mod campaigns;
pub mod dashboard;
pub mod exports;
pub mod gift_cards;
pub mod google_callbacks;
pub mod health;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod passes;
pub mod points;
pub mod pos;
pub mod problems;
pub mod programs;
pub mod public;
pub mod receipts;
pub mod referrals;
pub mod segments;
pub mod surveys;
pub mod template_versions;
pub mod templates;
pub mod webhooks;
