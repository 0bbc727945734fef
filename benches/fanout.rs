//! One change that touches every pass: 100,000 registered devices on 100,000 passes, a
//! template update, and the time until the last push is accepted by a loopback HTTP/2 APNs
//! stand-in; the server's peak resident memory; and the change-to-push latency of single
//! redemptions.
//!
//! Run: `cargo bench --bench fanout` (N=100000 by default; `FANOUT_N` to change;
//! `FANOUT_WORKERS=2` adds a `passfold worker` process beside the server's own workers).

#[path = "../tests/api/apns_mock.rs"]
mod apns_mock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let n: i64 = std::env::var("FANOUT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mock = apns_mock::ApnsMock::start().await;
    let dir = std::env::temp_dir().join(format!("passfold-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = |cmd: &mut Command| {
        cmd.env_remove("DATABASE_URL")
            .env("PASSFOLD_DATA_DIR", dir.join("data"))
            .env("PASSFOLD_BIND", format!("127.0.0.1:{port}"))
            .env("APNS_URL", &mock.url)
            .env("APNS_CA_FILE", &mock.ca_file)
            .env(
                "RUST_LOG",
                std::env::var("FANOUT_LOG").unwrap_or_else(|_| "warn".into()),
            );
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").stderr(Stdio::inherit());
    env(&mut cmd);
    let mut server = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let workers: usize = std::env::var("FANOUT_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // More delivering processes: `passfold worker` beside the server's own workers.
    let mut extra_workers = Vec::new();
    for _ in 1..workers {
        let mut cmd = Command::new(BIN);
        cmd.arg("worker").stderr(Stdio::inherit());
        env(&mut cmd);
        extra_workers.push(cmd.spawn().unwrap());
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["merchant", "create", "--name", "Fan-out"]);
    env(&mut cmd);
    let merchant: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    let admin = merchant["admin_key"].as_str().unwrap().to_string();
    let program: Value = client
        .post(format!("{base}/api/v1/programs"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Bulk set-up straight into the service's database: members, passes, devices.
    let data = dir.join("data");
    let pid_file = std::fs::read_to_string(data.join("postgres/data/postmaster.pid")).unwrap();
    let pg_port = pid_file.lines().nth(3).unwrap().trim().to_string();
    let password = std::fs::read_to_string(data.join("postgres.password")).unwrap();
    let url = format!(
        "postgres://passfold:{}@127.0.0.1:{pg_port}/passfold",
        password.trim()
    );
    let mut conn = PgConnection::establish(&url).unwrap();
    let started = Instant::now();
    conn.batch_execute(&format!(
        "INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code)
           SELECT gen_random_uuid(), '{m}', '{p}', 'Member ' || g, lpad(g::text, 16, '0'), 'B' || g
             FROM generate_series(1, {n}) g;
         INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id, authentication_token, download_token)
           SELECT gen_random_uuid(), '{m}', 'bench' || substr(card_number, 7), id, 'loyalty-default',
                  md5(card_number || 'a'), md5(card_number || 'd')
             FROM members WHERE program_id = '{p}';
         INSERT INTO devices (device_library_identifier, push_token)
           SELECT 'dev' || g, lpad(to_hex(g), 64, '0') FROM generate_series(1, {n}) g;
         INSERT INTO registrations (device_library_identifier, pass_id, merchant_id)
           SELECT 'dev' || ltrim(substr(serial_number, 6), '0'), id, merchant_id FROM passes WHERE serial_number LIKE 'bench%';
         ANALYZE;",
        m = merchant["merchant_id"].as_str().unwrap(),
        p = program["id"].as_str().unwrap(),
    ))
    .unwrap();
    println!(
        "set-up: {n} members, passes, devices and registrations in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The change: a template update touching every pass.
    let template: Value = client
        .get(format!("{base}/api/v1/templates/loyalty-default"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut doc = template["template"].clone();
    doc["colors"]["background"] = json!("#102030");
    let changed = Instant::now();
    let res = client
        .put(format!("{base}/api/v1/templates/loyalty-default"))
        .bearer_auth(&admin)
        .json(&json!({"template": doc}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let committed = changed.elapsed();
    loop {
        // Distinct devices: with several delivering processes a device may get a second push.
        let pushes = mock.accepted().await;
        let done = pushes
            .iter()
            .map(|p| p.token.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len() as i64;
        if done >= n {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(300),
            "only {done} of {n} pushes after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = changed.elapsed();
    let peak = status_kb(server.id(), "VmHWM") as f64 / 1024.0;
    println!(
        "{workers} delivering process(es): template change committed in {:.2} s; last of {n} pushes accepted {:.2} s after the change: {:.0} pushes/s (target: <= 10 s)",
        committed.as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    println!(
        "server peak resident memory: {peak:.1} MB (target < 150 MB); connections to APNs: {}",
        mock.connections().await
    );

    // Single redemptions: change-to-push latency.
    let card: Value = client
        .post(format!("{base}/api/v1/gift-cards"))
        .bearer_auth(&admin)
        .json(&json!({"template": "gift-card-default", "currency": "EUR", "initial_balance": 1_000_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes = client
        .get(card["apple_pass_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let pass: Value = serde_json::from_reader(zip.by_name("pass.json").unwrap()).unwrap();
    let token = "c0ffee".repeat(10) + "c0ff";
    let res = client
        .post(format!(
            "{base}/apple/v1/devices/benchphone/registrations/{}/{}",
            pass["passTypeIdentifier"].as_str().unwrap(),
            pass["serialNumber"].as_str().unwrap()
        ))
        .header(
            "authorization",
            format!(
                "ApplePass {}",
                pass["authenticationToken"].as_str().unwrap()
            ),
        )
        .json(&json!({"pushToken": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut latencies = Vec::new();
    for i in 0..200 {
        let sent = Instant::now();
        let res = client
            .post(format!(
                "{base}/api/v1/gift-cards/{}/redeem",
                card["gan"].as_str().unwrap()
            ))
            .bearer_auth(&admin)
            .header("Idempotency-Key", format!("bench-{i}"))
            .json(&json!({"amount": 1, "currency": "EUR"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(mock.wait_for(&token, i + 1, Duration::from_secs(10)).await);
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "single redemption, request to push accepted (200 in a row): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target p99 < 1 s)",
        latencies[100], latencies[197], latencies[199]
    );
    for mut worker in extra_workers {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(worker.id().to_string())
            .status();
        let _ = worker.wait();
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
