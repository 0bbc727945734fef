//! Segments: purchases with their own time, RFM scores and groups, lifecycle stages. The
//! expected answers are computed here in plain Rust from the histories the test sent
//! (percent ranks counted member by member, medians sorted by hand), not by the SQL the
//! service runs, and compared member by member, in sizes and in filtered lists.

use crate::helpers::{id_of, spawn_app_on, TestApp};
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::jobs::Job;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const DAY: i64 = 86_400;

async fn program(app: &TestApp, key: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": "Coffee Club",
        "template": "loyalty-default",
        "currency": "EUR",
        "points_per_unit": 10,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    TestApp::expect_json(app.post_json("/api/v1/programs", key, &body).await, 201).await
}

/// One purchase of a generated history.
#[derive(Clone, Debug)]
struct Bought {
    at: DateTime<Utc>,
    amount: i64,
    /// Returned afterwards, minor units.
    refunded: i64,
}

/// What the rules say of one member, computed here.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    cell: Option<String>,
    group: &'static str,
    stage: &'static str,
}

/// The documented mapping of cells onto groups (docs/SEGMENTS.md), written out again.
fn group_of(cell: &str) -> &'static str {
    match cell {
        "333" | "332" => "champions",
        "331" | "233" | "232" | "231" => "loyal",
        "323" | "322" | "321" => "promising",
        "313" | "213" => "big_spenders",
        "312" | "311" => "new",
        "223" | "222" | "221" => "needs_attention",
        "212" | "211" | "113" => "hibernating",
        "133" | "132" => "cant_lose",
        "131" | "123" | "122" | "121" => "at_risk",
        "112" | "111" => "lost",
        other => panic!("no cell {other}"),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The stage of a member with these purchase times (sorted, returns already left out).
fn stage_of(
    times: &[DateTime<Utc>],
    now: DateTime<Utc>,
    cooling: i64,
    lapsed: i64,
) -> &'static str {
    let n = times.len();
    if n == 0 {
        return "registered";
    }
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds() as f64)
        .collect();
    let day = DAY as f64;
    let (cool, lapse) = if n >= 3 {
        let m = median(gaps.clone());
        ((1.5 * m).max(day), (3.0 * m).max(day))
    } else {
        ((cooling * DAY) as f64, (lapsed * DAY) as f64)
    };
    let silence = (now - times[n - 1]).num_seconds() as f64;
    if silence > lapse {
        return "lapsed";
    }
    if silence > cool {
        return "cooling";
    }
    if n == 1 {
        return "first_purchase";
    }
    // The purchases before the last: a rhythm from 3 of them.
    let lapse_before = if n > 3 {
        (3.0 * median(gaps[..gaps.len() - 1].to_vec())).max(day)
    } else {
        (lapsed * DAY) as f64
    };
    if gaps[gaps.len() - 1] > lapse_before {
        "reactivated"
    } else {
        "repeat"
    }
}

/// Scores 1-3 by PostgreSQL's percent rank, (rank - 1) / (n - 1), 0 for a lone buyer,
/// counted here as "buyers strictly worse": 3 from 2/3, 2 from 1/3.
fn tertile(worse: usize, buyers: usize) -> u8 {
    if buyers <= 1 {
        return 1;
    }
    let (w, n1) = (worse as i64, buyers as i64 - 1);
    if 3 * w >= 2 * n1 {
        3
    } else if 3 * w >= n1 {
        2
    } else {
        1
    }
}

fn expected(
    histories: &[Vec<Bought>],
    now: DateTime<Utc>,
    window_days: i64,
    cooling: i64,
    lapsed: i64,
) -> Vec<Expected> {
    struct Raw {
        days: i64,
        f: usize,
        m: i64,
    }
    let raws: Vec<Option<Raw>> = histories
        .iter()
        .map(|h| {
            let live: Vec<&Bought> = h
                .iter()
                .filter(|b| b.refunded < b.amount && b.at <= now)
                .filter(|b| b.at > now - Duration::days(window_days))
                .collect();
            let last = live.iter().map(|b| b.at).max()?;
            Some(Raw {
                days: (now - last).num_seconds().div_euclid(DAY),
                f: live.len(),
                m: live.iter().map(|b| b.amount - b.refunded).sum(),
            })
        })
        .collect();
    let buyers: Vec<&Raw> = raws.iter().flatten().collect();
    let n = buyers.len();
    histories
        .iter()
        .zip(&raws)
        .map(|(h, raw)| {
            let mut times: Vec<DateTime<Utc>> = h
                .iter()
                .filter(|b| b.refunded < b.amount && b.at <= now)
                .map(|b| b.at)
                .collect();
            times.sort();
            let stage = stage_of(&times, now, cooling, lapsed);
            let Some(raw) = raw else {
                return Expected {
                    cell: None,
                    group: "no_purchases",
                    stage,
                };
            };
            let r = tertile(buyers.iter().filter(|b| b.days > raw.days).count(), n);
            let f = tertile(buyers.iter().filter(|b| b.f < raw.f).count(), n);
            let m = tertile(buyers.iter().filter(|b| b.m < raw.m).count(), n);
            let cell = format!("{r}{f}{m}");
            Expected {
                group: group_of(&cell),
                cell: Some(cell),
                stage,
            }
        })
        .collect()
}

/// A small deterministic generator (the data set must not change between runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Histories with the edge cases named: no purchase, one purchase (recent, cooling,
/// lapsed), identical histories (ties at every border), purchases only before the
/// window, returns in full and in part; the rest random, amounts from a short list so
/// that money ties too.
fn histories(now: DateTime<Utc>) -> Vec<Vec<Bought>> {
    let at = |hours: i64| now - Duration::hours(hours);
    let b = |hours: i64, amount: i64| Bought {
        at: at(hours),
        amount,
        refunded: 0,
    };
    let mut out: Vec<Vec<Bought>> = vec![
        vec![],
        vec![],
        vec![],
        vec![b(5 * 24, 1500)],
        vec![b(40 * 24, 1500)],
        vec![b(200 * 24, 4000)],
        // Before the window only: no RFM, lapsed.
        vec![b(400 * 24, 2000), b(380 * 24, 2000)],
        // Its only purchase returned in full: as if it never bought.
        vec![Bought {
            refunded: 2500,
            ..b(10 * 24, 2500)
        }],
        // The latest returned in full, another in part.
        vec![
            b(100 * 24, 3000),
            Bought {
                refunded: 1000,
                ..b(50 * 24, 3000)
            },
            Bought {
                refunded: 5000,
                ..b(2 * 24, 5000)
            },
        ],
    ];
    // Six identical histories: ties on all three values.
    for _ in 0..6 {
        out.push(vec![
            b(30 * 24 + 3, 2000),
            b(20 * 24 + 3, 2000),
            b(10 * 24 + 3, 2000),
        ]);
    }
    let mut rng = Lcg(16);
    let amounts = [500, 1000, 1500, 2000, 3000, 5000];
    while out.len() < 36 {
        let k = 2 + rng.next(6) as usize;
        let mut hours = BTreeSet::new();
        while hours.len() < k {
            hours.insert(1 + rng.next(360 * 24) as i64);
        }
        out.push(
            hours
                .into_iter()
                .map(|h| b(h, amounts[rng.next(amounts.len() as u64) as usize]))
                .collect(),
        );
    }
    out
}

async fn members_of(app: &TestApp, key: &str, program: &str, filter: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/programs/{program}/members?limit=4&{filter}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get_json(&path, key).await;
        for m in page["members"].as_array().unwrap() {
            assert!(found.insert(id_of(m).to_string()), "listed twice: {m}");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return found,
        }
    }
}

#[tokio::test]
async fn rfm_cells_groups_and_stages_match_an_independent_computation() {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Segments");
    let p = program(
        &app,
        &m.admin_key,
        json!({"cooling_days": 30, "lapsed_days": 90}),
    )
    .await;
    assert_eq!(p["cooling_days"], 30);
    assert!(p.get("rfm_thresholds").is_none(), "{p}");
    let pid = id_of(&p).to_string();
    let hs = histories(now);
    let mut ids = Vec::new();
    for (i, h) in hs.iter().enumerate() {
        let member = app
            .enroll(&m.pos_key, &pid, &format!("Member {i:02}"))
            .await;
        let id = id_of(&member).to_string();
        assert_eq!(member["rfm"], Value::Null);
        assert_eq!(member["lifecycle_stage"], "registered");
        for (j, b) in h.iter().enumerate() {
            let bought = app
                .pos_ok(
                    &format!("/api/v1/members/{id}/purchases"),
                    &m.admin_key,
                    &format!("p-{i}-{j}"),
                    &json!({"amount": b.amount, "currency": "EUR", "purchased_at": b.at.to_rfc3339()}),
                )
                .await;
            if b.refunded > 0 {
                let purchase = bought["purchase_id"].as_str().unwrap();
                app.pos_ok(
                    &format!("/api/v1/members/{id}/purchases/{purchase}/refund"),
                    &m.pos_key,
                    &format!("r-{i}-{j}"),
                    &json!({"amount": b.refunded}),
                )
                .await;
            }
        }
        ids.push(id);
    }
    // Incremental answers already carry a cell; the full run sets the tertiles.
    let member = app
        .get_json(&format!("/api/v1/members/{}", ids[3]), &m.pos_key)
        .await;
    assert_eq!(member["lifecycle_stage"], "first_purchase");
    assert!(member["rfm"]["cell"].is_string(), "{member}");
    let res = app
        .post_json(
            &format!("/api/v1/programs/{pid}/segments/recompute"),
            &m.admin_key,
            &json!({}),
        )
        .await;
    let recomputed = TestApp::expect_json(res, 200).await;

    let want = expected(&hs, now, 365, 30, 90);
    for (i, (id, w)) in ids.iter().zip(&want).enumerate() {
        let got = app
            .get_json(&format!("/api/v1/members/{id}"), &m.pos_key)
            .await;
        assert_eq!(
            got["rfm"]["cell"].as_str().map(str::to_string),
            w.cell,
            "member {i}: {:?} {got}",
            hs[i]
        );
        assert_eq!(
            got["rfm"]["group"].as_str().unwrap_or("no_purchases"),
            w.group,
            "member {i}"
        );
        assert_eq!(got["lifecycle_stage"], w.stage, "member {i}: {:?}", hs[i]);
        if let Some(cell) = &w.cell {
            let digits: Vec<u64> = cell.bytes().map(|d| u64::from(d - b'0')).collect();
            assert_eq!(
                [&got["rfm"]["r"], &got["rfm"]["f"], &got["rfm"]["m"]],
                [&json!(digits[0]), &json!(digits[1]), &json!(digits[2])]
            );
        }
    }
    // The named edge cases, said once more in words.
    assert_eq!(want[0].stage, "registered");
    assert_eq!(want[3].stage, "first_purchase");
    assert_eq!(want[4].stage, "cooling");
    assert_eq!(want[5].stage, "lapsed");
    assert_eq!((want[6].cell.as_deref(), want[6].stage), (None, "lapsed"));
    assert_eq!(
        (want[7].cell.as_deref(), want[7].stage),
        (None, "registered")
    );
    let tied: BTreeSet<_> = want[9..15].iter().map(|w| w.cell.clone()).collect();
    assert_eq!(tied.len(), 1, "identical histories, one cell");
    // The data set spreads over the scores (a check of the check).
    let cells: BTreeSet<_> = want.iter().filter_map(|w| w.cell.clone()).collect();
    let groups: BTreeSet<_> = want.iter().map(|w| w.group).collect();
    let stages: BTreeSet<_> = want.iter().map(|w| w.stage).collect();
    assert!(
        cells.len() >= 8 && groups.len() >= 6 && stages.len() >= 5,
        "{cells:?} {groups:?} {stages:?}"
    );

    // Sizes, and members listed by group, cell and stage, page by page.
    let sizes = &recomputed["segments"];
    assert_eq!(sizes["members"], 36);
    assert_eq!(sizes["cut_points"]["source"], "tertiles");
    assert_eq!(sizes["cells"].as_array().unwrap().len(), 27);
    let mut by_group: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut by_cell: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_stage: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (id, w) in ids.iter().zip(&want) {
        by_group.entry(w.group).or_default().insert(id.clone());
        by_stage.entry(w.stage).or_default().insert(id.clone());
        if let Some(c) = &w.cell {
            by_cell.entry(c.clone()).or_default().insert(id.clone());
        }
    }
    for g in sizes["groups"].as_array().unwrap() {
        let name = g["group"].as_str().unwrap();
        let expect = by_group.get(name).map_or(0, |s| s.len());
        assert_eq!(g["members"], expect, "group {name}");
        assert!(g["name_ru"].is_string());
    }
    for s in sizes["stages"].as_array().unwrap() {
        let name = s["stage"].as_str().unwrap();
        assert_eq!(
            s["members"],
            by_stage.get(name).map_or(0, |s| s.len()),
            "stage {name}"
        );
    }
    for c in sizes["cells"].as_array().unwrap() {
        let cell = c["cell"].as_str().unwrap();
        assert_eq!(
            c["members"],
            by_cell.get(cell).map_or(0, |s| s.len()),
            "cell {cell}"
        );
    }
    for (group, set) in &by_group {
        let listed = members_of(&app, &m.pos_key, &pid, &format!("group={group}")).await;
        assert_eq!(&listed, set, "group {group}");
    }
    for (cell, set) in &by_cell {
        let listed = members_of(&app, &m.pos_key, &pid, &format!("cell={cell}")).await;
        assert_eq!(&listed, set, "cell {cell}");
    }
    for (stage, set) in &by_stage {
        let listed = members_of(&app, &m.pos_key, &pid, &format!("stage={stage}")).await;
        assert_eq!(&listed, set, "stage {stage}");
    }
    let list = app
        .get_json(
            &format!("/api/v1/programs/{pid}/members?limit=200"),
            &m.pos_key,
        )
        .await;
    assert!(list["members"][0].get("lifecycle_stage").is_some());
    for bad in [
        "cell=411",
        "group=whales",
        "stage=gone",
        "group=lost&stage=lapsed",
    ] {
        let res = app
            .get_with_key(&format!("/api/v1/programs/{pid}/members?{bad}"), &m.pos_key)
            .await;
        assert_eq!(res.status().as_u16(), 422, "{bad}");
    }
    // Again at the same instant: nothing to write.
    let again = TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/programs/{pid}/segments/recompute"),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (again["written"].clone(), again["changes"].clone()),
        (json!(0), json!(0))
    );
    // Segments are the merchant's: a pos key may not read or recompute them.
    let res = app
        .get_with_key(&format!("/api/v1/programs/{pid}/segments"), &m.pos_key)
        .await;
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn merchant_thresholds_replace_tertiles_on_the_next_full_run() {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let app = spawn_app_on(Clock::manual(now), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Thresholds");
    let thresholds =
        json!({"recency_days": [7, 30], "frequency": [3, 2], "monetary": [5000, 2000]});
    let bad = json!({"recency_days": [30, 7], "frequency": [3, 2], "monetary": [5000, 2000]});
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({"name": "T", "template": "loyalty-default", "currency": "EUR",
                    "points_per_unit": 1, "rfm_thresholds": bad}),
        )
        .await;
    let problem = TestApp::expect_json(res, 422).await;
    assert!(
        problem.to_string().contains("/rfm_thresholds/recency_days"),
        "{problem}"
    );
    let p = program(
        &app,
        &m.admin_key,
        json!({"rfm_thresholds": thresholds, "rfm_window_days": 90}),
    )
    .await;
    assert_eq!(p["rfm_thresholds"], thresholds);
    let pid = id_of(&p).to_string();
    let member = app.enroll(&m.pos_key, &pid, "Ann").await;
    let id = id_of(&member).to_string();
    // 3 purchases in 90 days worth 6000, the last 10 days ago; one more before the window.
    for (k, (days, amount)) in [(100, 9000), (40, 1000), (20, 2000), (10, 3000)]
        .iter()
        .enumerate()
    {
        app.pos_ok(
            &format!("/api/v1/members/{id}/purchases"),
            &m.admin_key,
            &format!("t-{k}"),
            &json!({"amount": amount, "currency": "EUR",
                    "purchased_at": (now - Duration::days(*days)).to_rfc3339()}),
        )
        .await;
    }
    let done = TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/programs/{pid}/segments/recompute"),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["segments"]["cut_points"]["source"], "merchant");
    assert_eq!(done["segments"]["cut_points"]["window_days"], 90);
    let got = app
        .get_json(&format!("/api/v1/members/{id}"), &m.pos_key)
        .await;
    // R: 10 days is within 30, not 7: 2. F: 3 purchases: 3. M: 6000 >= 5000: 3.
    assert_eq!(
        got["rfm"],
        json!({"r": 2, "f": 3, "m": 3, "cell": "233", "group": "loyal"})
    );
}

/// The real binary's `worker --once --at`, as an operator catching up would run it.
async fn worker_once(app: &TestApp, at: DateTime<Utc>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passfold"));
    cmd.args(["worker", "--once", "--at", &at.to_rfc3339()])
        .env("DATABASE_URL", &app.db.url)
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run worker --once"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "worker --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

#[derive(Queryable, Debug, PartialEq)]
struct Change {
    from_stage: String,
    to_stage: String,
    at: DateTime<Utc>,
}

fn changes(app: &TestApp, member: &str) -> Vec<(String, String, DateTime<Utc>)> {
    use passfold::schema::member_stage_changes as c;
    let member: uuid::Uuid = member.parse().unwrap();
    c::table
        .filter(c::member_id.eq(member))
        .order(c::id)
        .select((c::from_stage, c::to_stage, c::at))
        .load::<Change>(&mut app.db.connect())
        .unwrap()
        .into_iter()
        .map(|c| (c.from_stage, c.to_stage, c.at))
        .collect()
}

async fn buy(app: &TestApp, key: &str, who: &str, idempotency: &str) -> Value {
    app.pos_ok(
        &format!("/api/v1/members/{who}/purchases"),
        key,
        idempotency,
        &json!({"amount": 1000, "currency": "EUR"}),
    )
    .await
}

async fn stage(app: &TestApp, key: &str, who: &str) -> String {
    app.get_json(&format!("/api/v1/members/{who}"), key).await["lifecycle_stage"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn time_alone_moves_members_to_cooling_and_lapsed_and_a_purchase_brings_them_back() {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Stages");
    let p = program(
        &app,
        &m.admin_key,
        json!({"cooling_days": 20, "lapsed_days": 50}),
    )
    .await;
    let pid = id_of(&p).to_string();
    let ann = id_of(&app.enroll(&m.pos_key, &pid, "Ann").await).to_string();
    let bob = id_of(&app.enroll(&m.pos_key, &pid, "Bob").await).to_string();
    // Ann buys every 10 days, four times: a rhythm (cooling after 15 days, lapsed after 30).
    buy(&app, &m.pos_key, &bob, "bob-0").await;
    for k in 0..4 {
        clock.set(start + Duration::days(10 * k));
        buy(&app, &m.pos_key, &ann, &format!("ann-{k}")).await;
    }
    assert_eq!(stage(&app, &m.pos_key, &ann).await, "repeat");
    assert_eq!(stage(&app, &m.pos_key, &bob).await, "first_purchase");

    // Day 46: no purchase for 16 days. Only the job sees time pass.
    let day46 = start + Duration::days(46);
    clock.set(day46);
    assert_eq!(stage(&app, &m.pos_key, &ann).await, "repeat");
    let job = passfold::jobs::segments::Segments {
        every: std::time::Duration::from_secs(60),
    };
    assert!(job.run(&mut app.db.connect(), day46).unwrap() > 0);
    assert_eq!(stage(&app, &m.pos_key, &ann).await, "cooling");
    // Bob has no rhythm: the program's 20 days.
    assert_eq!(stage(&app, &m.pos_key, &bob).await, "cooling");
    assert_eq!(
        job.run(&mut app.db.connect(), day46).unwrap(),
        0,
        "once per instant"
    );

    // Day 61, by the binary: lapsed (Ann after 30 days, Bob after 50).
    let day61 = start + Duration::days(61);
    clock.set(day61);
    let report = worker_once(&app, day61).await;
    assert!(report["jobs"]["segments"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(stage(&app, &m.pos_key, &ann).await, "lapsed");
    assert_eq!(stage(&app, &m.pos_key, &bob).await, "lapsed");

    // Day 70: both come back.
    clock.set(start + Duration::days(70));
    buy(&app, &m.pos_key, &ann, "ann-back").await;
    buy(&app, &m.pos_key, &bob, "bob-back").await;
    assert_eq!(stage(&app, &m.pos_key, &ann).await, "reactivated");
    assert_eq!(stage(&app, &m.pos_key, &bob).await, "reactivated");

    let d = |n: i64| start + Duration::days(n);
    let s = |a: &str, b: &str, at| (a.to_string(), b.to_string(), at);
    assert_eq!(
        changes(&app, &ann),
        vec![
            s("registered", "first_purchase", d(0)),
            s("first_purchase", "repeat", d(10)),
            s("repeat", "cooling", d(45)),
            s("cooling", "lapsed", d(60)),
            s("lapsed", "reactivated", d(70)),
        ]
    );
    assert_eq!(
        changes(&app, &bob),
        vec![
            s("registered", "first_purchase", d(0)),
            s("first_purchase", "cooling", d(20)),
            s("cooling", "lapsed", d(50)),
            s("lapsed", "reactivated", d(70)),
        ]
    );
    // The record is append-only.
    let mut conn = app.db.connect();
    assert!(
        diesel::sql_query("UPDATE member_stage_changes SET to_stage = 'repeat'")
            .execute(&mut conn)
            .is_err()
    );
    assert!(diesel::sql_query("DELETE FROM member_stage_changes")
        .execute(&mut conn)
        .is_err());
}

#[tokio::test]
async fn purchase_times_are_checked_and_become_the_purchases_time() {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let app = spawn_app_on(Clock::manual(now), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Times");
    let p = program(&app, &m.admin_key, json!({"points_expire_days": 30})).await;
    let id = id_of(&app.enroll(&m.pos_key, id_of(&p), "Ann").await).to_string();
    let path = format!("/api/v1/members/{id}/purchases");
    let at = |t: DateTime<Utc>| json!({"amount": 1000, "currency": "EUR", "purchased_at": t.to_rfc3339()});

    let future = app
        .pos(&path, &m.admin_key, "f", &at(now + Duration::minutes(10)))
        .await;
    let problem = TestApp::expect_json(future, 422).await;
    assert!(problem.to_string().contains("/purchased_at"), "{problem}");
    let garbled = json!({"amount": 1000, "currency": "EUR", "purchased_at": "yesterday"});
    let problem =
        TestApp::expect_json(app.pos(&path, &m.admin_key, "g", &garbled).await, 422).await;
    assert!(problem.to_string().contains("/purchased_at"), "{problem}");
    // A till's clock a little ahead is fine; two days back is the till's limit.
    app.pos_ok(&path, &m.pos_key, "skew", &at(now + Duration::minutes(4)))
        .await;
    app.pos_ok(&path, &m.pos_key, "47h", &at(now - Duration::hours(47)))
        .await;
    let old = app
        .pos(&path, &m.pos_key, "49h", &at(now - Duration::hours(49)))
        .await;
    let problem = TestApp::expect_json(old, 403).await;
    assert!(
        problem["type"].as_str().unwrap().ends_with("forbidden"),
        "{problem}"
    );
    // The merchant's key imports history: 40 days back, its points' lot already past
    // its 30 days, expires on the next expiry run.
    let bought = app
        .pos_ok(&path, &m.admin_key, "old", &at(now - Duration::days(40)))
        .await;
    let purchase: uuid::Uuid = bought["purchase_id"].as_str().unwrap().parse().unwrap();
    let mut conn = app.db.connect();
    let stored: DateTime<Utc> = passfold::schema::purchases::table
        .find(purchase)
        .select(passfold::schema::purchases::purchased_at)
        .first(&mut conn)
        .unwrap();
    assert_eq!(stored, now - Duration::days(40));
    let activity: DateTime<Utc> = passfold::schema::point_activities::table
        .filter(passfold::schema::point_activities::id.eq(purchase))
        .select(passfold::schema::point_activities::created_at)
        .first(&mut conn)
        .unwrap();
    assert_eq!(activity, now - Duration::days(40));
    let expiry = passfold::jobs::expiry::Expiry {
        channels: passfold::pass_events::Channels::new(false),
    };
    assert_eq!(expiry.run(&mut conn, now).unwrap(), 1);
    assert_eq!(app.member_points(&m.pos_key, &id).await, 200);
}
