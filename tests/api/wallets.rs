//! Helpers for the `api` tests that read passes or talk to the Google stand-in. They live
//! apart from `helpers.rs` because that file is also compiled into `tests/service.rs` and
//! `tests/multi_process.rs`, which carry neither the pass checker nor the Google stand-in.

use crate::google_mock::GoogleMock;
use crate::helpers::{spawn_app_with, TestApp};
use crate::pass_check::{check_pkpass, CheckedPass};
use passfold::configuration::Settings;
use serde_json::Value;
use std::time::Duration;

impl TestApp {
    /// Downloads the Apple pass of a member or gift card (its `apple_pass_url`) and checks it.
    pub async fn checked_pass(&self, holder: &Value) -> CheckedPass {
        let url = holder["apple_pass_url"]
            .as_str()
            .expect("an Apple pass link");
        check_pkpass(&self.download_pass(url).await)
    }

    /// The checked pass.json of a member or gift card, as a phone reads it after adding it.
    pub async fn pass_json_of(&self, holder: &Value) -> Value {
        self.checked_pass(holder).await.pass_json
    }
}

/// The app with its Google Wallet client pointed at `mock`.
pub async fn spawn_app_with_google(mock: &GoogleMock) -> TestApp {
    spawn_app_with_google_and(mock, |_| {}).await
}

/// The app with its Google Wallet client pointed at `mock`, and other settings of its own.
pub async fn spawn_app_with_google_and(
    mock: &GoogleMock,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let (api, token) = (mock.api_url.clone(), mock.token_url.clone());
    spawn_app_with(move |s| {
        s.google.api_url = api;
        s.google.token_url = token;
        configure(s);
    })
    .await
}

/// Waits up to `within` for the stand-in to hold the loyalty object `id` with `points`.
pub async fn loyalty_object_shows(
    mock: &GoogleMock,
    id: &str,
    points: i64,
    within: Duration,
) -> bool {
    mock.wait_until(
        |g| {
            g.stored("loyaltyObject", id)
                .is_some_and(|o| o["loyaltyPoints"]["balance"]["int"] == points)
        },
        within,
    )
    .await
}
