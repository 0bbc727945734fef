//! Several processes on one PostgreSQL, as a deployment runs them: two `passfold serve` and
//! two `passfold worker`. A redemption storm spread over both servers (with retries sent to
//! the other server) balances exactly; a template change reaches every registered device of
//! 10,000 passes although one worker is killed with SIGKILL in the middle of the fan-out.

#[path = "api/apns_mock.rs"]
mod apns_mock;
#[path = "api/helpers.rs"]
mod helpers;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use futures_util::StreamExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");
const PASSES: usize = 10_000;
const CARDS: usize = 8;
const REDEMPTIONS: usize = 400;
const CARD_BALANCE: i64 = 1_000_000;

struct Deployment {
    dir: tempfile::TempDir,
    db_url: String,
    apns: (String, String),
    children: Vec<Child>,
}

impl Deployment {
    fn command(&self, args: &[&str], port: Option<u16>) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("DATABASE_URL", &self.db_url)
            .env("PASSFOLD_DATA_DIR", self.dir.path().join("data"))
            .env("APNS_URL", &self.apns.0)
            .env("APNS_CA_FILE", &self.apns.1)
            .env("GOOGLE_WALLET_API_URL", "http://127.0.0.1:9")
            .env("GOOGLE_OAUTH_TOKEN_URL", "http://127.0.0.1:9/token")
            .env("PASSFOLD_OUTBOX_LEASE_SECS", "3")
            .env("RUST_LOG", "warn");
        if let Some(port) = port {
            cmd.env("PASSFOLD_BIND", format!("127.0.0.1:{port}"))
                .env("PASSFOLD_PUBLIC_URL", format!("http://127.0.0.1:{port}"));
        }
        cmd
    }

    fn spawn(&mut self, args: &[&str], port: Option<u16>, log: &str) -> usize {
        let log = std::fs::File::create(self.dir.path().join(log)).unwrap();
        let child = self
            .command(args, port)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{base} not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn redeem(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    gan: &str,
    idempotency_key: &str,
    amount: i64,
) -> (u16, Value, bool) {
    loop {
        let res = client
            .post(format!("{base}/api/v1/gift-cards/{gan}/redeem"))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(&json!({"amount": amount, "currency": "EUR"}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let replayed = res.headers().contains_key("idempotent-replayed");
        let body: Value = res.json().await.unwrap_or(Value::Null);
        // Busy (the first attempt still running elsewhere, or a lock wait): a till retries.
        if status == 409 && body["type"].as_str().is_some_and(|t| t.ends_with("in-use")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        return (status, body, replayed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_workers_share_one_database() {
    let mock = apns_mock::ApnsMock::start().await;
    let db = helpers::TestDatabase::create_empty();
    let mut deployment = Deployment {
        dir: tempfile::tempdir().unwrap(),
        db_url: db.url.clone(),
        apns: (mock.url.clone(), mock.ca_file.display().to_string()),
        children: Vec::new(),
    };
    let client = reqwest::Client::new();
    let ports = [free_port(), free_port()];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    // The first server migrates; the others start on the migrated database.
    deployment.spawn(&["serve"], Some(ports[0]), "serve-a.log");
    wait_ready(&client, &bases[0]).await;
    deployment.spawn(&["serve"], Some(ports[1]), "serve-b.log");
    let worker_c = deployment.spawn(&["worker"], None, "worker-c.log");
    deployment.spawn(&["worker"], None, "worker-d.log");
    wait_ready(&client, &bases[1]).await;

    let out = deployment
        .command(&["merchant", "create", "--name", "Two tills"], None)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merchant: Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin = merchant["admin_key"].as_str().unwrap().to_string();
    let pos = merchant["pos_key"].as_str().unwrap().to_string();

    // The storm: redemptions alternate between the servers; each is retried on the other
    // server, which must answer the first answer again and take nothing more.
    let mut gans = Vec::new();
    for i in 0..CARDS {
        let res = client
            .post(format!("{}/api/v1/gift-cards", bases[i % 2]))
            .bearer_auth(&admin)
            .json(&json!({"template": "gift-card-default", "currency": "EUR", "initial_balance": CARD_BALANCE}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let card: Value = res.json().await.unwrap();
        gans.push(card["gan"].as_str().unwrap().to_string());
    }
    let outcomes: Vec<(usize, i64)> = futures_util::stream::iter(0..REDEMPTIONS)
        .map(|i| {
            let (client, bases, pos, gans) = (&client, &bases, &pos, &gans);
            async move {
                let card = i % CARDS;
                let amount = 1 + (i as i64 * 7919) % 5000;
                let key = format!("storm-{i}");
                let first = redeem(client, &bases[i % 2], pos, &gans[card], &key, amount).await;
                assert_eq!(first.0, 200, "redemption {i}: {}", first.1);
                let again =
                    redeem(client, &bases[(i + 1) % 2], pos, &gans[card], &key, amount).await;
                assert_eq!(again.0, 200);
                assert!(again.2, "the retry on the other server is a replay");
                assert_eq!(again.1, first.1, "the replay answers the first answer");
                (card, amount)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for (card, gan) in gans.iter().enumerate() {
        let spent: i64 = outcomes
            .iter()
            .filter(|(c, _)| *c == card)
            .map(|(_, a)| a)
            .sum();
        let res = client
            .get(format!("{}/api/v1/gift-cards/{gan}", bases[card % 2]))
            .bearer_auth(&pos)
            .send()
            .await
            .unwrap();
        let got: Value = res.json().await.unwrap();
        assert_eq!(got["balance"], json!(CARD_BALANCE - spent), "card {gan}");
    }
    let verify = deployment
        .command(&["ledger", "verify"], None)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "ledger verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // The fan-out: 10,000 passes, each installed on a device, then one template change.
    let program: Value = client
        .post(format!("{}/api/v1/programs", bases[0]))
        .bearer_auth(&admin)
        .json(&json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code)
           SELECT gen_random_uuid(), '{m}', '{p}', 'Member ' || g, lpad(g::text, 16, '0'), 'F' || g
             FROM generate_series(1, {PASSES}) g;
         INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id, authentication_token, download_token)
           SELECT gen_random_uuid(), '{m}', 'fan' || card_number, id, 'loyalty-default',
                  md5(card_number || 'a'), md5(card_number || 'd')
             FROM members WHERE program_id = '{p}';
         INSERT INTO devices (device_library_identifier, push_token)
           SELECT 'dev' || g, lpad(to_hex(g), 64, '0') FROM generate_series(1, {PASSES}) g;
         INSERT INTO registrations (device_library_identifier, pass_id, merchant_id)
           SELECT 'dev' || ltrim(substr(serial_number, 4), '0'), id, merchant_id FROM passes WHERE serial_number LIKE 'fan%';
         ANALYZE;",
        m = merchant["merchant_id"].as_str().unwrap(),
        p = program["id"].as_str().unwrap(),
    ))
    .unwrap();
    let template: Value = client
        .get(format!("{}/api/v1/templates/loyalty-default", bases[1]))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut doc = template["template"].clone();
    doc["colors"]["background"] = json!("#203040");
    let res = client
        .put(format!("{}/api/v1/templates/loyalty-default", bases[1]))
        .bearer_auth(&admin)
        .json(&json!({"template": doc}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // kill -9 one worker as soon as the fan-out is under way.
    let started = Instant::now();
    while mock.accepted().await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no push at all"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let victim = &mut deployment.children[worker_c];
    kill(Pid::from_raw(victim.id() as i32), Signal::SIGKILL).unwrap();
    let _ = victim.wait();
    let killed_after = mock.accepted().await.len();

    let wanted: HashSet<String> = (1..=PASSES).map(|g| format!("{g:064x}")).collect();
    loop {
        let pushes = mock.accepted().await;
        let reached: HashSet<&str> = pushes.iter().map(|p| p.token.as_str()).collect();
        let missing = wanted
            .iter()
            .filter(|t| !reached.contains(t.as_str()))
            .count();
        if missing == 0 {
            let duplicates = pushes.len() - reached.len();
            println!(
                "fan-out over 2 serve + 2 worker processes: {PASSES} devices pushed in {:.1} s \
                 ({} pushes, {duplicates} duplicates; worker killed after {killed_after})",
                started.elapsed().as_secs_f64(),
                pushes.len()
            );
            // At-least-once: a killed worker's claimed batch is sent again, nothing more.
            assert!(duplicates <= PASSES / 2, "{duplicates} duplicate pushes");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{missing} of {PASSES} devices got no push"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
