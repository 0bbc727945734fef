//! Loyalty analytics: a generated history sent through the API, and every figure computed
//! again here, in plain Rust over what the test itself sent (and the ledger it reads back),
//! not by the service's SQL. Also: share of revenue from non-member receipts, gift-card
//! figures, CSV equal to JSON, and refusals.

use crate::helpers::{assert_problem, id_of, spawn_app, spawn_app_on, TestApp};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const TZ: Tz = chrono_tz::Europe::Moscow;
const POINT_VALUE: i64 = 5;
const ACTIVE_DAYS: i64 = 60;

struct Bought {
    member: usize,
    at: DateTime<Utc>,
    amount: i64,
    refunded: i64,
}

/// A small deterministic generator (no crate needed for a fixed data set).
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

fn local_midnight(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    TZ.from_local_datetime(
        &NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap(),
    )
    .unwrap()
    .with_timezone(&Utc)
}

/// `num / den x 100` to 2 decimals, half away from zero (counts are never negative).
fn pct(num: i64, den: i64) -> Value {
    if den == 0 {
        return Value::Null;
    }
    let hundredths = (num as i128 * 10_000 * 2 + den as i128) / (2 * den as i128);
    json!(hundredths as f64 / 100.0)
}

fn per(num: i64, den: i64) -> Value {
    if den == 0 {
        return Value::Null;
    }
    json!((2 * num as i128 + den as i128) / (2 * den as i128))
}

#[tokio::test]
async fn figures_match_an_independent_computation() {
    let now = Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Analytics");
    let p = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 10, "tiers": [{"name": "Bronze", "min_points": 0}],
                "points_expire_days": 45, "point_value": POINT_VALUE, "timezone": "Europe/Moscow",
            }),
        )
        .await,
        201,
    )
    .await;
    let pid = id_of(&p).to_string();

    // 30 members, one every 5 days from 1 January; the API stamps a signup with the
    // database's time, which a test cannot move, so the signup dates are set afterwards.
    let mut conn = app.db.connect();
    let mut rng = Lcg(16);
    let mut ids = Vec::new();
    let mut signups = Vec::new();
    for i in 0..30 {
        let member = app
            .enroll(&m.pos_key, &pid, &format!("Member {i:02}"))
            .await;
        let id = id_of(&member).to_string();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 7, 0, 0).unwrap() + Duration::days(5 * i);
        diesel::sql_query("UPDATE members SET created_at = $1 WHERE id = $2::uuid")
            .bind::<diesel::sql_types::Timestamptz, _>(at)
            .bind::<diesel::sql_types::Text, _>(&id)
            .execute(&mut conn)
            .unwrap();
        ids.push(id);
        signups.push(at);
    }
    // Purchases after each signup, some on the last evening of a month in UTC (already the
    // next month in Moscow); some returned in part or in full.
    let mut bought = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let count = rng.next(6);
        for k in 0..count {
            let room = (now - Duration::days(1) - signups[i]).num_minutes() as u64;
            let mut at = signups[i] + Duration::minutes(rng.next(room) as i64);
            if k == 1 && i % 4 == 0 {
                let local = at.with_timezone(&TZ);
                let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1).unwrap();
                let next = (first + Duration::days(32)).with_day(1).unwrap();
                let edge = local_midnight(next.year(), next.month(), 1) - Duration::minutes(90);
                if edge > signups[i] && edge < now {
                    at = edge + Duration::hours(2); // 00:30 local, 21:30 UTC the day before
                }
            }
            let amount = 500 + rng.next(19_500) as i64;
            let answer = app
                .pos_ok(
                    &format!("/api/v1/members/{id}/purchases"),
                    &m.admin_key,
                    &format!("buy-{i}-{k}"),
                    &json!({"amount": amount, "currency": "EUR", "purchased_at": at.to_rfc3339()}),
                )
                .await;
            let refunded = match rng.next(7) {
                0 => amount,
                1 => amount / 3,
                _ => 0,
            };
            if refunded > 0 {
                let purchase = answer["purchase_id"].as_str().unwrap();
                app.pos_ok(
                    &format!("/api/v1/members/{id}/purchases/{purchase}/refund"),
                    &m.pos_key,
                    &format!("return-{i}-{k}"),
                    &json!({"amount": refunded}),
                )
                .await;
            }
            bought.push(Bought {
                member: i,
                at,
                amount,
                refunded,
            });
        }
    }
    // Lots that ran out expire (dated when they ran out); then some members pay with points.
    passfold::jobs::expiry::Expiry {
        channels: Channels::new(false),
    }
    .run(&mut conn, now)
    .unwrap();
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 0 && app.member_points(&m.pos_key, id).await >= 100 {
            app.pos_ok(
                &format!("/api/v1/members/{id}/points/redeem"),
                &m.pos_key,
                &format!("pay-{i}"),
                &json!({"points": 100, "receipt_amount": 100_000, "currency": "EUR"}),
            )
            .await;
        }
    }
    // The ledger as the API lists it: (time, type, points) per member.
    let mut ledger: Vec<(DateTime<Utc>, String, i64)> = Vec::new();
    for id in &ids {
        let page = app
            .get_json(
                &format!("/api/v1/members/{id}/activities?limit=100"),
                &m.pos_key,
            )
            .await;
        assert!(page["next_cursor"].is_null());
        for a in page["activities"].as_array().unwrap() {
            let at: DateTime<Utc> = a["created_at"].as_str().unwrap().parse().unwrap();
            ledger.push((
                at,
                a["type"].as_str().unwrap().to_string(),
                a["points"].as_i64().unwrap(),
            ));
        }
    }
    assert!(ledger.iter().any(|l| l.1 == "expire"), "some points expire");
    assert!(
        ledger.iter().any(|l| l.1 == "spend"),
        "some points are spent"
    );

    // November and December are before anyone joined: empty periods.
    let from = local_midnight(2025, 11, 1);
    let to = local_midnight(2026, 8, 1);
    let report = app
        .get_json(
            &format!("/api/v1/programs/{pid}/analytics?from=2025-11-01&to=2026-08-01&interval=month&active_days={ACTIVE_DAYS}"),
            &m.admin_key,
        )
        .await;
    let periods = report["periods"].as_array().unwrap();
    let mut bounds = vec![from];
    for (y, mo) in [
        (2025, 12),
        (2026, 1),
        (2026, 2),
        (2026, 3),
        (2026, 4),
        (2026, 5),
        (2026, 6),
        (2026, 7),
    ] {
        bounds.push(local_midnight(y, mo, 1));
    }
    bounds.push(to);
    assert_eq!(periods.len(), bounds.len() - 1, "{report}");
    assert_eq!(report["currency"], "EUR");
    assert_eq!(report["timezone"], "Europe/Moscow");

    let counted = |b: &&Bought| b.refunded < b.amount;
    let active_at = |t: DateTime<Utc>| -> BTreeSet<usize> {
        bought
            .iter()
            .filter(counted)
            .filter(|b| b.at >= t - Duration::days(ACTIVE_DAYS) && b.at < t)
            .map(|b| b.member)
            .collect()
    };
    let expect = |start: DateTime<Utc>, end: DateTime<Utc>| -> Value {
        let members_total = signups.iter().filter(|s| **s < end).count() as i64;
        let members_new = signups.iter().filter(|s| **s >= start && **s < end).count() as i64;
        let inside: Vec<&Bought> = bought
            .iter()
            .filter(|b| b.at >= start && b.at < end)
            .collect();
        let purchases = inside.iter().filter(|b| b.refunded < b.amount).count() as i64;
        let revenue: i64 = inside.iter().map(|b| b.amount - b.refunded).sum();
        let mut per_member: BTreeMap<usize, i64> = BTreeMap::new();
        for b in inside.iter().filter(|b| b.refunded < b.amount) {
            *per_member.entry(b.member).or_default() += 1;
        }
        let buyers = per_member.len() as i64;
        let repeat = per_member.values().filter(|n| **n >= 2).count() as i64;
        let (s, e) = (active_at(start), active_at(end));
        let kept = s.intersection(&e).count() as i64;
        let (s, e) = (s.len() as i64, e.len() as i64);
        let moved = |kind: Option<&str>, sign: i64| -> i64 {
            ledger
                .iter()
                .filter(|l| l.0 >= start && l.0 < end)
                .filter(|l| kind.is_none_or(|k| l.1 == k))
                .filter(|l| l.2 * sign > 0)
                .map(|l| l.2 * sign)
                .sum()
        };
        let outstanding: i64 = ledger.iter().filter(|l| l.0 < end).map(|l| l.2).sum();
        let frequency = if buyers == 0 {
            Value::Null
        } else {
            json!(
                ((purchases as i128 * 100 * 2 + buyers as i128) / (2 * buyers as i128)) as f64
                    / 100.0
            )
        };
        json!({
            "members_total": members_total, "members_new": members_new, "members_active": buyers,
            "active_customers_start": s, "active_customers_end": e, "active_customers_new": e - kept,
            "crr_percent": pct(kept, s), "churn_percent": pct(s - kept, s),
            "purchases": purchases, "repeat_customers": repeat,
            "repeat_purchase_rate_percent": pct(repeat, buyers), "purchase_frequency": frequency,
            "revenue": revenue, "aov": per(revenue, purchases),
            "revenue_per_member": per(revenue, members_total),
            "non_member_revenue": 0, "sor_percent": pct(revenue, revenue),
            "points_earned": moved(None, 1), "points_spent": moved(Some("spend"), -1),
            "points_expired": moved(Some("expire"), -1),
            "points_outstanding": outstanding, "points_liability": outstanding * POINT_VALUE,
        })
    };
    let check = |got: &Value, want: &Value, what: &str| {
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&got[k], v, "{what}: {k}\n{got}");
        }
    };
    for (i, got) in periods.iter().enumerate() {
        check(
            got,
            &expect(bounds[i], bounds[i + 1]),
            &format!("period {i}"),
        );
    }
    check(&report["total"], &expect(from, to), "total");
    // The empty months really are empty, and say so with nulls, not zeros, for ratios.
    assert_eq!(periods[0]["members_total"], 0);
    assert_eq!(periods[0]["aov"], Value::Null);
    assert_eq!(periods[1]["crr_percent"], Value::Null);
    assert_eq!(periods[0]["period"], "2025-11-01");
    // The data set is not degenerate: retention, repeat buyers and returns all occur.
    assert!(
        periods.iter().any(|p| p["crr_percent"]
            .as_f64()
            .is_some_and(|c| c > 0.0 && c < 100.0)),
        "{report}"
    );
    assert!(periods
        .iter()
        .any(|p| p["repeat_customers"].as_i64() > Some(0)));
    assert!(
        bought.iter().any(|b| b.refunded == b.amount)
            && bought
                .iter()
                .any(|b| b.refunded > 0 && b.refunded < b.amount)
    );

    // Cohorts: signup month (Moscow) x months since; purchases before `to` only.
    let month_of = |t: DateTime<Utc>| {
        let l = t.with_timezone(&TZ);
        l.year() * 12 + l.month0() as i32
    };
    let last = month_of(to - Duration::seconds(1));
    let mut want: BTreeMap<i32, (i64, Vec<BTreeSet<usize>>, i64)> = BTreeMap::new();
    for (i, s) in signups.iter().enumerate() {
        let c = month_of(*s);
        let e = want
            .entry(c)
            .or_insert_with(|| (0, vec![BTreeSet::new(); (last - c + 1) as usize], 0));
        e.0 += 1;
        for b in bought.iter().filter(|b| b.member == i && b.at < to) {
            let k = month_of(b.at) - c;
            if k >= 0 {
                e.2 += b.amount - b.refunded;
                if b.refunded < b.amount {
                    e.1[k as usize].insert(i);
                }
            }
        }
    }
    let cohorts = report["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), want.len(), "{report}");
    for (got, (month, (size, active, revenue))) in cohorts.iter().zip(&want) {
        assert_eq!(
            got["month"],
            format!("{}-{:02}", month / 12, month % 12 + 1)
        );
        assert_eq!(got["members"], *size);
        let active: Vec<i64> = active.iter().map(|s| s.len() as i64).collect();
        assert_eq!(got["active"], json!(active), "{got}");
        assert_eq!(got["revenue"], *revenue);
        assert_eq!(got["revenue_per_member"], per(*revenue, *size));
    }

    // Per week and per day over the same data: the totals do not depend on the interval.
    for interval in ["week", "day"] {
        let other = app
            .get_json(
                &format!("/api/v1/programs/{pid}/analytics?from=2026-01-01&to=2026-07-11&interval={interval}&active_days={ACTIVE_DAYS}"),
                &m.admin_key,
            )
            .await;
        check(
            &other["total"],
            &expect(local_midnight(2026, 1, 1), local_midnight(2026, 7, 11)),
            interval,
        );
        let sum: i64 = other["periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["revenue"].as_i64().unwrap())
            .sum();
        assert_eq!(json!(sum), other["total"]["revenue"]);
    }
}

#[tokio::test]
async fn share_of_revenue_gift_cards_and_csv() {
    let app = spawn_app().await;
    let m = app.create_merchant("Receipts");
    let p = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&p).to_string();
    let receipts = format!("/api/v1/programs/{pid}/receipts");
    let ann = app.enroll(&m.pos_key, &pid, "Ann").await;
    let mut member_revenue = 0;
    for (k, amount) in [1250, 4999, 30001].into_iter().enumerate() {
        TestApp::expect_json(
            app.purchase(&m.pos_key, id_of(&ann), &format!("b{k}"), amount)
                .await,
            200,
        )
        .await;
        member_revenue += amount;
    }
    let mut other_revenue = 0;
    for (k, amount) in [700, 15_003].into_iter().enumerate() {
        let r = TestApp::expect_json(
            app.pos(
                &receipts,
                &m.pos_key,
                &format!("r{k}"),
                &json!({"amount": amount, "currency": "EUR"}),
            )
            .await,
            201,
        )
        .await;
        assert_eq!(r["amount"], amount);
        other_revenue += amount;
    }
    // A replay is the first answer, not a second receipt.
    let replay = app
        .pos(
            &receipts,
            &m.pos_key,
            "r0",
            &json!({"amount": 700, "currency": "EUR"}),
        )
        .await;
    assert!(crate::helpers::replayed(&replay));
    // Refusals: another currency, the future, old history from a till, a bad amount.
    assert_problem(
        app.pos(
            &receipts,
            &m.pos_key,
            "bad-1",
            &json!({"amount": 5, "currency": "USD"}),
        )
        .await,
        422,
        "currency-mismatch",
    )
    .await;
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    assert_problem(
        app.pos(
            &receipts,
            &m.pos_key,
            "bad-2",
            &json!({"amount": 5, "currency": "EUR", "purchased_at": later}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let old = (Utc::now() - Duration::days(5)).to_rfc3339();
    assert_problem(
        app.pos(
            &receipts,
            &m.pos_key,
            "bad-3",
            &json!({"amount": 5, "currency": "EUR", "purchased_at": old}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.pos(
            &receipts,
            &m.pos_key,
            "bad-4",
            &json!({"amount": 0, "currency": "EUR"}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.pos(&receipts, &m.pos_key, "bad-5", &json!({"amount": 5}))
            .await,
        400,
        "validation",
    )
    .await;

    // Gift cards in the program's currency (a dollar card is not counted).
    let a = app.issue_gift_card(&m.admin_key, "EUR", 5000).await;
    let b = app.issue_gift_card(&m.admin_key, "EUR", 3000).await;
    let c = app.issue_gift_card(&m.admin_key, "EUR", 2000).await;
    app.issue_gift_card(&m.admin_key, "USD", 9999).await;
    let gan = |v: &Value| v["gan"].as_str().unwrap().to_string();
    let spent = TestApp::expect_json(app.redeem(&m.pos_key, &gan(&a), "g1", 1200).await, 200).await;
    app.pos_ok(
        &format!("/api/v1/gift-cards/{}/refund", gan(&a)),
        &m.pos_key,
        "g2",
        &json!({"activity_id": spent["activity_id"], "amount": 200}),
    )
    .await;
    app.pos_ok(
        &format!("/api/v1/gift-cards/{}/load", gan(&b)),
        &m.pos_key,
        "g3",
        &json!({"amount": 1000, "currency": "EUR"}),
    )
    .await;
    TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/gift-cards/{}/deactivate", gan(&c)),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;

    let today = Utc::now().date_naive();
    let path = format!(
        "/api/v1/programs/{pid}/analytics?from={}&to={}&interval=day",
        today - Duration::days(1),
        today + Duration::days(2)
    );
    let report = app.get_json(&path, &m.admin_key).await;
    let total = &report["total"];
    assert_eq!(total["revenue"], member_revenue);
    assert_eq!(total["non_member_revenue"], other_revenue);
    assert_eq!(total["non_member_receipts"], 2);
    assert_eq!(
        total["sor_percent"],
        pct(member_revenue, member_revenue + other_revenue)
    );
    assert_eq!(total["gift_cards_sold"], 3);
    assert_eq!(total["gift_card_sales"], 5000 + 3000 + 2000 + 1000);
    assert_eq!(total["gift_card_redeemed"], 1200 - 200);
    assert_eq!(total["gift_card_breakage"], 2000);
    assert_eq!(
        total["gift_card_liability"],
        (5000 - 1200 + 200) + (3000 + 1000)
    );
    assert_eq!(total["members_new"], 1);
    // No point value: no money for the points.
    assert_eq!(total["points_liability"], Value::Null);
    assert!(total["points_outstanding"].as_i64() > Some(0));
    let periods = report["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 3);
    assert_eq!(periods[0]["revenue"], 0);
    assert_eq!(
        periods[2]["gift_card_liability"],
        total["gift_card_liability"]
    );

    // The quality values count: CSV refused, or liked less than JSON, answers JSON.
    for accept in ["text/csv;q=0", "text/csv;q=0.1, application/json;q=0.9"] {
        let res = app
            .client
            .get(app.url(&path))
            .bearer_auth(&m.admin_key)
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["content-type"],
            "application/json",
            "{accept}"
        );
    }

    // CSV: the same figures, one row per period and one for the total.
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&m.admin_key)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let mut want: Vec<&Value> = periods.iter().collect();
    want.push(total);
    assert_eq!(records.len(), want.len());
    for (record, json) in records.iter().zip(want) {
        assert_eq!(headers.len(), json.as_object().unwrap().len());
        for (h, cell) in headers.iter().zip(record.iter()) {
            match &json[h] {
                Value::Null => assert_eq!(cell, "", "{h}"),
                Value::String(s) if h == "start" || h == "end" => {
                    let a: DateTime<Utc> = s.parse().unwrap();
                    let b: DateTime<Utc> = cell.parse().unwrap();
                    assert_eq!(a, b, "{h}");
                }
                Value::String(s) => assert_eq!(cell, s, "{h}"),
                Value::Number(n) => assert_eq!(cell.parse::<f64>().ok(), n.as_f64(), "{h}"),
                other => panic!("{h}: {other}"),
            }
        }
    }

    // Refusals of the report.
    let base = format!("/api/v1/programs/{pid}/analytics");
    assert_problem(
        app.get_with_key(&format!("{base}?interval=year"), &m.admin_key)
            .await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.get_with_key(
            &format!("{base}?from=2026-02-01&to=2026-01-01"),
            &m.admin_key,
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.get_with_key(&format!("{base}?from=yesterday"), &m.admin_key)
            .await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.get_with_key(
            &format!("{base}?from=2020-01-01&to=2026-01-01&interval=day"),
            &m.admin_key,
        )
        .await,
        422,
        "validation",
    )
    .await;
    for far in [
        "from=-5000-01-01&to=-5000-02-01",
        "from=200000-01-01&to=200000-02-01",
    ] {
        assert_problem(
            app.get_with_key(&format!("{base}?{far}"), &m.admin_key)
                .await,
            422,
            "validation",
        )
        .await;
    }
    assert_problem(
        app.get_with_key(&format!("{base}?active_days=0"), &m.admin_key)
            .await,
        422,
        "validation",
    )
    .await;
    assert_problem(app.get_with_key(&base, &m.pos_key).await, 403, "forbidden").await;
    let other = app.create_merchant("Other");
    assert_problem(
        app.get_with_key(&base, &other.admin_key).await,
        404,
        "not-found",
    )
    .await;
    // Defaults: a year by month up to tomorrow.
    let default = app.get_json(&base, &m.admin_key).await;
    assert!(
        matches!(default["periods"].as_array().unwrap().len(), 12 | 13),
        "{default}"
    );
    assert_eq!(default["total"]["revenue"], member_revenue);
}

fn visitor_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pf_visitor="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a visitor cookie")
}

fn csrf_of(html: &str) -> String {
    let start =
        html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn post_survey(
    app: &TestApp,
    path: &str,
    visitor: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    app.client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("pf_visitor={visitor}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

fn surveys_job(app: &TestApp, at: DateTime<Utc>) -> usize {
    passfold::jobs::surveys::Surveys {
        channels: Channels::new(false),
        public_url: "http://survey.test".into(),
    }
    .run(&mut app.db.connect(), at)
    .unwrap()
}

#[tokio::test]
async fn nps_from_survey_answers() {
    let now = Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Surveys");
    let p = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&p).to_string();
    // A purchase before the rule is never surveyed.
    let early = app.enroll(&m.pos_key, &pid, "Early").await;
    TestApp::expect_json(
        app.purchase(&m.pos_key, id_of(&early), "early", 900).await,
        200,
    )
    .await;
    clock.set(now + Duration::minutes(1));
    let rule = TestApp::expect_json(
        app.put_json(
            &format!("/api/v1/programs/{pid}/survey"),
            &m.admin_key,
            &json!({"delay_minutes": 60, "every_days": 30}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rule["share_percent"], 100);
    assert_problem(
        app.put_json(
            &format!("/api/v1/programs/{pid}/survey"),
            &m.admin_key,
            &json!({"share_percent": 0}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let member = app.enroll(&m.pos_key, &pid, &format!("M{i}")).await;
        let id = id_of(&member).to_string();
        TestApp::expect_json(
            app.purchase(&m.pos_key, &id, &format!("p{i}"), 1000 + i)
                .await,
            200,
        )
        .await;
        ids.push(id);
    }
    // Two purchases by the first member: one invitation.
    TestApp::expect_json(app.purchase(&m.pos_key, &ids[0], "p0b", 700).await, 200).await;
    let t0 = now + Duration::minutes(1);
    assert_eq!(
        surveys_job(&app, t0 + Duration::minutes(30)),
        0,
        "not due yet"
    );
    assert_eq!(surveys_job(&app, t0 + Duration::minutes(61)), 10);
    assert_eq!(
        surveys_job(&app, t0 + Duration::minutes(61)),
        0,
        "once at an instant"
    );
    // A new purchase within `every_days` invites nobody again.
    clock.set(t0 + Duration::hours(2));
    TestApp::expect_json(app.purchase(&m.pos_key, &ids[1], "p1b", 500).await, 200).await;
    assert_eq!(surveys_job(&app, t0 + Duration::hours(4)), 0);

    // Each pass carries its survey link as a message.
    let mut conn = app.db.connect();
    let mut links = Vec::new();
    for id in &ids {
        let body: String = passfold::schema::passes::table
            .filter(passfold::schema::passes::member_id.eq(uuid::Uuid::parse_str(id).unwrap()))
            .select(passfold::schema::passes::message_body)
            .first::<Option<String>>(&mut conn)
            .unwrap()
            .expect("a message on the pass");
        let url = body.rsplit(' ').next().unwrap().to_string();
        let path = url
            .strip_prefix("http://survey.test")
            .expect("the survey link")
            .to_string();
        assert!(path.starts_with("/s/"), "{body}");
        links.push(path);
    }
    let early_message: Option<String> = passfold::schema::passes::table
        .filter(
            passfold::schema::passes::member_id.eq(uuid::Uuid::parse_str(id_of(&early)).unwrap()),
        )
        .select(passfold::schema::passes::message_body)
        .first(&mut conn)
        .unwrap();
    assert_eq!(early_message, None);

    // The members answer on the public page (in Russian for one of them).
    clock.set(t0 + Duration::hours(5));
    let scores = [10, 9, 9, 8, 7, 6, 10, 0, 10, 3];
    for (i, (path, score)) in links.iter().zip(scores).enumerate() {
        let mut req = app.client.get(app.url(path));
        if i == 1 {
            req = req.header("accept-language", "ru-RU,ru;q=0.9");
        }
        let page = req.send().await.unwrap();
        assert_eq!(page.status(), 200);
        let visitor = visitor_cookie(&page);
        let html = page.text().await.unwrap();
        if i == 1 {
            assert!(html.contains("порекомендуете"), "{html}");
        }
        let csrf = csrf_of(&html);
        if i == 0 {
            // A wrong token, and no score, are refused; the invitation stays open.
            let wrong = "0".repeat(csrf.len());
            let res = post_survey(&app, path, &visitor, &[("csrf", &wrong), ("score", "5")]).await;
            assert_eq!(res.status(), 403);
            let res = post_survey(&app, path, &visitor, &[("csrf", &csrf), ("score", "11")]).await;
            assert_eq!(res.status(), 422);
        }
        let score = score.to_string();
        let comment = if i == 7 { "Cold <b>coffee</b>" } else { "" };
        let res = post_survey(
            &app,
            path,
            &visitor,
            &[("csrf", &csrf), ("score", &score), ("comment", comment)],
        )
        .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        // One answer per invitation.
        let again = post_survey(&app, path, &visitor, &[("csrf", &csrf), ("score", "10")]).await;
        assert_eq!(again.status(), 409);
    }
    assert_eq!(app.get("/s/nosuchinvitation").await.status(), 404);

    let promoters = scores.iter().filter(|s| **s >= 9).count() as i64;
    let detractors = scores.iter().filter(|s| **s <= 6).count() as i64;
    let report = app
        .get_json(
            &format!("/api/v1/programs/{pid}/analytics?from=2026-05-01&to=2026-05-08&interval=day"),
            &m.admin_key,
        )
        .await;
    let total = &report["total"];
    assert_eq!(total["survey_responses"], 10);
    assert_eq!(total["promoters"], promoters);
    assert_eq!(total["detractors"], detractors);
    assert_eq!(total["nps"], pct(promoters - detractors, 10));
    // CSI: the mean score as a share of 10.
    let score_total: i64 = scores.iter().map(|s| i64::from(*s)).sum();
    assert_eq!(total["score_total"], score_total);
    assert_eq!(total["csi"], pct(score_total, 100));
    assert_eq!(report["periods"][3]["survey_responses"], 10);
    assert_eq!(report["periods"][0]["nps"], Value::Null);
    // By segment: each answer counts in its member's RFM group and stage as the member's
    // own answer shows them now.
    let mut expected = std::collections::BTreeMap::new();
    for (id, score) in ids.iter().zip(scores) {
        let member = app
            .get_json(&format!("/api/v1/members/{id}"), &m.admin_key)
            .await;
        let group = member["rfm"]["group"].as_str().unwrap_or("no_purchases");
        let stage = member["lifecycle_stage"].as_str().expect("a stage");
        for key in [("group", group.to_string()), ("stage", stage.to_string())] {
            let e: &mut (i64, i64, i64) = expected.entry(key).or_default();
            e.0 += 1;
            e.1 += i64::from(score >= 9);
            e.2 += i64::from(score <= 6);
        }
    }
    let mut got = std::collections::BTreeMap::new();
    for s in report["nps_by_segment"].as_array().unwrap() {
        let (n, x, y) = (
            s["survey_responses"].as_i64().unwrap(),
            s["promoters"].as_i64().unwrap(),
            s["detractors"].as_i64().unwrap(),
        );
        assert_eq!(s["nps"], pct(x - y, n), "{s}");
        let key = (
            s["kind"].as_str().unwrap().to_string(),
            s["segment"].as_str().unwrap().to_string(),
        );
        got.insert(key, (n, x, y));
    }
    let expected: std::collections::BTreeMap<(String, String), (i64, i64, i64)> = expected
        .into_iter()
        .map(|((k, seg), v)| ((k.to_string(), seg), v))
        .collect();
    assert_eq!(got, expected, "{}", report["nps_by_segment"]);
    let comments = app
        .get_json(
            &format!("/api/v1/programs/{pid}/survey/comments"),
            &m.admin_key,
        )
        .await;
    assert_eq!(
        comments["comments"].as_array().unwrap().len(),
        1,
        "{comments}"
    );
    assert_eq!(comments["comments"][0]["comment"], "Cold <b>coffee</b>");
    assert_eq!(comments["comments"][0]["score"], 0);

    // Once `every_days` have passed, the member's next purchase invites again.
    let later = t0 + Duration::days(31);
    clock.set(later);
    TestApp::expect_json(app.purchase(&m.pos_key, &ids[1], "p1c", 800).await, 200).await;
    assert_eq!(surveys_job(&app, later + Duration::minutes(59)), 0);
    assert_eq!(surveys_job(&app, later + Duration::minutes(60)), 1);
}

#[tokio::test]
async fn a_survey_share_picks_about_that_share_of_purchases_and_the_same_ones_every_run() {
    let now = Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    app.stop_workers().await;
    let m = app.create_merchant("Shares");
    let p = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = id_of(&p).to_string();
    app.put_json(
        &format!("/api/v1/programs/{pid}/survey"),
        &m.admin_key,
        &json!({"delay_minutes": 0, "share_percent": 30, "every_days": 1}),
    )
    .await;
    for i in 0..60 {
        let member = app.enroll(&m.pos_key, &pid, &format!("S{i}")).await;
        TestApp::expect_json(
            app.purchase(&m.pos_key, id_of(&member), &format!("s{i}"), 1000)
                .await,
            200,
        )
        .await;
    }
    // The share is decided by each purchase's id: recompute it here, independently.
    let mut conn = app.db.connect();
    let ids: Vec<uuid::Uuid> = passfold::schema::purchases::table
        .select(passfold::schema::purchases::id)
        .load(&mut conn)
        .unwrap();
    let chosen = ids
        .iter()
        .filter(|id| {
            let digest = format!("{:032x}", md5_of(&id.to_string()));
            u32::from_str_radix(&digest[..7], 16).unwrap() % 100 < 30
        })
        .count();
    assert!((5..=35).contains(&chosen), "{chosen} of 60");
    assert_eq!(surveys_job(&app, now + Duration::minutes(1)), chosen);
    assert_eq!(surveys_job(&app, now + Duration::minutes(2)), 0);
}

/// MD5 through openssl (already a dependency), as PostgreSQL's md5() computes it.
fn md5_of(text: &str) -> u128 {
    let d = openssl::hash::hash(openssl::hash::MessageDigest::md5(), text.as_bytes()).unwrap();
    u128::from_be_bytes(d.as_ref().try_into().unwrap())
}
