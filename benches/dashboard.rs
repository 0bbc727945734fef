//! The dashboard with 1,000,000 members: p50/p95/p99 of `GET /api/v1/dashboard` over HTTP
//! (release server on a private cluster), and how long the worker's jobs take to run once
//! (`passfold worker --once`, which refreshes the figures of merchants that big).
//!
//! Data (SQL, as the member_search bench): `DASH_N` members (default 1000000) with passes,
//! each with a welcome and a purchase in the points ledger (2 rows each), a fifth of the
//! passes registered on an Apple device, a tenth saved in Google Wallet, and 10,000 gift
//! cards.
//!
//! Measured: views that each sum the figures (the snapshot removed before each, as every
//! view was before snapshots), one run of the worker's jobs, then ordinary views.
//!
//! Run: `cargo bench --bench dashboard` (`DASH_LIVE_VIEWS` summing views, default 10;
//! `DASH_REQUESTS` ordinary views, default 50).

#[path = "support/members.rs"]
mod support;

use diesel::connection::SimpleConnection;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{loadavg, summary, Bench};

#[tokio::main]
async fn main() {
    let n: i64 = std::env::var("DASH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let requests: usize = std::env::var("DASH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    println!("load average at start: {}", loadavg());
    let bench = Bench::start("dashboard", &[]).await;
    let mut conn = bench.connect();
    let took = bench.insert_members(&mut conn, n);
    let started = Instant::now();
    conn.batch_execute(&format!(
        "UPDATE members SET points = 50 + (hashint8(card_number::bigint) & 1023),
                            lifetime_points = 50 + (hashint8(card_number::bigint) & 1023)
          WHERE program_id = '{p}';
         INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after)
           SELECT gen_random_uuid(), merchant_id, id, 'welcome', 50, 50
             FROM members WHERE program_id = '{p}';
         INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after,
                                       purchase_amount, purchase_currency)
           SELECT gen_random_uuid(), merchant_id, id, 'purchase', points - 50, points,
                  (points - 50) * 100, 'EUR'
             FROM members WHERE program_id = '{p}';
         INSERT INTO devices (device_library_identifier, push_token)
           SELECT 'device' || serial_number, md5(serial_number)
             FROM passes WHERE merchant_id = '{m}' AND hashtext(serial_number) % 5 = 0;
         INSERT INTO registrations (device_library_identifier, pass_id, merchant_id)
           SELECT 'device' || serial_number, id, merchant_id
             FROM passes WHERE merchant_id = '{m}' AND hashtext(serial_number) % 5 = 0;
         INSERT INTO google_installs (pass_id, saved, merchant_id)
           SELECT id, true, merchant_id
             FROM passes WHERE merchant_id = '{m}' AND hashtext(serial_number || 'g') % 10 = 0;
         INSERT INTO gift_cards (id, merchant_id, template_id, gan, pin_hash, currency, balance, state)
           SELECT gen_random_uuid(), '{m}', 'gift-card-default', (6000000000000000 + g)::text,
                  'x', 'EUR', g % 10000, CASE WHEN g % 7 = 0 THEN 'deactivated' ELSE 'active' END
             FROM generate_series(1::bigint, 10000) g;",
        p = bench.program_id,
        m = bench.merchant_id,
    ))
    .unwrap();
    for table in [
        "members",
        "point_activities",
        "devices",
        "registrations",
        "google_installs",
        "gift_cards",
    ] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }
    println!(
        "set-up: {n} members with passes in {:.0} s, ledger, installs and gift cards in {:.0} s",
        took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let url = format!("{}/api/v1/dashboard", bench.base);
    let view = || async {
        let sent = Instant::now();
        let res = bench
            .client
            .get(&url)
            .bearer_auth(&bench.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        (sent.elapsed().as_secs_f64() * 1000.0, body)
    };
    let (first, body) = view().await;
    println!("first view: {first:.1} ms");
    println!("answer: {body}");
    assert_eq!(body["programs"][0]["members"], n);

    // Views that each sum the figures over the ledgers, as every view did before the
    // snapshots: the snapshot is removed before each (where there is one).
    let live_views: usize = std::env::var("DASH_LIVE_VIEWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut ms = Vec::with_capacity(live_views);
    for _ in 0..live_views {
        conn.batch_execute(
            "DO $$ BEGIN
               IF to_regclass('dashboard_snapshots') IS NOT NULL THEN
                 DELETE FROM dashboard_snapshots;
               END IF;
             END $$",
        )
        .unwrap();
        ms.push(view().await.0);
    }
    let (p50, p95, p99) = summary(ms);
    println!(
        "GET /api/v1/dashboard summing on the view, {live_views} views: p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms"
    );
    view().await;

    // The worker's jobs once, as a catch-up `--once` would run them (the figures' job
    // among them, where there is one).
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let started = Instant::now();
    let out = bench
        .command()
        .args(["worker", "--once", "--at", &now])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "passfold worker --once --at {now}: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut ms = Vec::with_capacity(requests);
    for _ in 0..requests {
        ms.push(view().await.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (p50, p95, p99) = summary(ms);
    println!(
        "\nGET /api/v1/dashboard, {requests} views one at a time: p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms"
    );
    println!("load average at end: {}", loadavg());
    drop(conn);
    drop(bench);
}
