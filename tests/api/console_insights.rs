//! Segments, campaigns and analytics in the console (issue 16): a program with purchases
//! whose segments, campaign results and report figures are worked out here from the
//! histories the test sent (the merchant's RFM thresholds applied by hand), compared with
//! what the pages show and what their CSV downloads hold (the same as the API's); another
//! merchant's program and campaign are not found; a cashier sees but cannot cancel;
//! Russian pages speak Russian; no chart carries a NaN; and the pages fit 375 px in
//! headless Chromium with nothing blocked by the CSP.

use crate::browser::Browser;
use crate::console_auth::{staff, Console, Page, PASSWORD};
use crate::console_designer_browser::assert_accessible;
use crate::console_pages::{assert_no_overflow, Cdp};
use crate::helpers::{id_of, spawn_app_on, TestApp, TestMerchant};
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use passfold::clock::Clock;
use passfold::domain::Role;
use passfold::jobs::Job;
use passfold::pass_events::Channels;
use serde_json::json;
use std::collections::BTreeMap;

/// Noon UTC today: within sending hours, close to real time.
pub(crate) fn noon_today() -> DateTime<Utc> {
    Utc.from_utc_datetime(&Utc::now().date_naive().and_hms_opt(12, 0, 0).unwrap())
}

/// A number as the English pages write it.
pub(crate) fn en(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Euro cents as the English pages write them: "1,234.50\u{a0}EUR".
pub(crate) fn eur(cents: i64) -> String {
    format!("{}.{:02}\u{a0}EUR", en(cents / 100), cents % 100)
}

/// Every `<svg>` of a page holds finite numbers only.
fn assert_finite_charts(page: &Page) {
    let mut rest = page.body.as_str();
    let mut charts = 0;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("a closed svg") + start;
        let svg = &rest[start..end];
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "a chart with a NaN: {svg}"
        );
        charts += 1;
        rest = &rest[end..];
    }
    assert!(charts > 0, "no chart on the page");
}

/// A member's expected group, stage and cell, and purchases.
type History = (&'static str, &'static str, &'static str, Vec<(i64, i64)>);

/// (days before `start`, euro cents) of each member: four champions (cell 333), two new
/// (311), two lost (111) and one who never bought, under the thresholds below.
fn histories() -> Vec<History> {
    let mut out = Vec::new();
    for i in 0..4 {
        out.push((
            "champions",
            "repeat",
            "333",
            vec![(25, 3_000), (20, 3_500), (2 + i, 4_000)],
        ));
    }
    for i in 0..2 {
        out.push(("new", "first_purchase", "311", vec![(5 + i, 1_000)]));
    }
    for i in 0..2 {
        out.push(("lost", "lapsed", "111", vec![(200 + i, 1_500)]));
    }
    out.push(("no_purchases", "registered", "", vec![]));
    out
}

struct Shop {
    m: TestMerchant,
    program: String,
    members: Vec<String>,
}

/// The program with the histories, its segments recomputed as of `start`.
async fn shop(app: &TestApp, start: DateTime<Utc>) -> Shop {
    let m = app.create_merchant("Insights Café");
    let program = TestApp::expect_json(
        app.post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Coffee Club", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 10, "point_value": 2,
                "rfm_thresholds": {"recency_days": [30, 90], "frequency": [3, 2],
                                   "monetary": [10000, 5000]},
            }),
        )
        .await,
        201,
    )
    .await;
    let program = id_of(&program).to_string();
    let mut members = Vec::new();
    for (i, (_, _, _, history)) in histories().iter().enumerate() {
        let member = app
            .enroll(&m.admin_key, &program, &format!("Member {i}"))
            .await;
        for (k, (days, amount)) in history.iter().enumerate() {
            app.pos_ok(
                &format!("/api/v1/members/{}/purchases", id_of(&member)),
                &m.admin_key,
                &format!("buy-{i}-{k}"),
                &json!({"amount": amount, "currency": "EUR",
                        "purchased_at": (start - Duration::days(*days)).to_rfc3339()}),
            )
            .await;
        }
        members.push(id_of(&member).to_string());
    }
    TestApp::expect_json(
        app.post_json(
            &format!("/api/v1/programs/{program}/segments/recompute"),
            &m.admin_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    Shop {
        m,
        program,
        members,
    }
}

/// The text of the first element after `marker` (`data-figure="targeted"`), to its tag.
pub(crate) fn figure(page: &Page, marker: &str) -> String {
    let at = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {}", page.body));
    let start = page.body[at..].find('>').unwrap() + at + 1;
    let end = page.body[start..].find('<').unwrap() + start;
    page.body[start..end].to_string()
}

/// The part of the page from `marker` on.
pub(crate) fn from<'p>(page: &'p Page, marker: &str) -> &'p str {
    let at = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {}", page.body));
    &page.body[at..]
}

#[tokio::test]
async fn the_pages_show_the_programs_segments_campaign_and_figures() {
    let start = noon_today();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    let Shop {
        m,
        program,
        members,
    } = shop(&app, start).await;
    staff(&app, m.id, "owner@insights.example", Role::Owner);
    let mut console = Console::signed_in(&app, "owner@insights.example").await;

    // Segments: what the histories give, on the page and in the CSV.
    let mut groups: BTreeMap<&str, i64> = BTreeMap::new();
    let mut stages: BTreeMap<&str, i64> = BTreeMap::new();
    let mut cells: BTreeMap<&str, i64> = BTreeMap::new();
    for (group, stage, cell, _) in histories() {
        *groups.entry(group).or_default() += 1;
        *stages.entry(stage).or_default() += 1;
        if !cell.is_empty() {
            *cells.entry(cell).or_default() += 1;
        }
    }
    let page = console
        .get(&format!("/console/programs/{program}/segments"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_finite_charts(&page);
    assert_eq!(figure(&page, r#"id="segment-members""#), "9");
    for (group, n) in &groups {
        let row = from(&page, &format!(r#"data-segment="{group}""#));
        assert_eq!(figure_in(row, "data-count="), n.to_string(), "{group}");
    }
    for (stage, n) in &stages {
        let row = from(&page, &format!(r#"data-segment="{stage}""#));
        assert_eq!(figure_in(row, "data-count="), n.to_string(), "{stage}");
    }
    assert_eq!(page.body.matches("data-cell=").count(), 27);
    for (cell, n) in &cells {
        let at = from(&page, &format!(r#"data-cell="{cell}""#));
        assert_eq!(figure_in(at, "href="), n.to_string(), "{cell}");
    }
    assert!(page.body.contains("Champions"));
    let csv = console
        .get(&format!("/console/programs/{program}/segments.csv"))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let api = app
        .get_json(
            &format!("/api/v1/programs/{program}/segments"),
            &m.admin_key,
        )
        .await;
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["kind", "segment", "name_en", "name_ru", "members"]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 11 + 6 + 27);
    for row in &rows {
        let n: i64 = row[4].parse().unwrap();
        let (list, key) = match row[0].as_str() {
            "group" => ("groups", "group"),
            "stage" => ("stages", "stage"),
            _ => ("cells", "cell"),
        };
        let from_api = api[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e[key] == row[1].as_str())
            .unwrap()["members"]
            .as_i64()
            .unwrap();
        assert_eq!(n, from_api, "{row:?}");
        let expected = match row[0].as_str() {
            "group" => groups.get(row[1].as_str()),
            "stage" => stages.get(row[1].as_str()),
            _ => cells.get(row[1].as_str()),
        };
        assert_eq!(n, expected.copied().unwrap_or(0), "{row:?}");
    }
    // Each count leads to its members.
    let champions = console
        .get(&format!(
            "/console/members?program={program}&group=champions"
        ))
        .await;
    assert_eq!(champions.status, 200);
    assert_eq!(champions.body.matches("data-member=").count(), 4);
    assert!(champions.body.contains(r#"id="segment-filter""#));
    let cell = console
        .get(&format!("/console/members?program={program}&cell=111"))
        .await;
    assert_eq!(cell.body.matches("data-member=").count(), 2);
    let bad = console.get("/console/members?group=nobody").await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains(r#"id="search-error""#));

    // A campaign to the champions, half held out, sent at `start`.
    let created = TestApp::expect_json(
        app.pos(
            &format!("/api/v1/programs/{program}/campaigns"),
            &m.admin_key,
            "camp-1",
            &json!({
                "audience": {"groups": ["champions"]},
                "holdout_percent": 50,
                "message": {"en": "Double points", "ru": "Двойные баллы"},
                "header": {"en": "This weekend", "ru": "В выходные"},
                "bonus_points": 50,
                "cost_per_message": 10,
            }),
        )
        .await,
        201,
    )
    .await;
    let campaign = id_of(&created).to_string();
    let job = passfold::jobs::campaigns::Campaigns {
        channels: Channels::new(false),
    };
    job.run(&mut app.db.connect(), start).unwrap();
    // One member of the sent group buys within the window.
    let sent_members: Vec<uuid::Uuid> = {
        use passfold::schema::campaign_recipients as r;
        r::table
            .filter(r::campaign_id.eq(uuid::Uuid::parse_str(&campaign).unwrap()))
            .filter(r::held_out.eq(false))
            .select(r::member_id)
            .load(&mut app.db.connect())
            .unwrap()
    };
    assert_eq!(sent_members.len(), 2, "half of four");
    clock.set(start + Duration::hours(2));
    app.pos_ok(
        &format!("/api/v1/members/{}/purchases", sent_members[0]),
        &m.admin_key,
        "after-campaign",
        &json!({"amount": 5_000, "currency": "EUR"}),
    )
    .await;
    let api = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &m.admin_key)
        .await;
    assert_eq!(api["targeted"], 4);
    assert_eq!(api["held_out"], 2);
    assert_eq!(api["sent"], 2);
    // Two hours on, the first session has been idle too long: a new one.
    let mut console = Console::signed_in(&app, "owner@insights.example").await;
    let list = console
        .get(&format!("/console/programs/{program}/campaigns"))
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let row = from(&list, &format!(r#"data-campaign="{campaign}""#));
    assert!(row.contains(r#"data-state="sent""#) || row.contains(r#"data-state="sending""#));
    assert_eq!(
        figure(&list, r#"data-figure="targeted""#),
        "4",
        "{}",
        list.body
    );
    assert_eq!(figure(&list, r#"data-figure="held_out""#), "2");
    assert_eq!(figure(&list, r#"data-figure="sent""#), "2");
    // 1 of 2 bought against 0 of 2: +50.0%.
    assert_eq!(
        figure(&list, r#"data-figure="conversion_difference""#),
        "+50.0%"
    );

    let page = console.get(&format!("/console/campaigns/{campaign}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_finite_charts(&page);
    assert!(page.body.contains(r#"id="chart-difference""#));
    assert_eq!(figure(&page, r#"data-figure="targeted""#), "4");
    let conversion = from(&page, r#"data-row="conversion_rate""#);
    assert_eq!(figure_in(conversion, r#"data-group="sent""#), "50.0%");
    assert_eq!(figure_in(conversion, r#"data-group="holdout""#), "0.0%");
    let revenue = from(&page, r#"data-row="revenue""#);
    assert_eq!(figure_in(revenue, r#"data-group="sent""#), eur(5_000));
    // The sent group spent 25.00 a member more than the holdout: 50.00 more in all. The
    // cost: 50 points at 2 cents and a 10-cent message, to each of 2: 2.20; ROMI 2,173%.
    assert_eq!(
        figure(&page, r#"data-figure="incremental_revenue""#),
        eur(5_000)
    );
    let cost = (50 * 2 + 10) * 2;
    assert_eq!(figure(&page, r#"data-figure="cost""#), eur(cost));
    let romi = ((5_000 - cost) as f64 / cost as f64 * 100.0).round() as i64;
    assert_eq!(
        figure(&page, r#"data-figure="romi""#),
        format!("{}%", en(romi))
    );
    assert_eq!(
        api["results"]["romi"].as_f64().unwrap(),
        (5_000 - cost) as f64 / cost as f64
    );
    // Sent: no cancel form, and a cancel is refused with the reason.
    assert!(!page.body.contains(r#"id="cancel-campaign""#));
    let refused = console
        .post(
            &format!("/console/campaigns/{campaign}/cancel"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains(r#"id="campaign-error""#));

    // Analytics over the last 400 days by month: the totals are the histories' sums.
    let day = |at: DateTime<Utc>| at.date_naive().to_string();
    let range = format!(
        "interval=month&from={}&to={}",
        day(start - Duration::days(400)),
        day(start + Duration::days(1))
    );
    let page = console
        .get(&format!("/console/programs/{program}/analytics?{range}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_finite_charts(&page);
    let purchases: i64 = histories().iter().map(|h| h.3.len() as i64).sum::<i64>() + 1;
    let revenue: i64 = histories()
        .iter()
        .flat_map(|h| h.3.iter().map(|p| p.1))
        .sum::<i64>()
        + 5_000;
    let totals = from(&page, r#"id="total-figures""#);
    assert_eq!(
        figure_in(totals, r#"data-figure="purchases""#),
        en(purchases)
    );
    assert_eq!(figure_in(totals, r#"data-figure="revenue""#), eur(revenue));
    assert_eq!(figure_in(totals, r#"data-figure="members_total""#), "9");
    for chart in ["revenue", "active", "repeat", "points", "installs"] {
        assert!(
            page.body.contains(&format!(r#"id="chart-{chart}""#)),
            "{chart}"
        );
    }
    assert!(page.body.contains(r#"id="cohort-table""#));
    // The CSV beside the charts is the API's, byte for byte.
    let csv = console
        .get(&format!(
            "/console/programs/{program}/analytics.csv?{range}"
        ))
        .await;
    assert_eq!(csv.status, 200);
    let from_api = app
        .client
        .get(app.url(&format!("/api/v1/programs/{program}/analytics?{range}")))
        .bearer_auth(&m.admin_key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.body, from_api);
    assert!(csv.body.lines().count() > 12);
    let cohorts = console
        .get(&format!("/console/programs/{program}/cohorts.csv?{range}"))
        .await;
    assert_eq!(cohorts.status, 200);
    assert!(cohorts.body.starts_with("month,members,"));
    // Members joined today: one cohort of nine.
    let today = start.format("%Y-%m").to_string();
    assert!(
        cohorts.body.contains(&format!("\n{today},9,")),
        "{}",
        cohorts.body
    );
    // A range the form got wrong is said on the page, not a failure.
    let bad = console
        .get(&format!(
            "/console/programs/{program}/analytics?from=yesterday"
        ))
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="range-error""#));
    let bad_csv = console
        .get(&format!(
            "/console/programs/{program}/analytics.csv?interval=day&from=1900-01-01"
        ))
        .await;
    assert_eq!(bad_csv.status, 422);

    // In Russian: Russian words and Russian numbers.
    let csrf = console.get("/console/account").await.csrf();
    console
        .post(
            "/console/account/language",
            &[("language", "ru"), ("csrf", &csrf)],
        )
        .await;
    let ru = console
        .get(&format!("/console/programs/{program}/analytics?{range}"))
        .await;
    assert!(ru.body.contains("Выручка по периодам"), "{}", ru.body);
    assert!(ru.body.contains("Когорты по месяцу регистрации"));
    let totals = from(&ru, r#"id="total-figures""#);
    assert_eq!(
        figure_in(totals, r#"data-figure="revenue""#),
        eur(revenue).replace(',', "\u{a0}").replace('.', ",")
    );
    assert_finite_charts(&ru);
    let ru = console
        .get(&format!("/console/programs/{program}/segments"))
        .await;
    assert!(ru.body.contains("Чемпионы") && ru.body.contains("Участники по группам"));
    let ru = console.get(&format!("/console/campaigns/{campaign}")).await;
    assert!(ru.body.contains("Результаты против контрольной группы"));
    assert!(ru.body.contains("Отправлена"));
    let ru = console.get("/console/insights").await;
    assert!(ru.body.contains(r#"id="nav-insights""#));
    assert!(ru.body.contains("Сегменты, кампании и аналитика"));
    let _ = members;
}

/// The text of the first element after `marker` within `html`.
pub(crate) fn figure_in(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let start = html[at..].find('>').unwrap() + at + 1;
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_string()
}

#[tokio::test]
async fn a_cashier_sees_but_cannot_cancel_and_other_merchants_find_nothing() {
    let start = noon_today();
    let app = spawn_app_on(Clock::manual(start), |_| {}).await;
    let Shop { m, program, .. } = shop(&app, start).await;
    // Tomorrow's campaign: still scheduled.
    let created = TestApp::expect_json(
        app.pos(
            &format!("/api/v1/programs/{program}/campaigns"),
            &m.admin_key,
            "camp-later",
            &json!({
                "audience": {"stages": ["lapsed"]},
                "message": {"en": "We miss you"},
                "send_at": (start + Duration::days(1)).to_rfc3339(),
            }),
        )
        .await,
        201,
    )
    .await;
    let campaign = id_of(&created).to_string();
    staff(&app, m.id, "owner@later.example", Role::Owner);
    staff(&app, m.id, "till@later.example", Role::Cashier);
    staff(&app, m.id, "design@later.example", Role::Designer);

    let mut cashier = Console::signed_in(&app, "till@later.example").await;
    let page = cashier.get(&format!("/console/campaigns/{campaign}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"id="results-pending""#));
    assert!(!page.body.contains(r#"id="cancel-campaign""#));
    let refused = cashier
        .post(
            &format!("/console/campaigns/{campaign}/cancel"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(refused.status, 403);
    let api = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &m.admin_key)
        .await;
    assert_eq!(api["state"], "scheduled");
    assert_eq!(
        cashier
            .get(&format!("/console/programs/{program}/segments"))
            .await
            .status,
        200
    );

    let mut designer = Console::signed_in(&app, "design@later.example").await;
    for path in [
        "/console/insights".to_string(),
        format!("/console/programs/{program}/segments"),
        format!("/console/programs/{program}/analytics.csv"),
        format!("/console/campaigns/{campaign}"),
    ] {
        assert_eq!(designer.get(&path).await.status, 403, "{path}");
    }

    // Another merchant's owner: nothing of this merchant exists.
    let other = app.create_merchant("Elsewhere");
    staff(&app, other.id, "owner@elsewhere.example", Role::Owner);
    let mut stranger = Console::signed_in(&app, "owner@elsewhere.example").await;
    for path in [
        format!("/console/programs/{program}/segments"),
        format!("/console/programs/{program}/segments.csv"),
        format!("/console/programs/{program}/campaigns"),
        format!("/console/programs/{program}/analytics"),
        format!("/console/programs/{program}/analytics.csv"),
        format!("/console/programs/{program}/cohorts.csv"),
        format!("/console/campaigns/{campaign}"),
        "/console/campaigns/not-a-uuid".to_string(),
        format!("/console/programs/{program}/campaigns?after=nonsense"),
    ] {
        let page = stranger.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    let home = stranger.get("/console/insights").await;
    let stolen = stranger
        .post(
            &format!("/console/campaigns/{campaign}/cancel"),
            &[("csrf", &home.csrf())],
        )
        .await;
    assert_eq!(stolen.status, 404);

    // The owner cancels it: once, with an audit line.
    let mut owner = Console::signed_in(&app, "owner@later.example").await;
    let list = owner.get("/console/insights").await;
    assert!(list.body.contains(&format!(r#"data-program="{program}""#)));
    let page = owner.get(&format!("/console/campaigns/{campaign}")).await;
    assert!(page.body.contains(r#"id="cancel-campaign""#));
    let done = owner
        .post(
            &format!("/console/campaigns/{campaign}/cancel"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after = owner.get(done.location()).await;
    assert!(after.body.contains(r#"id="campaign-notice""#));
    assert!(after.body.contains(r#"data-state="cancelled""#));
    let again = owner
        .post(
            &format!("/console/campaigns/{campaign}/cancel"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(again.status, 303);
    let api = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &m.admin_key)
        .await;
    assert_eq!(api["state"], "cancelled");
    let audit = owner.get("/console/audit").await;
    assert_eq!(
        audit
            .body
            .matches(r#"data-action="campaign_cancel""#)
            .count(),
        1
    );
}

#[tokio::test]
async fn the_insight_pages_fit_a_phone_with_nothing_blocked() {
    let start = noon_today();
    let clock = Clock::manual(start);
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    let Shop { m, program, .. } = shop(&app, start).await;
    let created = TestApp::expect_json(
        app.pos(
            &format!("/api/v1/programs/{program}/campaigns"),
            &m.admin_key,
            "camp-phone",
            &json!({
                "audience": {"groups": ["champions", "new"]},
                "holdout_percent": 50,
                "message": {"en": "A long message header for a narrow screen"},
            }),
        )
        .await,
        201,
    )
    .await;
    let campaign = id_of(&created).to_string();
    let job = passfold::jobs::campaigns::Campaigns {
        channels: Channels::new(false),
    };
    job.run(&mut app.db.connect(), start).unwrap();
    staff(&app, m.id, "owner@phone.example", Role::Owner);

    let browser = Browser::start().await;
    // Records what the CSP blocks on every page, from before its first byte is parsed.
    browser
        .client()
        .issue_cmd(Cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.blocked = []; document.addEventListener(\
                'securitypolicyviolation', e => window.blocked.push(\
                e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample));"}),
        ))
        .await
        .expect("a script on every new document");
    browser.goto(&app.url("/console/")).await;
    let wait = std::time::Duration::from_secs(10);
    browser.wait_for("#sign-in", wait).await;
    browser.fill("#email", "owner@phone.example").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in-submit").await;
    browser.wait_for("#dashboard", wait).await;
    for (path, marker) in [
        ("/console/insights".to_string(), "#insight-programs"),
        (
            format!("/console/programs/{program}/segments"),
            "#chart-groups svg",
        ),
        (
            format!("/console/programs/{program}/campaigns"),
            "#campaigns",
        ),
        (
            format!("/console/campaigns/{campaign}"),
            "#chart-difference svg",
        ),
        (
            format!("/console/programs/{program}/analytics"),
            "#chart-revenue svg",
        ),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_for(marker, wait).await;
        assert_no_overflow(&browser).await;
        assert_accessible(&browser, &path).await;
        // The chart is drawn: the stylesheet sized it, and it has a height.
        let height = browser
            .execute(
                &format!(
                    "return document.querySelector('{marker}').getBoundingClientRect().height"
                ),
                vec![],
            )
            .await;
        assert!(height.as_f64().unwrap_or(0.0) > 20.0, "{path}: {height}");
        assert_eq!(
            browser.execute("return window.blocked", vec![]).await,
            json!([]),
            "the CSP blocked something on {path}"
        );
    }
    browser
        .screenshot_of("#revenue", "console-insights-revenue")
        .await;
    // The recorder works: an inline style attribute is what the CSP refuses.
    browser
        .execute(
            "document.body.setAttribute('style', 'color: red'); return null",
            vec![],
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let blocked = browser.execute("return window.blocked", vec![]).await;
    assert_eq!(blocked.as_array().map(Vec::len), Some(1), "{blocked}");
    browser
        .goto(&app.url(&format!("/console/programs/{program}/segments")))
        .await;
    browser.wait_for("#chart-groups svg", wait).await;
    browser
        .screenshot_of("#groups", "console-insights-groups")
        .await;
    browser
        .screenshot_of("#cells", "console-insights-cells")
        .await;
    browser
        .goto(&app.url(&format!("/console/campaigns/{campaign}")))
        .await;
    browser.wait_for("#chart-difference svg", wait).await;
    browser
        .screenshot_of("#results", "console-insights-results")
        .await;
    let app_host = app.address.trim_start_matches("http://").to_string();
    assert_eq!(browser.resource_hosts().await, vec![app_host]);
    browser.close().await;
}

/// The value of the first hidden field `name` on the page.
pub(crate) fn hidden(page: &Page, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {}", page.body))
        + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_string()
}

#[tokio::test]
async fn an_owner_schedules_a_campaign_from_the_form_once() {
    let start = noon_today();
    let app = spawn_app_on(Clock::manual(start), |_| {}).await;
    let Shop { m, program, .. } = shop(&app, start).await;
    staff(&app, m.id, "owner@form.example", Role::Owner);
    staff(&app, m.id, "till@form.example", Role::Cashier);
    let new = format!("/console/programs/{program}/campaigns/new");
    let post = format!("/console/programs/{program}/campaigns");

    let mut cashier = Console::signed_in(&app, "till@form.example").await;
    assert_eq!(cashier.get(&new).await.status, 403);
    let list = cashier.get(&post).await;
    assert!(!list.body.contains(r#"id="new-campaign""#));
    let refused = cashier
        .post(
            &post,
            &[
                ("csrf", list.csrf().as_str()),
                ("groups", "champions"),
                ("message_en", "Hello"),
                ("idempotency_key", &uuid::Uuid::new_v4().to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);

    let mut owner = Console::signed_in(&app, "owner@form.example").await;
    let list = owner.get(&post).await;
    assert!(list.body.contains(r#"id="new-campaign""#));
    let page = owner.get(&new).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (csrf, key) = (page.csrf(), hidden(&page, "idempotency_key"));
    let tomorrow = (start + Duration::days(1)).date_naive();
    let send_at = format!("{tomorrow}T10:30");
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("groups", "champions"),
        ("groups", "new"),
        ("holdout_percent", "20"),
        ("message_en", "Double points"),
        ("message_ru", "Двойные баллы"),
        ("header_en", ""),
        ("bonus_points", "10"),
        ("offer_text", "A free cake"),
        ("coupon_code", "CAKE"),
        ("valid_until", "2030-01-31"),
        ("send_at", send_at.as_str()),
        ("cost_per_message", "3"),
    ];
    let made = owner.post(&post, &form).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert!(made.location().ends_with("?created=1"));
    let again = owner.post(&post, &form).await;
    assert_eq!(again.location(), made.location(), "one campaign per form");
    let shown = owner.get(made.location()).await;
    assert!(shown.body.contains(r#"id="campaign-notice""#));
    assert!(shown.body.contains(r#"id="cancel-campaign""#));

    let api = app
        .get_json(
            &format!("/api/v1/programs/{program}/campaigns"),
            &m.admin_key,
        )
        .await;
    let campaigns = api["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    let c = &campaigns[0];
    assert_eq!(c["audience"], json!({"groups": ["champions", "new"]}));
    assert_eq!(c["holdout_percent"], 20);
    assert_eq!(c["bonus_points"], 10);
    assert_eq!(c["cost_per_message"], 3);
    assert_eq!(c["message"]["ru"]["body"], "Двойные баллы");
    assert_eq!(c["message"]["en"]["header"], "Coffee Club");
    assert_eq!(c["offer"]["coupon_code"], "CAKE");
    assert_eq!(c["state"], "scheduled");
    // The program's time zone is UTC: 10:30 local is 10:30Z.
    let requested: DateTime<Utc> = c["requested_send_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        requested,
        Utc.from_utc_datetime(&tomorrow.and_hms_opt(10, 30, 0).unwrap())
    );

    // What the console cannot read, and what the domain refuses, come back on the form.
    for (field, value, pointer_label) in [
        ("holdout_percent", "lots", "Holdout"),
        ("holdout_percent", "90", "Holdout"),
        ("send_at", "tomorrow", "Send time"),
    ] {
        let page = owner.get(&new).await;
        let key = hidden(&page, "idempotency_key");
        let refused = owner
            .post(
                &post,
                &[
                    ("csrf", page.csrf().as_str()),
                    ("idempotency_key", key.as_str()),
                    ("groups", "champions"),
                    ("message_en", "Hi"),
                    (field, value),
                ],
            )
            .await;
        assert_eq!(refused.status, 422, "{field}={value}: {}", refused.body);
        assert!(refused.body.contains(r#"id="campaign-errors""#));
        assert!(refused.body.contains(pointer_label), "{field}={value}");
        // What was typed stays.
        assert!(refused.body.contains(r#"value="champions" checked"#));
    }
    let page = owner.get(&new).await;
    let no_audience = owner
        .post(
            &post,
            &[
                ("csrf", page.csrf().as_str()),
                ("idempotency_key", hidden(&page, "idempotency_key").as_str()),
                ("message_en", "Hi"),
            ],
        )
        .await;
    assert_eq!(no_audience.status, 422);
    let api = app
        .get_json(
            &format!("/api/v1/programs/{program}/campaigns"),
            &m.admin_key,
        )
        .await;
    assert_eq!(api["campaigns"].as_array().unwrap().len(), 1);
    let audit = owner.get("/console/audit").await;
    assert_eq!(
        audit
            .body
            .matches(r#"data-action="campaign_create""#)
            .count(),
        1
    );
}
