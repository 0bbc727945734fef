//! Runs the self-test of the pkpass checker used by the API tests (`tests/api/pass_check.rs`).
#![allow(dead_code)]

#[path = "api/pass_check.rs"]
mod pass_check;
