//! Points expiry and its reminders at scale: 1,000,000 members holding 3-5 lots each, of
//! which 100,000 lots (one on each of 100,000 members) expire at the same instant.
//!
//! 1. Reminder fan-out: three days before that instant the reminders job (`Reminders::run`,
//!    in this process) writes the 100,000 members' messages, and the release server's
//!    outbox loop pushes each registered device through a loopback HTTP/2 APNs stand-in:
//!    time from the job's start to the last push accepted, and peak memory.
//! 2. Expiry at the instant (`Expiry::run`, in this process): wall time and lots/s, against a
//!    plain `UPDATE point_lots SET remaining = 0, expired = true` of the same rows on the same
//!    server (run in a transaction that is rolled back, before the job, so the job finds the
//!    rows as they were); the ledger checked afterwards (`ledger verify`'s checks, one
//!    `expire` activity per lot).
//!
//! Run: `cargo bench --bench points_expiry` (`EXPIRY_MEMBERS`, default 1000000;
//! `EXPIRY_DUE` lots due at the instant and members reminded, default 100000;
//! `EXPIRY_WORKERS=2` adds a `passfold worker` process delivering beside the server).

#[path = "../tests/api/apns_mock.rs"]
mod apns_mock;

use chrono::{DateTime, Duration as Days, Utc};
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");

/// The server, stopped (and resumed first, should the bench fail while it is paused) when
/// the bench ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-CONT", &pid]).status();
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

/// The reference: the same rows expired by one plain UPDATE, rolled back; rows/s.
fn plain_update(conn: &mut PgConnection, at: &str) -> (i64, f64) {
    conn.batch_execute("BEGIN").unwrap();
    let started = Instant::now();
    let n = diesel::sql_query(format!(
        "UPDATE point_lots SET remaining = 0, expired = true
          WHERE expires_at <= '{at}' AND remaining > 0 AND NOT expired"
    ))
    .execute(conn)
    .unwrap() as i64;
    let took = started.elapsed().as_secs_f64();
    conn.batch_execute("ROLLBACK").unwrap();
    // What the rolled-back update left behind is cleared, as autovacuum would.
    conn.batch_execute("VACUUM point_lots").unwrap();
    (n, took)
}

#[tokio::main]
async fn main() {
    let n = env_i64("EXPIRY_MEMBERS", 1_000_000);
    let due = env_i64("EXPIRY_DUE", 100_000).min(n);
    // The instant the lots expire: far from the real clock, so the server's own job loop
    // (which runs as of now) never touches them; at noon UTC, within sending hours.
    let at: DateTime<Utc> = "2031-06-16T12:00:00Z".parse().unwrap();
    let remind_at = at - Days::days(3);
    println!("load average at start: {}", loadavg());

    let mock = apns_mock::ApnsMock::start().await;
    let dir = std::env::temp_dir().join(format!("passfold-expiry-{}", std::process::id()));
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
                std::env::var("EXPIRY_LOG").unwrap_or_else(|_| "warn".into()),
            );
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").stderr(Stdio::inherit());
    env(&mut cmd);
    let server = Server(cmd.spawn().unwrap());
    let server_pid = server.0.id().to_string();
    // More delivering processes: `passfold worker` beside the server's own loops, paused
    // and resumed with it.
    let mut workers = Vec::new();
    for _ in 1..env_i64("EXPIRY_WORKERS", 1) {
        let mut cmd = Command::new(BIN);
        cmd.arg("worker").stderr(Stdio::inherit());
        env(&mut cmd);
        workers.push(Server(cmd.spawn().unwrap()));
    }
    let delivering: Vec<String> = std::iter::once(server_pid.clone())
        .chain(workers.iter().map(|w| w.0.id().to_string()))
        .collect();
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
    cmd.args(["merchant", "create", "--name", "Expiry"]);
    env(&mut cmd);
    let merchant: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    let admin = merchant["admin_key"].as_str().unwrap().to_string();
    let res = client
        .post(format!("{base}/api/v1/programs"))
        .bearer_auth(&admin)
        .json(
            &json!({"name": "Club", "template": "loyalty-default", "currency": "EUR",
                      "points_per_unit": 1, "points_expire_days": 365,
                      "expiry_reminders_days": [14, 3]}),
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

    // Set-up, set-based. Member g holds 3-5 lots: lot 1 is its soonest; members 1..=due
    // have it expire exactly at `at` (earned 365 days before), the others 30-89 days after
    // it. Later lots expire 145 days or more after `at`, or (one in four) never. Every
    // fourth member has paid with half of lot 1. One `earn` activity per lot and one
    // `spend`, with running totals, so the ledger verifies before and after.
    let started = Instant::now();
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE bench_lots AS
         SELECT member_id, g, i, activity_id, earned_at,
                CASE WHEN never THEN NULL ELSE earned_at + interval '365 days' END AS expires_at,
                points,
                CASE WHEN i = 1 AND g % 4 = 0 THEN points / 2 ELSE points END AS remaining
           FROM (SELECT md5('bench' || g)::uuid AS member_id, g, i, gen_random_uuid() AS activity_id,
                        CASE WHEN i = 1 AND g <= {due} THEN '{at}'::timestamptz - interval '365 days'
                             WHEN i = 1 THEN '{at}'::timestamptz - interval '335 days' + (g % 60) * interval '1 day'
                             ELSE '{at}'::timestamptz - interval '300 days' + (i * 40 + g % 20) * interval '1 day'
                        END AS earned_at,
                        i > 1 AND (hashint8(g * 8 + i) & 3) = 0 AS never,
                        20 + ((hashint8(g * 8 + i) >> 8) & 511) AS points
                   FROM generate_series(1::bigint, {n}) g,
                        generate_series(1, 3 + ((hashint8(g) & 1023) % 3)::int) i) x;
         INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code,
                              points, lifetime_points, created_at, updated_at)
           SELECT member_id, '{m}', '{p}', 'Member ' || g, lpad(g::text, 16, '0'), 'X' || g,
                  sum(remaining), sum(points), min(earned_at), max(earned_at)
             FROM bench_lots GROUP BY member_id, g ORDER BY g;
         INSERT INTO point_lots (merchant_id, member_id, activity_id, earned_at, expires_at, points, remaining)
           SELECT '{m}', member_id, activity_id, earned_at, expires_at, points, remaining
             FROM bench_lots ORDER BY g, i;
         INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after,
                                       reason, created_at, seq, qualifying)
           SELECT id, '{m}', member_id, type, delta,
                  sum(delta) OVER (PARTITION BY g ORDER BY seq), reason, created_at, seq, qualifying
             FROM (SELECT activity_id AS id, member_id, g, 'earn' AS type, points AS delta,
                          'purchase' AS reason, earned_at AS created_at, g * 8 + i AS seq,
                          points AS qualifying
                     FROM bench_lots
                   UNION ALL
                   SELECT gen_random_uuid(), member_id, g, 'spend', remaining - points,
                          'paid with points', '{at}'::timestamptz - interval '10 days', g * 8 + 7, 0
                     FROM bench_lots WHERE i = 1 AND remaining < points) a
            ORDER BY seq;
         SELECT setval(pg_get_serial_sequence('point_activities', 'seq'), (SELECT max(seq) FROM point_activities));
         INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id, authentication_token, download_token)
           SELECT gen_random_uuid(), '{m}', 'bench' || card_number, id, 'loyalty-default',
                  md5(card_number || 'a'), md5(card_number || 'd')
             FROM members WHERE program_id = '{p}' ORDER BY card_number;
         INSERT INTO devices (device_library_identifier, push_token)
           SELECT 'dev' || g, lpad(to_hex(g), 64, '0') FROM generate_series(1, {due}) g;
         INSERT INTO registrations (device_library_identifier, pass_id, merchant_id)
           SELECT 'dev' || ltrim(substr(serial_number, 6), '0'), id, merchant_id
             FROM passes WHERE serial_number LIKE 'bench%' AND substr(serial_number, 6)::bigint <= {due};",
        m = merchant["merchant_id"].as_str().unwrap(),
        p = program["id"].as_str().unwrap(),
    ))
    .unwrap();
    // Apart: VACUUM cannot run in the batch's implicit transaction.
    for table in [
        "members",
        "point_lots",
        "point_activities",
        "passes",
        "registrations",
    ] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }
    let lots = count(&mut conn, "SELECT count(*) AS n FROM point_lots");
    let activities = count(&mut conn, "SELECT count(*) AS n FROM point_activities");
    println!(
        "set-up: {n} members with passes, {lots} lots, {activities} activities, {due} devices in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // `EXPIRY_EXPLAIN=1`: the plans of this connection's slow statements, jobs included,
    // kept in the cluster's log and copied to /tmp/points_expiry_plans.log at the end.
    let explain = std::env::var("EXPIRY_EXPLAIN").is_ok();
    if explain {
        conn.batch_execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = '20ms';
             SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;
             SET auto_explain.log_nested_statements = on;",
        )
        .unwrap();
    }

    // 1. Reminders three days ahead: one message per member, pushed to its device.
    let channels = Channels::new(false);
    let _ = std::fs::write("/proc/self/clear_refs", "5"); // resets this process's VmHWM
    let rss_before = status_kb("self", "VmRSS");
    let job = passfold::jobs::reminders::Reminders { channels };
    let started = Instant::now();
    let reminded = job.run(&mut conn, remind_at).unwrap();
    let job_took = started.elapsed();
    assert_eq!(reminded as i64, due, "members reminded");
    loop {
        let pushes = mock.accepted().await;
        let done = pushes
            .iter()
            .map(|p| p.token.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len() as i64;
        if done >= due {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {done} of {due} pushes after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    println!(
        "{} delivering process(es); reminders as of {remind_at}: job committed {reminded} members' messages in {:.2} s; last of {due} pushes accepted {:.2} s after the job started: {:.0} pushes/s (target: <= 10 s)",
        delivering.len(),
        job_took.as_secs_f64(),
        total.as_secs_f64(),
        due as f64 / total.as_secs_f64()
    );
    println!(
        "peak resident memory: server (delivery) {:.1} MB; job process (this bench, with the APNs stand-in) {:.1} MB peak, {:.1} MB before; APNs connections: {}",
        status_kb(&server_pid, "VmHWM") as f64 / 1024.0,
        status_kb("self", "VmHWM") as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        mock.connections().await
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM point_lots WHERE reminded <> '{}'"
        ),
        due
    );
    // Autovacuum's turn after 100,000 rewritten lots and passes, so that expiry starts from
    // the state it would meet three days later.
    while count(
        &mut conn,
        "SELECT count(*) AS n FROM outbox WHERE channel = 'apple'",
    ) > 0
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for table in ["point_lots", "passes", "outbox"] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }

    // 2. Expiry at the instant, against the plain UPDATE of the same rows. The server's
    // delivery loop is paused (SIGSTOP) meanwhile, so both measure the database work alone;
    // it pushes the expired passes afterwards.
    let at_sql = at.to_rfc3339();
    for pid in &delivering {
        Command::new("kill").args(["-STOP", pid]).status().unwrap();
    }
    let mut reference = Vec::new();
    for _ in 0..2 {
        let (rows, took) = plain_update(&mut conn, &at_sql);
        assert_eq!(rows, due);
        reference.push(took);
    }
    let best = reference.iter().copied().fold(f64::MAX, f64::min);
    let job = passfold::jobs::expiry::Expiry { channels };
    let started = Instant::now();
    let expired = job.run(&mut conn, at).unwrap() as i64;
    let took = started.elapsed().as_secs_f64();
    for pid in &delivering {
        Command::new("kill").args(["-CONT", pid]).status().unwrap();
    }
    assert_eq!(expired, due, "lots expired");
    println!(
        "plain UPDATE of the {due} due lots (rolled back): {} s: best {:.0} rows/s",
        reference
            .iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        due as f64 / best
    );
    println!(
        "expiry as of {at}: {expired} lots in {took:.2} s: {:.0} lots/s; ratio to the plain UPDATE {:.2} (target >= 0.3)",
        expired as f64 / took,
        best / took
    );

    // The ledger: balances are what the lots hold and the activities sum to, one `expire`
    // activity per expired lot, nothing due left.
    let started = Instant::now();
    let report = passfold::giftcard::verify::verify(&mut conn, None).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM point_activities WHERE type = 'expire'"
        ),
        due
    );
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM point_lots l
                  WHERE l.expires_at <= '{at_sql}'
                    AND (NOT l.expired OR l.remaining > 0
                         OR (SELECT count(*) FROM point_activities a
                              WHERE a.lot_id = l.id AND a.type = 'expire') <> 1)"
            )
        ),
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM point_lots WHERE expired"
        ),
        due
    );
    println!(
        "ledger verified ({} members): balances = open lots = activities, one expire activity per expired lot ({:.0} s)",
        report.members_checked,
        started.elapsed().as_secs_f64()
    );
    println!("load average at end: {}", loadavg());
    drop(workers);
    drop(server);
    if explain {
        let _ = std::fs::copy(
            data.join("postgres/server.log"),
            "/tmp/points_expiry_plans.log",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
