//! Referrals: who pays whom and when (exactly once, never past the cap, never for oneself),
//! the numbers merchants see, and the public pages a referral link opens.

use crate::helpers::{assert_problem, replayed, spawn_app, TestApp, TestMerchant};
use serde_json::{json, Value};

/// A program with explicit numbers: 10 points per euro, no tiers, the given welcome points
/// and referral rule (or none).
async fn program(app: &TestApp, m: &TestMerchant, welcome: i64, referral: Value) -> Value {
    let mut body = json!({
        "name": "Bakery Friends",
        "template": "loyalty-default",
        "currency": "EUR",
        "points_per_unit": 10,
        "welcome_points": welcome,
    });
    if !referral.is_null() {
        body["referral"] = referral;
    }
    let program = TestApp::expect_json(
        app.post_json("/api/v1/programs", &m.admin_key, &body).await,
        201,
    )
    .await;
    let join_code = program["join_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(
        program["join_url"],
        format!("{}/join/{join_code}", app.address)
    );
    program
}

/// The merchant "Friends Bakery" and its program (see `program`).
async fn bakery(app: &TestApp, welcome: i64, referral: Value) -> (TestMerchant, Value) {
    let m = app.create_merchant("Friends Bakery");
    let program = program(app, &m, welcome, referral).await;
    (m, program)
}

/// The referral rule most tests use: 100 points to the referrer, 30 to the friend, on joining.
fn on_join_100_and_30() -> Value {
    json!({"referrer_points": 100, "referee_points": 30, "trigger": "join"})
}

/// The path of the program's own join page.
fn join_path(app: &TestApp, program: &Value) -> String {
    program["join_url"]
        .as_str()
        .unwrap()
        .strip_prefix(&app.address)
        .unwrap()
        .to_string()
}

async fn join(app: &TestApp, m: &TestMerchant, program: &Value, body: Value) -> reqwest::Response {
    let path = format!(
        "/api/v1/programs/{}/members",
        program["id"].as_str().unwrap()
    );
    app.post_json(&path, &m.pos_key, &body).await
}

/// Enrolls and checks the member's referral link.
async fn enrolled(app: &TestApp, m: &TestMerchant, program: &Value, body: Value) -> Value {
    let member = TestApp::expect_json(join(app, m, program, body).await, 201).await;
    assert_eq!(
        member["referral_url"],
        format!(
            "{}/r/{}",
            app.address,
            member["referral_code"].as_str().unwrap()
        )
    );
    member
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

fn code(member: &Value) -> &str {
    member["referral_code"].as_str().expect("a referral code")
}

async fn points(app: &TestApp, m: &TestMerchant, member: &Value) -> i64 {
    app.member_points(&m.pos_key, id(member)).await
}

async fn stats(app: &TestApp, m: &TestMerchant, program: &Value) -> Value {
    let path = format!("/api/v1/programs/{}/referral-stats", id(program));
    app.get_json(&path, &m.admin_key).await
}

async fn referrals_of(app: &TestApp, m: &TestMerchant, member: &Value) -> Vec<Value> {
    let path = format!("/api/v1/members/{}/referrals", id(member));
    let list = app.get_json(&path, &m.pos_key).await;
    list["referrals"].as_array().expect("a list").clone()
}

async fn purchase(
    app: &TestApp,
    m: &TestMerchant,
    member: &Value,
    key: &str,
    amount: i64,
) -> reqwest::Response {
    app.purchase(&m.pos_key, id(member), key, amount).await
}

/// The `pf_visitor` cookie an answer sets, if it sets one.
fn visitor_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pf_visitor="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Opens a public page as a browser would, with the visitor's cookie if it has one.
async fn open(app: &TestApp, path: &str, visitor: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(v) = visitor {
        req = req.header("cookie", format!("pf_visitor={v}"));
    }
    req.send().await.expect("request")
}

/// Posts a public join form (url-encoded) as `visitor`.
async fn post_form(
    app: &TestApp,
    path: &str,
    visitor: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(v) = visitor {
        req = req.header("cookie", format!("pf_visitor={v}"));
    }
    req.send().await.expect("request")
}

/// The CSRF token of the page's join form.
fn csrf_of(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("the form carries a csrf field")
        + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn join_trigger_rewards_both_sides_once_and_the_stats_add_up() {
    let app = spawn_app().await;
    let (m, program) = bakery(&app, 0, on_join_100_and_30()).await;
    let referrer = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Rita Rossi", "email": "rita@example.com"}),
    )
    .await;
    assert_eq!(referrer["points"], 0, "welcome points are 0");
    assert!(
        referrer.get("referral").is_none(),
        "no code, no referral: {referrer}"
    );
    let link = format!("/r/{}", code(&referrer));

    // Two visitors open the link; the first comes back with its cookie.
    let first = open(&app, &link, None).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let a = visitor_cookie(&first).expect("a first visit sets the visitor cookie");
    let second = open(&app, &link, None).await;
    assert_eq!(second.status(), 200);
    let b = visitor_cookie(&second).expect("another visitor gets its own cookie");
    assert_ne!(a, b);
    let again = open(&app, &link, Some(&a)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        visitor_cookie(&again),
        None,
        "a known visitor keeps its cookie"
    );
    // The program's own join link is counted apart.
    let join_path = join_path(&app, &program);
    assert_eq!(open(&app, &join_path, Some(&a)).await.status(), 200);

    let s = stats(&app, &m, &program).await;
    assert_eq!(
        (
            s["link_opens"].as_i64(),
            s["join_link_opens"].as_i64(),
            s["joins"].as_i64()
        ),
        (Some(2), Some(1), Some(0)),
        "{s}"
    );

    // The friend joins with the code, in lower case as someone might type it.
    let referee = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Finn Friend", "email": "finn@example.com", "referral_code": code(&referrer).to_lowercase()}),
    )
    .await;
    let r = &referee["referral"];
    assert_eq!(r["status"], "rewarded", "{referee}");
    assert_eq!(r["referrer_id"], referrer["id"]);
    assert_eq!(
        (r["referrer_points"].as_i64(), r["referee_points"].as_i64()),
        (Some(100), Some(30))
    );
    assert_eq!(
        referee["points"], 30,
        "the join answer shows the referee's reward"
    );
    assert_eq!(points(&app, &m, &referee).await, 30);
    assert_eq!(points(&app, &m, &referrer).await, 100);

    let list = referrals_of(&app, &m, &referrer).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let entry = &list[0];
    assert_eq!(entry["referral_id"], r["referral_id"]);
    assert_eq!(entry["referee_id"], referee["id"]);
    assert_eq!(entry["referee_name"], "Finn Friend");
    assert_eq!(entry["status"], "rewarded");
    assert_eq!(
        (entry["reward"].as_i64(), entry["referee_reward"].as_i64()),
        (Some(100), Some(30))
    );
    assert!(
        entry["rewarded_at"].is_string() && entry["first_purchase_at"].is_null(),
        "{entry}"
    );
    assert!(
        referrals_of(&app, &m, &referee).await.is_empty(),
        "the referee brought nobody"
    );

    let s = stats(&app, &m, &program).await;
    assert_eq!(s["joins"], 1, "{s}");
    assert_eq!(s["rewarded"], 1);
    assert_eq!(
        (s["pending"].as_i64(), s["capped"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["points_granted"], 130, "both sides' rewards");
    assert_eq!(s["conversions"], 0, "no purchase yet");
    assert_eq!(s["link_opens"], 2);
    assert_eq!(s["top_referrers"][0]["member_id"], referrer["id"]);
    assert_eq!(s["top_referrers"][0]["joins"], 1);
    assert_eq!(s["top_referrers"][0]["points"], 100);

    // The referee buys: a conversion, and no second reward for a join already paid.
    let bought =
        TestApp::expect_json(purchase(&app, &m, &referee, "finn-1", 1250).await, 200).await;
    assert_eq!(
        (bought["earned"].as_i64(), bought["points"].as_i64()),
        (Some(125), Some(155)),
        "{bought}"
    );
    assert!(
        bought["referral"].is_null(),
        "a join-trigger referral pays nothing on purchase: {bought}"
    );
    assert_eq!(points(&app, &m, &referrer).await, 100);
    let s = stats(&app, &m, &program).await;
    assert_eq!(s["conversions"], 1, "{s}");
    assert_eq!(s["top_referrers"][0]["conversions"], 1);
    assert_eq!(s["points_granted"], 130);
    assert_eq!(s["rewarded"], 1);
    assert!(referrals_of(&app, &m, &referrer).await[0]["first_purchase_at"].is_string());
}

#[tokio::test]
async fn first_purchase_trigger_pays_on_the_first_qualifying_purchase_exactly_once() {
    let app = spawn_app().await;
    let (m, program) = bakery(&app, 0, json!({"referrer_points": 200, "referee_points": 50, "trigger": "first_purchase", "min_purchase": 1000})).await;
    let referrer = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Rita Rossi", "phone": "+49 151 1111111"}),
    )
    .await;
    let referee = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Finn Friend", "phone": "+49 151 2222222", "referral_code": code(&referrer)}),
    )
    .await;
    let r = &referee["referral"];
    assert_eq!(r["status"], "pending", "{referee}");
    assert_eq!(
        (r["referrer_points"].as_i64(), r["referee_points"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(referee["points"], 0);
    assert_eq!(
        points(&app, &m, &referrer).await,
        0,
        "nothing paid on joining"
    );

    // Below the minimum: points for the purchase only; a conversion, still pending.
    let small = TestApp::expect_json(purchase(&app, &m, &referee, "small", 500).await, 200).await;
    assert_eq!(
        (small["earned"].as_i64(), small["points"].as_i64()),
        (Some(50), Some(50)),
        "{small}"
    );
    assert!(small["referral"].is_null(), "{small}");
    assert_eq!(points(&app, &m, &referrer).await, 0);
    let s = stats(&app, &m, &program).await;
    assert_eq!(
        (
            s["pending"].as_i64(),
            s["rewarded"].as_i64(),
            s["conversions"].as_i64()
        ),
        (Some(1), Some(0), Some(1)),
        "{s}"
    );
    assert_eq!(s["points_granted"], 0);

    // The first qualifying purchase, sent twice at once with one key (a till retrying), and
    // at the same time another qualifying purchase from a second till: one reward in all.
    let (a, b, other) = tokio::join!(
        purchase(&app, &m, &referee, "big", 1500),
        purchase(&app, &m, &referee, "big", 1500),
        purchase(&app, &m, &referee, "other", 2000),
    );
    assert_eq!(
        u8::from(replayed(&a)) + u8::from(replayed(&b)),
        1,
        "exactly one of the two sends of `big` is a replay"
    );
    assert!(!replayed(&other));
    let a = TestApp::expect_json(a, 200).await;
    let b = TestApp::expect_json(b, 200).await;
    let other = TestApp::expect_json(other, 200).await;
    assert_eq!(a, b, "the replay answers as the first did");
    assert_eq!(
        (a["earned"].as_i64(), other["earned"].as_i64()),
        (Some(150), Some(200))
    );
    let paid: Vec<&Value> = [&a, &other]
        .into_iter()
        .filter(|p| !p["referral"].is_null())
        .collect();
    assert_eq!(
        paid.len(),
        1,
        "exactly one purchase pays the referral: {a} {other}"
    );
    let reward = &paid[0]["referral"];
    assert_eq!(reward["status"], "rewarded");
    assert_eq!(reward["referral_id"], r["referral_id"]);
    assert_eq!(
        (
            reward["referrer_points"].as_i64(),
            reward["referee_points"].as_i64()
        ),
        (Some(200), Some(50))
    );
    // Whichever committed last shows all of it: 50 + 150 + 200 earned and the 50 reward.
    assert_eq!(
        a["points"].as_i64().max(other["points"].as_i64()),
        Some(450)
    );

    // Sent again later: replayed, still nothing more.
    let again = purchase(&app, &m, &referee, "big", 1500).await;
    assert!(replayed(&again));
    assert_eq!(TestApp::expect_json(again, 200).await, a);
    // Another qualifying purchase: points for it, no reward.
    let later = TestApp::expect_json(purchase(&app, &m, &referee, "later", 3000).await, 200).await;
    assert!(later["referral"].is_null(), "{later}");
    assert_eq!(
        (later["earned"].as_i64(), later["points"].as_i64()),
        (Some(300), Some(750))
    );

    assert_eq!(
        points(&app, &m, &referrer).await,
        200,
        "the referrer is paid exactly once"
    );
    assert_eq!(
        points(&app, &m, &referee).await,
        50 + 150 + 200 + 300 + 50,
        "everything earned plus one reward"
    );
    let list = referrals_of(&app, &m, &referrer).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "rewarded");
    assert_eq!(
        (
            list[0]["reward"].as_i64(),
            list[0]["referee_reward"].as_i64()
        ),
        (Some(200), Some(50))
    );
    assert!(list[0]["rewarded_at"].is_string() && list[0]["first_purchase_at"].is_string());
    let s = stats(&app, &m, &program).await;
    assert_eq!(
        (
            s["joins"].as_i64(),
            s["rewarded"].as_i64(),
            s["pending"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(s["conversions"], 1);
    assert_eq!(s["points_granted"], 250);
    assert_eq!(s["top_referrers"][0]["points"], 200);
}

#[tokio::test]
async fn self_referral_existing_members_and_the_cap_earn_nothing() {
    let app = spawn_app().await;
    let (m, program) = bakery(
        &app,
        10,
        json!({"referrer_points": 100, "referee_points": 20, "trigger": "join", "monthly_cap": 1}),
    )
    .await;
    let referrer = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Rita Rossi", "email": "rita@example.com", "phone": "+49 151 1111111", "external_id": "POS-1"}),
    )
    .await;
    enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Olga Old", "email": "olga@example.com"}),
    )
    .await;
    let c = code(&referrer);

    // The referrer under other spellings of its own details: refused, nothing created.
    for (how, body) in [
        (
            "email",
            json!({"name": "Rita Again", "email": " RITA@Example.com ", "referral_code": c}),
        ),
        (
            "phone",
            json!({"name": "Rita Again", "phone": "+49-151-111 1111", "referral_code": c}),
        ),
        (
            "external_id",
            json!({"name": "Rita Again", "external_id": "POS-1", "referral_code": c}),
        ),
    ] {
        let problem = assert_problem(join(&app, &m, &program, body).await, 422, "validation").await;
        let text = problem.to_string();
        assert!(
            text.contains("/referral_code") && text.contains(how),
            "self-referral by {how}: {problem}"
        );
    }
    // An existing member joining again with a code.
    let res = join(
        &app,
        &m,
        &program,
        json!({"name": "Olga New", "email": "olga@example.com", "referral_code": c}),
    )
    .await;
    assert_problem(res, 409, "conflict").await;
    // A code nobody in this program has, and a code of another program's member.
    let res = join(
        &app,
        &m,
        &program,
        json!({"name": "Nina", "email": "nina@example.com", "referral_code": "NOSUCH42"}),
    )
    .await;
    let problem = assert_problem(res, 422, "validation").await;
    assert_eq!(
        problem["errors"][0]["pointer"], "/referral_code",
        "{problem}"
    );
    let elsewhere = app.create_program(&m.admin_key, "loyalty-default").await;
    let outsider = enrolled(
        &app,
        &m,
        &elsewhere,
        json!({"name": "Otto Other", "email": "otto@example.com"}),
    )
    .await;
    let res = join(
        &app,
        &m,
        &program,
        json!({"name": "Nina", "email": "nina@example.com", "referral_code": code(&outsider)}),
    )
    .await;
    assert_problem(res, 422, "validation").await;

    assert_eq!(
        points(&app, &m, &referrer).await,
        10,
        "only the welcome points"
    );
    assert_eq!(
        stats(&app, &m, &program).await["joins"],
        0,
        "no refused join was recorded"
    );
    // Nina was not created by the refused attempts: she can still join.
    enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Nina", "email": "nina@example.com"}),
    )
    .await;

    // The cap: the first friend is rewarded, the second in the same month earns nothing.
    let ben = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Ben", "email": "ben@example.com", "referral_code": c}),
    )
    .await;
    assert_eq!(ben["referral"]["status"], "rewarded", "{ben}");
    assert_eq!(ben["points"], 10 + 20);
    assert_eq!(points(&app, &m, &referrer).await, 10 + 100);
    let cleo = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Cleo", "email": "cleo@example.com", "referral_code": c}),
    )
    .await;
    let r = &cleo["referral"];
    assert_eq!(r["status"], "capped", "{cleo}");
    assert_eq!(
        (r["referrer_points"].as_i64(), r["referee_points"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(cleo["points"], 10, "welcome points only");
    assert_eq!(points(&app, &m, &cleo).await, 10);
    assert_eq!(
        points(&app, &m, &referrer).await,
        110,
        "nothing past the cap"
    );

    let list = referrals_of(&app, &m, &referrer).await;
    let capped = list
        .iter()
        .find(|e| e["referee_id"] == cleo["id"])
        .expect("Cleo is listed");
    assert_eq!(capped["status"], "capped");
    assert_eq!(
        (capped["reward"].as_i64(), capped["referee_reward"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(capped["rewarded_at"].is_null());
    let s = stats(&app, &m, &program).await;
    assert_eq!(
        (
            s["joins"].as_i64(),
            s["rewarded"].as_i64(),
            s["capped"].as_i64()
        ),
        (Some(2), Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(s["points_granted"], 120);
    assert_eq!(s["top_referrers"][0]["points"], 100);

    // A program without a referral rule records the referral and pays nothing.
    let plain_referee = enrolled(
        &app,
        &m,
        &elsewhere,
        json!({"name": "Paul", "email": "paul@example.com", "referral_code": code(&outsider)}),
    )
    .await;
    assert_eq!(
        plain_referee["referral"]["status"], "no_rule",
        "{plain_referee}"
    );
    assert_eq!(
        plain_referee["points"], 50,
        "the welcome points of create_program only"
    );
    assert_eq!(points(&app, &m, &outsider).await, 50);
}

#[tokio::test]
async fn public_forms_refuse_missing_csrf_and_escape_what_was_typed() {
    let app = spawn_app().await;
    let (m, program) = bakery(&app, 0, on_join_100_and_30()).await;
    let eve = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "<script>alert(1)</script> Eve", "email": "eve@example.com"}),
    )
    .await;
    let link = format!("/r/{}", code(&eve));

    // The referrer's name is shown escaped, under a strict policy.
    let page = open(&app, &link, None).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let visitor = visitor_cookie(&page).expect("visitor cookie");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)</script>"), "{html}");
    let csrf = csrf_of(&html);

    // Forged posts: no token, a wrong one, this form's token without the cookie or under
    // another visitor's cookie, and the token of the program's other form.
    let other = visitor_cookie(&open(&app, &link, None).await).unwrap();
    let join_path = join_path(&app, &program);
    let join_csrf = csrf_of(
        &open(&app, &join_path, Some(&visitor))
            .await
            .text()
            .await
            .unwrap(),
    );
    let wrong = "0".repeat(csrf.len());
    let details = [
        ("name", "Mallory"),
        ("email", "mallory@example.com"),
        ("phone", "+49 151 3333333"),
        ("consent", "yes"),
    ];
    for (what, cookie, token) in [
        ("no csrf field", Some(visitor.as_str()), None),
        ("a wrong csrf", Some(visitor.as_str()), Some(wrong.as_str())),
        ("no cookie", None, Some(csrf.as_str())),
        ("another visitor", Some(other.as_str()), Some(csrf.as_str())),
        (
            "the join form's token",
            Some(visitor.as_str()),
            Some(join_csrf.as_str()),
        ),
    ] {
        let mut fields = details.to_vec();
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        let res = post_form(&app, &link, cookie, &fields).await;
        assert_eq!(res.status(), 403, "{what}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        assert!(
            res.text().await.unwrap().contains("This form has expired"),
            "{what}"
        );
    }

    // The right token passes the check; what was typed comes back escaped, nobody joins
    // (no consent).
    let typed = r#""><script>alert(2)</script>"#;
    let res = post_form(
        &app,
        &link,
        Some(&visitor),
        &[
            ("name", typed),
            ("email", "mallory@example.com"),
            ("csrf", csrf.as_str()),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(2)</script>"), "{html}");

    let s = stats(&app, &m, &program).await;
    assert_eq!(s["joins"], 0, "{s}");
    assert_eq!(points(&app, &m, &eve).await, 0);
    // Mallory's details are still free: no member was created.
    enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Mallory", "email": "mallory@example.com", "phone": "+49 151 3333333"}),
    )
    .await;
}

/// Decodes the one QR code in a PNG.
fn decode_qr(bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).expect("PNG frame");
    assert_eq!(frame.color_type, png::ColorType::Grayscale);
    let (w, h) = (frame.width as usize, frame.height as usize);
    let luma: Vec<u8> = buf[..frame.line_size * h]
        .chunks(frame.line_size)
        .flat_map(|row| row[..w].to_vec())
        .collect();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code");
    grids[0].decode().expect("the QR code decodes").1
}

#[tokio::test]
async fn qr_codes_carry_the_links() {
    let app = spawn_app().await;
    let (m, program) = bakery(&app, 0, on_join_100_and_30()).await;
    let member = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Rita Rossi", "email": "rita@example.com"}),
    )
    .await;
    let referral_url = member["referral_url"].as_str().unwrap();
    let join_url = program["join_url"].as_str().unwrap();

    for url in [referral_url, join_url] {
        let res = app
            .client
            .get(format!("{url}/qr.png"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(decode_qr(&res.bytes().await.unwrap()), url);

        let res = app
            .client
            .get(format!("{url}/qr.svg"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert!(res.text().await.unwrap().contains("<svg"));
    }
    // A code typed in lower case still encodes the one canonical link.
    let lower = format!("{}/r/{}/qr.png", app.address, code(&member).to_lowercase());
    let res = app.client.get(lower).send().await.unwrap();
    assert_eq!(decode_qr(&res.bytes().await.unwrap()), referral_url);

    for path in [
        "/r/NOSUCH42/qr.png",
        "/r/NOSUCH42/qr.svg",
        "/join/NOSUCH42/qr.svg",
        "/join/NOSUCH42/qr.png",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    let other_member_path = format!("/join/{}/qr.png", code(&member));
    assert_eq!(
        app.get(&other_member_path).await.status(),
        404,
        "a member's code is not a join code"
    );
}

#[tokio::test]
async fn joins_are_limited_per_client_address_and_forwarded_headers_do_not_escape_it() {
    let app = spawn_app().await;
    let m = app.create_merchant("Busy Café");
    let program = program(
        &app,
        &m,
        0,
        json!({"referrer_points": 10, "referee_points": 5, "trigger": "join"}),
    )
    .await;
    let path = join_path(&app, &program);
    let page = open(&app, &path, None).await;
    let visitor = visitor_cookie(&page).expect("a visitor cookie");
    let csrf = csrf_of(&page.text().await.unwrap());
    let mut joined = 0;
    for i in 0..10 {
        let email = format!("guest{i}@example.com");
        let res = post_form(
            &app,
            &path,
            Some(&visitor),
            &[
                ("name", "Guest"),
                ("email", &email),
                ("consent", "yes"),
                ("csrf", &csrf),
            ],
        )
        .await;
        assert_eq!(res.status(), 303, "join {i}");
        joined += 1;
    }
    // The eleventh within 15 minutes is refused, whatever address a header claims.
    let res = app
        .client
        .post(app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("pf_visitor={visitor}"))
        .header("x-forwarded-for", "203.0.113.7")
        .body(format!(
            "name=Guest&email=late%40example.com&consent=yes&csrf={csrf}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "900");
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let members = app
        .get_json(
            &format!("/api/v1/programs/{}/installs", id(&program)),
            &m.admin_key,
        )
        .await;
    assert_eq!(members["members"], joined);
}

/// A reward is a change like any other: the referrer's Google Wallet object follows it.
#[tokio::test]
async fn a_referral_reward_reaches_the_referrers_google_wallet_object() {
    use crate::google_mock::GoogleMock;
    use crate::google_wallet::save_link_object_id;
    use crate::wallets::{loyalty_object_shows, spawn_app_with_google};
    let mock = GoogleMock::start().await;
    let app = spawn_app_with_google(&mock).await;
    let m = app.create_merchant("Google Friends");
    let program = program(
        &app,
        &m,
        0,
        json!({"referrer_points": 70, "referee_points": 0, "trigger": "join"}),
    )
    .await;
    let referrer = enrolled(
        &app,
        &m,
        &program,
        json!({"name": "Gina", "email": "gina@example.com"}),
    )
    .await;
    let object_id = save_link_object_id(&referrer["google_save_url"], "loyaltyObjects");
    let friend = join(
        &app,
        &m,
        &program,
        json!({"name": "Fred", "phone": "+49 151 2222222", "referral_code": code(&referrer)}),
    )
    .await;
    let friend = TestApp::expect_json(friend, 201).await;
    assert_eq!(friend["referral"]["status"], "rewarded");
    assert!(
        loyalty_object_shows(&mock, &object_id, 70, std::time::Duration::from_secs(2)).await,
        "the referrer's Google object never showed the reward"
    );
}
