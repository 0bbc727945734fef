//! Campaign fan-out: a campaign to 100,000 members whose passes are on registered iPhones,
//! sent by the campaigns job (`campaigns::sending::run`, in this process) and pushed by the
//! release server's outbox loop through the loopback HTTP/2 APNs stand-in: time from the
//! job's start to the last push accepted (target: 10 s), and peak memory.
//!
//! Run: `cargo bench --bench campaign_fanout` (`CAMPAIGN_MEMBERS`, default 100000, all in
//! the audience, no holdout; `CAMPAIGN_BONUS` bonus points per member, default 0: message
//! only; `CAMPAIGN_EXTRA` members outside the audience, default 400000; `CAMPAIGN_EXPLAIN=1`
//! logs the plans of the job's statements over 20 ms to /tmp/campaign_fanout_plans.log).

#[path = "../tests/api/apns_mock.rs"]
mod apns_mock;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use passfold::pass_events::Channels;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.0.wait();
    }
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

fn status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_i64(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let n = env_i64("CAMPAIGN_MEMBERS", 100_000);
    let extra = env_i64("CAMPAIGN_EXTRA", 400_000);
    let bonus = env_i64("CAMPAIGN_BONUS", 0);
    // The send instant: far from the real clock, so the server's own job loop (which runs
    // as of now) leaves the campaign to this process; noon UTC, within sending hours.
    let at: DateTime<Utc> = "2031-06-16T12:00:00Z".parse().unwrap();
    println!("load average at start: {}", loadavg());

    let mock = apns_mock::ApnsMock::start().await;
    let dir = std::env::temp_dir().join(format!("passfold-campaign-{}", std::process::id()));
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
                std::env::var("CAMPAIGN_LOG").unwrap_or_else(|_| "warn".into()),
            );
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").stderr(Stdio::inherit());
    env(&mut cmd);
    let server = Server(cmd.spawn().unwrap());
    let server_pid = server.0.id().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["merchant", "create", "--name", "Campaigns"]);
    env(&mut cmd);
    let merchant: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    let admin = merchant["admin_key"].as_str().unwrap().to_string();
    let res = client
        .post(format!("{base}/api/v1/programs"))
        .bearer_auth(&admin)
        .json(
            &json!({"name": "Club", "template": "loyalty-default", "currency": "EUR",
                      "points_per_unit": 1,
                      "tiers": [{"name": "Bronze", "min_points": 0},
                                {"name": "Gold", "min_points": 2000}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let program: Value = res.json().await.unwrap();

    let data = dir.join("data");
    let pid_file = std::fs::read_to_string(data.join("postgres/data/postmaster.pid")).unwrap();
    let pg_port = pid_file.lines().nth(3).unwrap().trim().to_string();
    let password = std::fs::read_to_string(data.join("postgres.password")).unwrap();
    let url = format!(
        "postgres://passfold:{}@127.0.0.1:{pg_port}/passfold",
        password.trim()
    );
    let mut conn = PgConnection::establish(&url).unwrap();

    // Set-up, set-based: members 1..=n are Gold (the audience), with 2,500 points from one
    // `earn` activity and its lot, and a pass on one registered iPhone each; the `extra`
    // members are Bronze, with passes and no devices.
    let started = Instant::now();
    let total = n + extra;
    conn.batch_execute(&format!(
        "INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code,
                              points, lifetime_points, tier, created_at, updated_at)
           SELECT md5('campaign' || g)::uuid, '{m}', '{p}', 'Member ' || g, lpad(g::text, 16, '0'),
                  'C' || g, CASE WHEN g <= {n} THEN 2500 ELSE 100 END,
                  CASE WHEN g <= {n} THEN 2500 ELSE 100 END,
                  CASE WHEN g <= {n} THEN 'Gold' ELSE 'Bronze' END,
                  '{at}'::timestamptz - interval '100 days', '{at}'::timestamptz - interval '100 days'
             FROM generate_series(1::bigint, {total}) g;
         INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after,
                                       reason, created_at, qualifying, tier_after)
           SELECT gen_random_uuid(), '{m}', id, 'earn', points, points, 'purchase',
                  created_at, points, tier
             FROM members WHERE program_id = '{p}';
         INSERT INTO point_lots (merchant_id, member_id, activity_id, earned_at, expires_at, points, remaining)
           SELECT '{m}', a.member_id, a.id, a.created_at, NULL, a.delta, a.delta
             FROM point_activities a WHERE a.merchant_id = '{m}';
         INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id, authentication_token, download_token)
           SELECT gen_random_uuid(), '{m}', 'camp' || card_number, id, 'loyalty-default',
                  md5(card_number || 'a'), md5(card_number || 'd')
             FROM members WHERE program_id = '{p}' ORDER BY card_number;
         INSERT INTO devices (device_library_identifier, push_token)
           SELECT 'cdev' || g, lpad(to_hex(g), 64, '0') FROM generate_series(1, {n}) g;
         INSERT INTO registrations (device_library_identifier, pass_id, merchant_id)
           SELECT 'cdev' || ltrim(substr(serial_number, 5), '0'), id, merchant_id
             FROM passes WHERE serial_number LIKE 'camp%' AND substr(serial_number, 5)::bigint <= {n};",
        m = merchant["merchant_id"].as_str().unwrap(),
        p = program["id"].as_str().unwrap(),
    ))
    .unwrap();
    for table in [
        "members",
        "point_lots",
        "point_activities",
        "passes",
        "registrations",
        "devices",
    ] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }
    println!(
        "set-up: {total} members with passes, {n} of them Gold with a registered iPhone, in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let res = client
        .post(format!(
            "{base}/api/v1/programs/{}/campaigns",
            program["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .header("Idempotency-Key", "bench-campaign")
        .json(
            &json!({"audience": {"tiers": ["Gold"]}, "holdout_percent": 0,
                      "message": {"en": "Double points on Saturday"},
                      "bonus_points": bonus, "send_at": at.to_rfc3339()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let campaign: Value = res.json().await.unwrap();

    let explain = std::env::var("CAMPAIGN_EXPLAIN").is_ok();
    if explain {
        conn.batch_execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = '20ms';
             SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;
             SET auto_explain.log_nested_statements = on;",
        )
        .unwrap();
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let sent = passfold::campaigns::sending::run(&mut conn, Channels::new(false), at).unwrap();
    let job_took = started.elapsed();
    assert_eq!(sent as i64, n, "recipients sent");
    loop {
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
            started.elapsed() < Duration::from_secs(600),
            "only {done} of {n} pushes after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    println!(
        "campaign to {n} members (bonus {bonus} points): job committed in {:.2} s; last of {n} pushes accepted {:.2} s after the job started: {:.0} pushes/s (target: <= 10 s)",
        job_took.as_secs_f64(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    println!(
        "peak resident memory: server (delivery) {:.1} MB; job process (this bench, with the APNs stand-in) {:.1} MB; pushes accepted {}",
        status_kb(&server_pid, "VmHWM") as f64 / 1024.0,
        status_kb("self", "VmHWM") as f64 / 1024.0,
        mock.accepted().await.len()
    );
    let res = client
        .get(format!(
            "{base}/api/v1/campaigns/{}",
            campaign["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let counts: Value = res.json().await.unwrap();
    println!(
        "campaign counts: targeted {}, sent {}, pushed_apple {}",
        counts["targeted"], counts["sent"], counts["pushed_apple"]
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM campaign_recipients WHERE sent_at IS NOT NULL"
        ),
        n
    );
    println!("load average at end: {}", loadavg());
    drop(server);
    if explain {
        let _ = std::fs::copy(
            data.join("postgres/server.log"),
            "/tmp/campaign_fanout_plans.log",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
