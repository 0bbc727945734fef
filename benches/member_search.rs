//! Member search with 1,000,000 members: p50/p95/p99 of `GET /programs/{id}/members?q=`
//! over HTTP (release server on a private cluster) for each kind of term, against the same
//! search run directly (`Member::search`, the same SQL) over one connection; the plan of
//! each; and what a Google save link would add per listed member.
//!
//! Run: `cargo bench --bench member_search` (`SEARCH_N` members, default 1000000;
//! `SEARCH_REQUESTS` per kind, default 200).

#[path = "support/members.rs"]
mod support;

use passfold::domain::{ApiKeySecret, PageCursor, SearchTerm};
use passfold::models::member::{Member, SearchQuery};
use serde_json::Value;
use std::time::Instant;
use support::{loadavg, summary, Bench, FIRST, LAST};

/// The term of the i-th request of a kind.
type TermOf = Box<dyn Fn(usize) -> String>;

#[tokio::main]
async fn main() {
    let n: i64 = std::env::var("SEARCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let requests: usize = std::env::var("SEARCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("load average at start: {}", loadavg());
    let bench = Bench::start("search", &[]).await;
    let (base, client, pos) = (&bench.base, &bench.client, &bench.pos);
    let program_id = bench.program_id.clone();
    let mut conn = bench.connect();
    let took = bench.insert_members(&mut conn, n);
    println!(
        "set-up: {n} members with passes in {:.0} s",
        took.as_secs_f64()
    );

    // Terms per kind, varied per request. Name fragments are common on purpose: a surname
    // stem matches 1/60 of the members (about 17,000 of 1,000,000).
    let stems: Vec<String> = LAST
        .iter()
        .map(|l| l.chars().take(5).collect::<String>().to_lowercase())
        .collect();
    let full: Vec<String> = (0..60)
        .map(|i| format!("{} {}", FIRST[i % FIRST.len()], LAST[(i * 7) % LAST.len()]))
        .collect();
    let kinds: Vec<(&str, TermOf)> = vec![
        ("list, first page (no q)", Box::new(|_| String::new())),
        (
            "name substring, surname stem (~1.7% match)",
            Box::new(move |i| stems[i % stems.len()].clone()),
        ),
        (
            "name substring, full name (~0.06% match)",
            Box::new(move |i| full[i % full.len()].clone()),
        ),
        (
            "email prefix",
            Box::new(move |i| format!("client{}", (i * 4099) % n as usize + 1)),
        ),
        (
            "email exact",
            Box::new(move |i| {
                let g = (i * 4099) % n as usize + 1;
                format!("Client{g}@MAIL{}.example", g % 10)
            }),
        ),
        (
            "phone, formatted, 8 digits",
            Box::new(move |i| {
                let d = format!("{}", 79000000000u64 + ((i as u64 * 4099) % n as u64));
                format!("+{} ({}) {}-{}", &d[..1], &d[1..4], &d[4..7], &d[7..8])
            }),
        ),
        (
            "card prefix, 10 digits",
            Box::new(move |i| {
                let c = 4000000000000000u64 + ((i as u64 * 4099) % n as u64 + 1) * 7919;
                c.to_string()[..10].to_string()
            }),
        ),
        (
            "short query (1-2 characters)",
            Box::new(|i| ["и", "jo", "ма", "s", "Ли", "e"][i % 6].to_string()),
        ),
    ];

    let secret = ApiKeySecret::parse(pos).unwrap();
    let tenant = passfold::auth::tenant_of_key(&mut conn, &secret)
        .unwrap()
        .unwrap();
    let program_uuid: uuid::Uuid = program_id.parse().unwrap();
    let list_url = format!("{base}/api/v1/programs/{program_id}/members");
    // Warm the server and the cache of the database as a running service would be.
    for (_, term) in &kinds {
        for i in 0..20 {
            let res = client
                .get(&list_url)
                .bearer_auth(pos)
                .query(&[("q", term(i))])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
    println!(
        "\n| kind | HTTP p50 / p95 / p99 (ms) | direct SQL p50 / p95 / p99 (ms) | p50 ratio | found (mean) |"
    );
    println!("|---|---|---|---|---|");
    let mut plans = Vec::new();
    for (name, term) in &kinds {
        let mut http = Vec::with_capacity(requests);
        let mut direct = Vec::with_capacity(requests);
        let mut found = 0usize;
        for i in 0..requests {
            let q = term(i);
            let query = SearchQuery {
                program_id: Some(program_uuid),
                term: SearchTerm::parse(Some(&q)).unwrap(),
                segment: None,
                narrow: Default::default(),
            };
            // Whichever runs first reads the matching rows into shared buffers for the
            // other: the two take turns at going first.
            let mut direct_once = || {
                let sent = Instant::now();
                let rows = Member::search(&mut conn, &tenant, &query, None, 51).unwrap();
                direct.push(sent.elapsed().as_secs_f64() * 1000.0);
                rows.len()
            };
            let direct_first = i % 2 == 1;
            let mut direct_rows = if direct_first { direct_once() } else { 0 };
            let sent = Instant::now();
            let res = client
                .get(&list_url)
                .bearer_auth(pos)
                .query(&[("q", q.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{q}");
            let page: Value = res.json().await.unwrap();
            http.push(sent.elapsed().as_secs_f64() * 1000.0);
            let listed = page["members"].as_array().unwrap().len();
            found += listed;
            if !direct_first {
                direct_rows = direct_once();
            }
            assert!(direct_rows >= listed);
        }
        let (h50, h95, h99) = summary(http);
        let (d50, d95, d99) = summary(direct);
        println!(
            "| {name} | {h50:.1} / {h95:.1} / {h99:.1} | {d50:.1} / {d95:.1} / {d99:.1} | {:.2} | {:.0} |",
            h50 / d50,
            found as f64 / requests as f64
        );
        let query = SearchQuery {
            program_id: Some(program_uuid),
            term: SearchTerm::parse(Some(&term(1))).unwrap(),
            segment: None,
            narrow: Default::default(),
        };
        let plan = Member::explain_search(
            &mut conn,
            &tenant,
            &query,
            None,
            51,
            "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON",
        )
        .unwrap();
        plans.push((name.to_string(), term(1), plan));
    }

    // A deep page: a cursor from the middle of the list.
    let mut deep = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..requests.min(100) {
        let mut query = vec![("limit", "200".to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let sent = Instant::now();
        let page: Value = client
            .get(&list_url)
            .bearer_auth(pos)
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        deep.push(sent.elapsed().as_secs_f64() * 1000.0);
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    let (p50, p95, p99) = summary(deep);
    println!(
        "| list, 100 pages of 200 in a row by cursor | {p50:.1} / {p95:.1} / {p99:.1} | | | 200 |"
    );
    if let Some(c) = &cursor {
        let after = PageCursor::decode(c).unwrap();
        let plan = Member::explain_search(
            &mut conn,
            &tenant,
            &SearchQuery {
                program_id: Some(program_uuid),
                term: SearchTerm::Everyone,
                segment: None,
                narrow: Default::default(),
            },
            Some(&after),
            201,
            "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON",
        )
        .unwrap();
        plans.push(("list after a cursor".into(), String::new(), plan));
    }

    // What a Google save link per listed member would cost: `GET /members/{id}` of members
    // whose link was never made (signed on the spot; Google not configured, so no REST).
    let page: Value = client
        .get(&list_url)
        .bearer_auth(pos)
        .query(&[("limit", "200"), ("q", "ольга")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let mut with_link = Vec::new();
    for id in &ids {
        let sent = Instant::now();
        let member: Value = client
            .get(format!("{base}/api/v1/members/{id}"))
            .bearer_auth(pos)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        with_link.push(sent.elapsed().as_secs_f64() * 1000.0);
        assert!(member["google_save_url"].is_string());
    }
    let mut again = Vec::new();
    for id in &ids {
        let sent = Instant::now();
        client
            .get(format!("{base}/api/v1/members/{id}"))
            .bearer_auth(pos)
            .send()
            .await
            .unwrap();
        again.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let (c50, _, _) = summary(with_link);
    let (w50, _, _) = summary(again);
    println!(
        "\nGET /members/{{id}} with a fresh Google save link: p50 {c50:.2} ms; the same again (link cached): p50 {w50:.2} ms; a list of {} would add about {:.0} ms signing links",
        ids.len(),
        (c50 - w50) * ids.len() as f64
    );

    println!("\nPlans (EXPLAIN ANALYZE, the term of request 1):");
    for (name, term, plan) in plans {
        println!("\n{name}: q={term:?}");
        for line in plan {
            println!("    {line}");
        }
    }
    println!("\nload average at end: {}", loadavg());
    drop(conn);
    drop(bench);
}
