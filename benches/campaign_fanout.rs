//! Campaign fan-out: a campaign to 100,000 members whose passes are on registered iPhones,
//! sent by the campaigns job (`campaigns::sending::run`, in this process) and pushed by the
//! release server's outbox loop through the loopback HTTP/2 APNs stand-in: time from the
//! job's start to the last push accepted (target: 10 s), and peak memory.
//!
//! Run: `cargo bench --bench campaign_fanout` (`CAMPAIGN_MEMBERS`, default 100000, all in
//! the audience, no holdout; `CAMPAIGN_BONUS` bonus points per member, default 0: message
//! only; `CAMPAIGN_EXTRA` members outside the audience, default 400000; `CAMPAIGN_WORKERS=2`
//! adds a `passfold worker` process delivering beside the server; `CAMPAIGN_EXPLAIN=1`
//! logs the plans of the job's statements over 20 ms to /tmp/campaign_fanout_plans.log).

#[path = "../tests/api/apns_mock.rs"]
mod apns_mock;
#[path = "support/members.rs"]
mod support;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use passfold::pass_events::Channels;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{loadavg, Bench};

/// An extra delivering process, stopped when the bench ends.
struct Worker(std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
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

fn peak_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
    let ca_file = mock.ca_file.display().to_string();
    let log = std::env::var("CAMPAIGN_LOG").unwrap_or_else(|_| "warn".into());
    let bench = Bench::start(
        "campaign",
        &[
            ("APNS_URL", mock.url.as_str()),
            ("APNS_CA_FILE", ca_file.as_str()),
            ("RUST_LOG", log.as_str()),
        ],
    )
    .await;
    let (base, client, admin) = (&bench.base, &bench.client, &bench.admin);
    // More delivering processes: `passfold worker` beside the server's own loops.
    let mut workers = Vec::new();
    for _ in 1..env_i64("CAMPAIGN_WORKERS", 1) {
        let mut cmd = bench.command();
        cmd.arg("worker")
            .env("APNS_URL", &mock.url)
            .env("APNS_CA_FILE", &ca_file)
            .env("RUST_LOG", &log);
        workers.push(Worker(cmd.spawn().unwrap()));
    }
    let server_pid = bench.server_pid().to_string();
    let res = client
        .post(format!("{base}/api/v1/programs"))
        .bearer_auth(admin)
        .json(
            &json!({"name": "Gold Club", "template": "loyalty-default", "currency": "EUR",
                      "points_per_unit": 1,
                      "tiers": [{"name": "Bronze", "min_points": 0},
                                {"name": "Gold", "min_points": 2000}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let program: Value = res.json().await.unwrap();
    let mut conn = bench.connect();

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
        m = bench.merchant_id,
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
        .bearer_auth(admin)
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
        "{} delivering process(es); campaign to {n} members (bonus {bonus} points): job committed in {:.2} s; last of {n} pushes accepted {:.2} s after the job started: {:.0} pushes/s (target: <= 10 s)",
        workers.len() + 1,
        job_took.as_secs_f64(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    println!(
        "peak resident memory: server (delivery) {:.1} MB; job process (this bench, with the APNs stand-in) {:.1} MB; pushes accepted {}",
        peak_kb(&server_pid) as f64 / 1024.0,
        peak_kb("self") as f64 / 1024.0,
        mock.accepted().await.len()
    );
    let res = client
        .get(format!(
            "{base}/api/v1/campaigns/{}",
            campaign["id"].as_str().unwrap()
        ))
        .bearer_auth(admin)
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
    if explain {
        let _ = std::fs::copy(
            bench.dir.join("data/postgres/server.log"),
            "/tmp/campaign_fanout_plans.log",
        );
    }
}
