//! `passfold worker --once --at <instant>` runs every time-based job as of that instant and
//! drains the outbox, then exits: the same work the worker does passing that instant, and
//! nothing more when run twice at it.

use crate::apns_mock::ApnsMock;
use crate::helpers::{id_of, spawn_app_with_apns, TestApp};
use diesel::prelude::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Runs the real binary off the test's runtime thread, which serves the APNs stand-in.
async fn worker_once(app: &TestApp, mock: &ApnsMock, at: &str) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passfold"));
    cmd.args(["worker", "--once", "--at", at])
        .env("DATABASE_URL", &app.db.url)
        .env("APNS_URL", &mock.url)
        .env("APNS_CA_FILE", &mock.ca_file)
        .env("RUST_LOG", "warn");
    tokio::task::spawn_blocking(move || cmd.output().expect("run passfold worker --once"))
        .await
        .unwrap()
}

/// `worker --once --at` as of `at`, expected to succeed: its JSON report.
pub(crate) async fn run_at(
    app: &TestApp,
    mock: &ApnsMock,
    at: chrono::DateTime<chrono::Utc>,
) -> Value {
    report(&worker_once(app, mock, &at.to_rfc3339()).await)
}

fn report(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "worker --once failed ({}): stdout {:?} stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn idempotency_keys(app: &TestApp) -> i64 {
    passfold::schema::idempotency_keys::table
        .count()
        .get_result(&mut app.db.connect())
        .unwrap()
}

#[tokio::test]
async fn worker_once_runs_the_jobs_as_of_its_instant_and_drains_the_outbox() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let (m, _, member) = app.merchant_with_member("Once", "Ann").await;
    let pass = app.pass_json_of(&member).await;
    let token = format!("{:064x}", 4242);
    assert_eq!(app.register_device(&pass, "phone", &token).await, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // From here on only `worker --once` delivers.
    app.stop_workers().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed_before = mock.accepted_for(&token).await;
    TestApp::expect_json(
        app.purchase(&m.pos_key, id_of(&member), "p1", 1000).await,
        200,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        mock.accepted_for(&token).await,
        pushed_before,
        "nothing delivered yet"
    );
    assert!(idempotency_keys(&app) > 0);

    // A month on: the purchase's idempotency key is past its retention and the push goes out.
    let at = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let first = report(&worker_once(&app, &mock, &at).await);
    assert_eq!(
        first["at"].as_str().map(|t| t[..16].to_string()),
        Some(at[..16].to_string())
    );
    assert!(first["jobs"]["prune"].as_u64().unwrap() >= 1, "{first}");
    assert!(
        first["delivered"]["apple"].as_u64().unwrap() >= 1,
        "{first}"
    );
    assert_eq!(mock.accepted_for(&token).await, pushed_before + 1);
    assert_eq!(idempotency_keys(&app), 0);

    // Twice at the same instant: nothing more to do.
    let second = report(&worker_once(&app, &mock, &at).await);
    assert_eq!(second["jobs"]["prune"], 0, "{second}");
    assert_eq!(second["delivered"]["apple"], 0, "{second}");
    assert_eq!(mock.accepted_for(&token).await, pushed_before + 1);

    // An instant that is not RFC 3339 is refused before anything runs.
    let bad = worker_once(&app, &mock, "next tuesday").await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}
