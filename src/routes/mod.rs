//! HTTP resources, one file each. Handlers stay thin: parse, call the model, answer.

pub mod api_keys;
pub mod health;
pub mod metrics;
