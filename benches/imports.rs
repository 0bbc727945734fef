//! CSV import at scale: 100,000 members with their points and tiers, then their history of
//! ~300,000 purchases, through `POST /api/v1/imports` on a release server (its own worker
//! loop runs the `imports` job), timed from the upload's start to the state `done`; against
//! PostgreSQL's `COPY` of the same member rows (and purchase rows) into plain tables on the
//! same server. Then the ledger is checked (`ledger verify`'s checks) and the members file is
//! run a second time (everything skipped).
//!
//! Run: `cargo bench --bench imports` (`IMPORT_MEMBERS`, default 100000; purchases are 3 per
//! member).

#[path = "support/members.rs"]
mod support;

use diesel::connection::SimpleConnection;
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};
use support::Bench;

fn env_i64(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run_import(bench: &Bench, query: &str, body: Vec<u8>) -> (Value, Duration) {
    let started = Instant::now();
    let accepted: Value = bench
        .client
        .post(format!("{}/api/v1/imports?{query}", bench.base))
        .bearer_auth(&bench.admin)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().expect("an import id").to_string();
    loop {
        let view: Value = bench
            .client
            .get(format!("{}/api/v1/imports/{id}", bench.base))
            .bearer_auth(&bench.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["state"] == "done" || view["state"] == "failed" {
            return (view, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `COPY ... FROM STDIN` of `csv` into a plain table, through psql (diesel has no COPY FROM).
fn copy(bench: &Bench, table: &str, columns: &str, csv: &[u8]) -> Duration {
    let mut conn = bench.connect();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns})"
    ))
    .unwrap();
    let started = Instant::now();
    let mut psql = std::process::Command::new("psql")
        .arg(&bench.db_url)
        .args([
            "-q",
            "-c",
            &format!("COPY {table} FROM STDIN (FORMAT csv, HEADER true)"),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    psql.stdin.take().unwrap().write_all(csv).unwrap();
    assert!(psql.wait().unwrap().success());
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let n = env_i64("IMPORT_MEMBERS", 100_000);
    let bench = Bench::start("imports", &[]).await;
    // The program gets tiers, so the file's tiers are checked.
    let mut conn = bench.connect();
    conn.batch_execute(&format!(
        "UPDATE programs SET tiers = '[{{\"name\":\"Bronze\",\"min_points\":0}},{{\"name\":\"Silver\",\"min_points\":500}}]' WHERE id = '{}'",
        bench.program_id
    ))
    .unwrap();
    let mut members =
        String::from("external_id,name,email,phone,points,tier,birth_date,joined_at\n");
    for i in 0..n {
        let first = support::FIRST[i as usize % support::FIRST.len()];
        let last = support::LAST[(i as usize / 7) % support::LAST.len()];
        members.push_str(&format!(
            "ext-{i},{first} {last},client{i}@mail.example,+7{},{},{},19{:02}-{:02}-{:02},2020-01-{:02}\n",
            9_000_000_000 + i,
            i % 3000,
            if i % 3000 >= 500 { "Silver" } else { "Bronze" },
            50 + i % 50,
            1 + i % 12,
            1 + i % 28,
            1 + i % 28
        ));
    }
    let mut purchases = String::from("external_id,amount,currency,purchased_at,purchase_id\n");
    for i in 0..n {
        for k in 0..3 {
            purchases.push_str(&format!(
                "ext-{i},{},EUR,2025-{:02}-{:02}T12:00:00Z,p-{i}-{k}\n",
                100 + (i * 7 + k) % 9000,
                1 + (i + k) % 12,
                1 + (i + k) % 28
            ));
        }
    }
    let purchase_rows = n * 3;
    println!(
        "files: {n} members ({} MB), {purchase_rows} purchases ({} MB); load {}",
        members.len() / 1_000_000,
        purchases.len() / 1_000_000,
        support::loadavg()
    );

    let copy_members = copy(
        &bench,
        "copy_members",
        "external_id text, name text, email text, phone text, points bigint, tier text, birth_date text, joined_at text",
        members.as_bytes(),
    );
    let copy_purchases = copy(
        &bench,
        "copy_purchases",
        "external_id text, amount bigint, currency text, purchased_at timestamptz, purchase_id text",
        purchases.as_bytes(),
    );

    let query = format!("kind=members&program_id={}", bench.program_id);
    let (view, took) = run_import(&bench, &query, members.clone().into_bytes()).await;
    assert_eq!(view["imported"], n, "{view}");
    let q = format!("kind=purchases&program_id={}", bench.program_id);
    let (pview, ptook) = run_import(&bench, &q, purchases.into_bytes()).await;
    assert_eq!(pview["imported"], purchase_rows, "{pview}");

    let verify: Value = bench
        .client
        .get(format!("{}/api/v1/ledger/verify", bench.base))
        .bearer_auth(&bench.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["problems"], serde_json::json!([]), "{verify}");
    let (again, again_took) = run_import(&bench, &query, members.into_bytes()).await;
    assert_eq!(
        (&again["imported"], &again["skipped"]),
        (&Value::from(0), &Value::from(n))
    );

    let rate = |rows: i64, d: Duration| rows as f64 / d.as_secs_f64();
    let (mi, mc) = (rate(n, took), rate(n, copy_members));
    let (pi, pc) = (
        rate(purchase_rows, ptook),
        rate(purchase_rows, copy_purchases),
    );
    let all = rate(n + purchase_rows, took + ptook);
    let all_copy = rate(n + purchase_rows, copy_members + copy_purchases);
    println!("members:   import {took:.2?} ({mi:.0} rows/s), COPY {copy_members:.2?} ({mc:.0} rows/s), ratio {:.3}", mi / mc);
    println!("purchases: import {ptook:.2?} ({pi:.0} rows/s), COPY {copy_purchases:.2?} ({pc:.0} rows/s), ratio {:.3}", pi / pc);
    println!(
        "together:  {all:.0} rows/s against {all_copy:.0} rows/s, ratio {:.3}",
        all / all_copy
    );
    println!(
        "second run of the members file (all skipped): {again_took:.2?}; ledger verified; load {}",
        support::loadavg()
    );
}
