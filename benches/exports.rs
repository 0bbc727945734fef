//! The member export (`GET /api/v1/exports/members.csv`) of 1,000,000 members from the
//! release server on its private cluster: rows/s, and the server's peak resident memory
//! (VmHWM) after the first 100,000 rows and after the last, to show it stays flat; against
//! PostgreSQL's own `COPY (SELECT ...) TO STDOUT WITH CSV` of the same columns through
//! psql on the same server.
//!
//! Run: `cargo bench --bench exports` (`EXPORT_MEMBERS`, default 1000000).

#[path = "support/members.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Instant;
use support::{loadavg, status_kb, Bench};

#[tokio::main]
async fn main() {
    let n: i64 = std::env::var("EXPORT_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let first_mark = (n / 10).max(1);
    println!("load average at start: {}", loadavg());
    let bench = Bench::start("exports", &[]).await;
    let mut conn = bench.connect();
    let took = bench.insert_members(&mut conn, n);
    println!(
        "set-up: {n} members with passes in {:.0} s",
        took.as_secs_f64()
    );
    let pid = bench.server_pid();
    let rss_start = status_kb(pid, "VmHWM");

    // The reference: the same columns (without the segment lookup) by COPY through psql.
    let started = Instant::now();
    let copy = Command::new("psql")
        .arg(&bench.db_url)
        .arg("-c")
        .arg(format!(
            "COPY (SELECT m.id, m.external_id, m.name, m.email, m.phone, m.card_number, m.points,
                          m.tier, m.created_at, m.updated_at,
                          'http://x/passes/' || p.download_token,
                          'http://x/passes/' || p.download_token || '/google'
                     FROM members m JOIN passes p ON p.member_id = m.id
                    WHERE m.program_id = '{}' ORDER BY m.search_name, m.id) TO STDOUT WITH CSV",
            bench.program_id
        ))
        .stdout(Stdio::null())
        .status()
        .expect("psql");
    assert!(copy.success());
    let copy_took = started.elapsed().as_secs_f64();
    println!(
        "reference: COPY (SELECT ...) TO STDOUT WITH CSV of {n} rows: {copy_took:.2} s, {:.0} rows/s",
        n as f64 / copy_took
    );

    let started = Instant::now();
    let res = bench
        .client
        .get(format!(
            "{}/api/v1/exports/members.csv?program_id={}",
            bench.base, bench.program_id
        ))
        .bearer_auth(&bench.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut res = res;
    let (mut lines, mut bytes) = (0i64, 0u64);
    let mut at_mark = None;
    while let Some(chunk) = res.chunk().await.expect("the export streams to the end") {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as i64;
        if at_mark.is_none() && lines > first_mark {
            at_mark = Some((
                started.elapsed().as_secs_f64(),
                status_kb(pid, "VmHWM"),
                status_kb(pid, "VmRSS"),
            ));
        }
    }
    let took = started.elapsed().as_secs_f64();
    assert_eq!(lines, n + 1, "a header and one row per member");
    let (mark_took, mark_hwm, mark_rss) = at_mark.unwrap();
    println!(
        "export: {n} rows ({:.0} MB) in {took:.2} s: {:.0} rows/s; ratio to COPY {:.2}",
        bytes as f64 / 1e6,
        n as f64 / took,
        copy_took / took
    );
    println!(
        "server peak resident memory (VmHWM): {:.1} MB before, {:.1} MB after {first_mark} rows ({mark_took:.2} s; RSS {:.1} MB), {:.1} MB after all {n} (RSS {:.1} MB)",
        rss_start as f64 / 1024.0,
        mark_hwm as f64 / 1024.0,
        mark_rss as f64 / 1024.0,
        status_kb(pid, "VmHWM") as f64 / 1024.0,
        status_kb(pid, "VmRSS") as f64 / 1024.0,
    );
    println!("load average at end: {}", loadavg());
}
