//! The README's walk-through, run as a new user would paste it: against the started binary,
//! under `bash -u` (an unset variable fails), checking every answer it claims (`# ->` lines).

#[path = "api/apns_mock.rs"]
mod apns_mock;
#[path = "api/helpers.rs"]
mod helpers;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");
const SCRIPT: &str = include_str!("../docs/walkthrough.sh");
const README: &str = include_str!("../README.md");
const CLAIM: &str = "# -> ";
const MARK: &str = "@@@ claim ";

/// The script with a marker printed after each claim, so each claim finds its answer.
fn instrumented(script: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut claims = Vec::new();
    for line in script.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(claim) = line.trim_start().strip_prefix(CLAIM) {
            out.push_str(&format!("echo '{MARK}{}'\n", claims.len()));
            claims.push(claim.to_string());
        }
    }
    (out, claims)
}

/// Does `answer` (one printed line) show what `claim` says? Objects: every claimed field is
/// there with that value. Anything else: the value itself (a bare string prints unquoted).
fn shows(answer: &str, claim: &Value) -> bool {
    let printed: Option<Value> = serde_json::from_str(answer).ok();
    match (claim, &printed) {
        (Value::Object(fields), Some(Value::Object(got))) => {
            fields.iter().all(|(k, v)| got.get(k) == Some(v))
        }
        (Value::String(s), _) => answer == s,
        (other, Some(got)) => got == other,
        (_, None) => false,
    }
}

#[test]
fn readme_shows_the_script_verbatim() {
    assert!(
        README.contains(SCRIPT.trim_end()),
        "README.md's walk-through must be docs/walkthrough.sh, verbatim"
    );
    let (_, claims) = instrumented(SCRIPT);
    assert!(claims.len() >= 10, "the walk-through claims answers");
    for claim in claims {
        serde_json::from_str::<Value>(&claim)
            .unwrap_or_else(|e| panic!("claim {claim:?} is not JSON: {e}"));
    }
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let db = helpers::TestDatabase::create_empty();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PASSFOLD_BIND", &format!("127.0.0.1:{port}")),
        (
            "PASSFOLD_DATA_DIR",
            &dir.path().join("data").display().to_string(),
        ),
        ("APNS_URL", "https://127.0.0.1:9"),
        ("GOOGLE_WALLET_API_URL", "http://127.0.0.1:9"),
        ("GOOGLE_OAUTH_TOKEN_URL", "http://127.0.0.1:9/token"),
        ("RUST_LOG", "warn"),
    ]
    .map(|(k, v)| (k, v.to_string()));
    let mut service = Command::new(BIN)
        .arg("serve")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let ready = Instant::now();
    while reqwest::get(format!("{base}/readyz"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(ready.elapsed() < Duration::from_secs(60), "not ready");
        assert!(service.try_wait().unwrap().is_none(), "passfold exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (script, claims) = instrumented(SCRIPT);
    let run = Command::new("bash")
        .args(["-u", "-o", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .envs(env.iter().cloned())
        .env("BASE", &base)
        .env("PASSFOLD", BIN)
        .output()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(service.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = service.wait();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stderr.trim().is_empty(),
        "the walk-through failed ({}):\n{stderr}\n{stdout}",
        run.status
    );

    let mut answers = Vec::new();
    let mut last = "";
    for line in stdout.lines() {
        match line.strip_prefix(MARK) {
            Some(_) => answers.push(last),
            None if !line.trim().is_empty() => last = line.trim(),
            None => {}
        }
    }
    assert_eq!(
        answers.len(),
        claims.len(),
        "every claim saw an answer:\n{stdout}"
    );
    for (claim, answer) in claims.iter().zip(answers) {
        let wanted: Value = serde_json::from_str(claim).unwrap();
        assert!(
            shows(answer, &wanted),
            "the README claims {claim} but the answer was {answer}"
        );
    }
}
