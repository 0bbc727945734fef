//! The console's pages under use: the release server on its private cluster, an owner
//! signed in through the form, 1,000 members; every page fetched `CONSOLE_N` times (default
//! 200) by 8 concurrent clients. Prints each page's p50/p95 and the server's resident
//! memory after start-up, after the pages, and at its peak (VmHWM).
//!
//! Run: `cargo bench --bench console_memory`.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");
const PASSWORD: &str = "bench-password-1";

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The cookies a browser would keep, as one header.
#[derive(Default, Clone)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn keep(&mut self, res: &reqwest::Response) {
        for set in res.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap_or_default();
            if let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\"").expect("a CSRF field");
    let value = &page[at..];
    let start = value.find("value=\"").expect("its value") + 7;
    value[start..][..value[start..].find('"').unwrap()].to_string()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("CONSOLE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("passfold-console-{}", std::process::id()));
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
            .env("RUST_LOG", "warn");
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").stderr(Stdio::inherit());
    env(&mut cmd);
    let mut server = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started_rss = status_kb(server.id(), "VmRSS");

    let mut cmd = Command::new(BIN);
    cmd.args(["merchant", "create", "--name", "Console Bench"]);
    env(&mut cmd);
    let merchant: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    let merchant_id = merchant["merchant_id"].as_str().unwrap().to_string();
    let admin = merchant["admin_key"].as_str().unwrap().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "staff",
        "create",
        "--merchant",
        &merchant_id,
        "--email",
        "owner@bench.example",
        "--role",
        "owner",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    // Data to show: a program with 1,000 members and a gift card.
    let program: Value = client
        .post(format!("{base}/api/v1/programs"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let program_id = program["id"].as_str().unwrap().to_string();
    let mut member_id = String::new();
    for i in 0..1000 {
        let member: Value = client
            .post(format!("{base}/api/v1/programs/{program_id}/members"))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("Мария Петрова {i}"), "phone": format!("+7900{i:07}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        member_id = member["id"].as_str().unwrap().to_string();
    }
    let card: Value = client
        .post(format!("{base}/api/v1/gift-cards"))
        .bearer_auth(&admin)
        .json(&json!({"template": "gift-card-default", "currency": "EUR", "initial_balance": 5000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gan = card["gan"].as_str().unwrap().to_string();

    // Signed in through the form, as a browser.
    let mut jar = Jar::default();
    let res = client.get(format!("{base}/console/")).send().await.unwrap();
    jar.keep(&res);
    let csrf = csrf_of(&res.text().await.unwrap());
    let res = client
        .post(format!("{base}/console/sign-in"))
        .header("cookie", jar.header())
        .form(&[
            ("email", "owner@bench.example"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    jar.keep(&res);
    let cookie = jar.header();

    let pages = [
        "/console/".to_string(),
        "/console/templates".to_string(),
        "/console/templates/loyalty-default".to_string(),
        "/console/programs".to_string(),
        "/console/members?q=петрова".to_string(),
        format!("/console/members/{member_id}"),
        format!("/console/gift-cards/{gan}"),
        "/console/api-keys".to_string(),
        "/console/staff".to_string(),
        "/console/audit".to_string(),
    ];
    println!("console pages, {n} fetches each by 8 concurrent clients (ms):");
    for page in &pages {
        let url = format!("{base}{page}");
        let mut times = Vec::with_capacity(n);
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let (client, url, cookie) = (client.clone(), url.clone(), cookie.clone());
            let count = n / 8 + usize::from(worker < n % 8);
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::with_capacity(count);
                for _ in 0..count {
                    let started = Instant::now();
                    let res = client
                        .get(&url)
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200, "{url}");
                    res.bytes().await.unwrap();
                    times.push(started.elapsed());
                }
                times
            }));
        }
        for task in tasks {
            times.extend(task.await.unwrap());
        }
        times.sort();
        let at = |q: f64| ms(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
        println!("  {page:<45} p50 {:6.2}  p95 {:6.2}", at(0.5), at(0.95));
    }
    println!(
        "server resident memory: {:.1} MB after start-up, {:.1} MB after the pages, peak {:.1} MB",
        started_rss as f64 / 1024.0,
        status_kb(server.id(), "VmRSS") as f64 / 1024.0,
        status_kb(server.id(), "VmHWM") as f64 / 1024.0
    );

    // SIGTERM, so the server stops its private cluster on the way out.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
