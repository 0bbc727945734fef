//! The pass designer in headless Chromium (issue 14, journeys 1–3 and the accessibility
//! check): an owner signs in through the form on a 375 px wide phone, recolours the card
//! and watches both previews change without a page load, uploads a 3000x2000 JPEG logo,
//! publishes with the keyboard alone, and a registered phone is pushed and downloads a
//! pass with the new colour and a fitted logo. A too-long value is shown next to its
//! control, from the live preview and from the no-script "Refresh preview". Every page
//! passes axe-core (WCAG 2 A and AA), loads nothing from another host, runs no inline
//! script and fits 375 px.

use crate::apns_mock::ApnsMock;
use crate::browser::Browser;
use crate::google_mock::GoogleMock;
use crate::helpers::{apple_auth, spawn_app, spawn_app_with, TestApp};
use crate::pass_check::check_pkpass;
use fantoccini::key::Key;
use passfold::domain::{Email, Password, Role};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
const DESIGNER: &str = "/console/templates/loyalty-default";
const WAIT: Duration = Duration::from_secs(10);
/// An iPhone SE's viewport, the narrowest the console promises to be usable at.
const PHONE: (u32, u32) = (375, 667);

/// axe-core 4.14.1 (MPL-2.0, see tests/assets/axe.LICENSE.txt), kept in the test tree so
/// the check runs offline and the product serves nothing for tests.
const AXE: &str = include_str!("../assets/axe.min.js");

/// An account made by the same function `passfold staff create` calls.
fn staff(app: &TestApp, merchant: uuid::Uuid, email: &str, role: Role) {
    let mut conn = app.db.connect();
    passfold::staff::accounts::create(
        &mut conn,
        merchant,
        &Email::parse(email).unwrap(),
        role,
        &Password::parse_new(PASSWORD).unwrap(),
        app.clock.now(),
    )
    .unwrap();
}

/// A 3000x2000 JPEG on disk, as a phone's photo would be, for the file input.
fn big_jpeg(dir: &std::path::Path) -> std::path::PathBuf {
    let img = image::RgbImage::from_fn(3000, 2000, |x, y| {
        image::Rgb([(x / 12) as u8, (y / 8) as u8, 120])
    });
    let path = dir.join("photo.jpg");
    img.save_with_format(&path, image::ImageFormat::Jpeg)
        .unwrap();
    path
}

async fn sign_in(browser: &Browser, app: &TestApp, email: &str) {
    browser.goto(&app.url("/console/")).await;
    browser.wait_for("#sign-in", WAIT).await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in-submit").await;
    browser.wait_for("#dashboard", WAIT).await;
}

/// Runs axe-core's WCAG 2 A/AA rules on the current page and fails with every violation
/// (rule, impact, the offending elements) when there is one.
pub(crate) async fn assert_accessible(browser: &Browser, page: &str) {
    // WebDriver runs the script outside the page's CSP, so the library needs no route in
    // the product and no 'unsafe-eval'.
    let loaded = browser
        .execute(&format!("{AXE}\nreturn typeof axe;"), vec![])
        .await;
    assert_eq!(loaded, json!("object"), "axe-core loaded on {page}");
    let violations = browser
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } })
               .then(r => done(r.passes.length === 0
                 ? [{ rule: 'axe-ran-nothing', help: 'no rule passed or failed' }]
                 : r.violations.map(v => ({
                     rule: v.id, impact: v.impact, help: v.help,
                     nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)
                   }))))
               .catch(e => done([{ rule: 'axe-error', help: String(e) }]));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("axe-core did not run on {page}: {e}"));
    assert_eq!(
        violations,
        json!([]),
        "accessibility violations on {page}:\n{}",
        serde_json::to_string_pretty(&violations).unwrap()
    );
}

/// The page is no wider than the phone: nothing scrolls sideways.
async fn assert_fits(browser: &Browser, page: &str) {
    let widths = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth,
                     [...document.querySelectorAll('body *')]
                       .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                       .filter(e => !e.closest('.table-wrap'))
                       .map(e => e.tagName + '#' + e.id + '.' + e.className)];",
            vec![],
        )
        .await;
    assert_eq!(widths[1], json!(PHONE.0), "the viewport on {page}");
    assert!(
        widths[0].as_u64().unwrap() <= u64::from(PHONE.0),
        "{page} is wider than {} px: {widths}",
        PHONE.0
    );
}

/// Everything the page loaded came from the app, and no script of it is inline.
async fn assert_own_and_scripted_from_files(browser: &Browser, app: &TestApp, page: &str) {
    let host = app.address.trim_start_matches("http://").to_string();
    assert_eq!(browser.resource_hosts().await, vec![host], "{page}");
    let inline = browser
        .execute(
            "return [...document.scripts].filter(s => !s.src).length",
            vec![],
        )
        .await;
    assert_eq!(inline, json!(0), "inline scripts on {page}");
    let handlers = browser
        .execute(
            "return [...document.querySelectorAll('*')].flatMap(e =>
               [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))",
            vec![],
        )
        .await;
    assert_eq!(handlers, json!([]), "inline event handlers on {page}");
    // The page itself was answered with a CSP that allows no inline script.
    let csp = browser
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(location.href, { credentials: 'same-origin' })
               .then(r => done(r.headers.get('content-security-policy')))
               .catch(e => done('fetch failed: ' + e));",
            vec![],
        )
        .await
        .unwrap();
    let csp = csp.as_str().unwrap_or_default();
    let scripts = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("no script-src on {page}: {csp}"));
    assert_eq!(scripts, "script-src 'self'", "{page}: {csp}");
}

/// A computed style property of the first element matching `css`.
async fn computed(browser: &Browser, css: &str, property: &str) -> String {
    let value = browser
        .execute(
            "const e = document.querySelector(arguments[0]);
             return e ? getComputedStyle(e)[arguments[1]] : null;",
            vec![json!(css), json!(property)],
        )
        .await;
    value.as_str().unwrap_or_default().to_string()
}

/// Polls until `js` (a function body) returns `true`.
async fn until(browser: &Browser, js: &str, what: &str) {
    let started = Instant::now();
    loop {
        if let Ok(v) = browser.client().execute(js, vec![]).await {
            if v == json!(true) {
                return;
            }
        }
        if started.elapsed() > WAIT {
            panic!(
                "{what}: not within {WAIT:?} on {}",
                browser.current_url().await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_owner_designs_on_a_phone_publishes_by_keyboard_and_the_phone_gets_it() {
    let started = Instant::now();
    let mock = ApnsMock::start().await;
    let google = GoogleMock::start().await;
    let app = {
        let (url, ca) = (mock.url.clone(), mock.ca_file.clone());
        let (api, token_url) = (google.api_url.clone(), google.token_url.clone());
        spawn_app_with(move |s| {
            s.apns = passfold::configuration::ApnsSettings {
                url,
                ca_file: Some(ca),
            };
            s.google.api_url = api;
            s.google.token_url = token_url;
        })
        .await
    };
    let (m, _program, member) = app.merchant_with_member("Café Journey", "Ann").await;
    staff(&app, m.id, "owner@journey.example", Role::Owner);
    let pass = app.pass_json_of(&member).await;
    let token = format!("{:064x}", 77);
    assert_eq!(app.register_device(&pass, "phone-1", &token).await, 201);
    let files = tempfile::tempdir().unwrap();
    let photo = big_jpeg(files.path());

    let browser = Browser::start_sized(PHONE.0, PHONE.1).await;
    browser.goto(&app.url("/console/")).await;
    browser.wait_for("#sign-in", WAIT).await;
    assert_accessible(&browser, "sign-in").await;
    assert_own_and_scripted_from_files(&browser, &app, "sign-in").await;
    assert_fits(&browser, "sign-in").await;
    sign_in(&browser, &app, "owner@journey.example").await;
    assert_accessible(&browser, "home").await;
    assert_own_and_scripted_from_files(&browser, &app, "home").await;
    assert_fits(&browser, "home").await;

    browser.goto(&app.url("/console/staff")).await;
    browser.wait_for("main", WAIT).await;
    assert_accessible(&browser, "staff").await;
    assert_own_and_scripted_from_files(&browser, &app, "staff").await;
    assert_fits(&browser, "staff").await;
    browser.goto(&app.url("/console/templates")).await;
    browser
        .wait_for(&format!("a[href=\"{DESIGNER}\"]"), WAIT)
        .await;
    assert_accessible(&browser, "templates").await;
    assert_own_and_scripted_from_files(&browser, &app, "templates").await;
    assert_fits(&browser, "templates").await;

    // The designer: the card's colour changes as it is typed, with no page load.
    browser.goto(&app.url(DESIGNER)).await;
    browser.wait_for("#designer", WAIT).await;
    assert_own_and_scripted_from_files(&browser, &app, "designer").await;
    assert_fits(&browser, "designer").await;
    assert_accessible(&browser, "designer").await;
    let apple = "#preview .pf-apple-front";
    let google_card = "#preview .pf-google";
    let apple_before = computed(&browser, apple, "backgroundColor").await;
    let google_before = computed(&browser, google_card, "backgroundColor").await;
    assert_ne!(apple_before, "rgb(10, 61, 98)");
    // A marker a page load would wipe, and a record of anything the CSP blocks while the
    // script swaps the preview in (an inline style or script in it would be).
    browser
        .execute(
            "window.stillTheSamePage = true;
             window.blocked = [];
             document.addEventListener('securitypolicyviolation',
               e => window.blocked.push(e.violatedDirective + ' ' + e.blockedURI));
             return null",
            vec![],
        )
        .await;
    browser.fill("#c-colors-background", "#0a3d62").await;
    until(
        &browser,
        &format!(
            "return getComputedStyle(document.querySelector('{apple}')).backgroundColor \
             === 'rgb(10, 61, 98)'"
        ),
        "the Apple preview takes the typed background",
    )
    .await;
    let google_after = computed(&browser, google_card, "backgroundColor").await;
    assert_ne!(google_after, google_before, "the Google preview follows");
    assert_eq!(google_after, "rgb(10, 61, 98)");
    assert_eq!(
        browser
            .execute("return window.stillTheSamePage === true", vec![])
            .await,
        json!(true),
        "no page load"
    );
    assert_eq!(
        browser.execute("return window.blocked", vec![]).await,
        json!([]),
        "the CSP blocked nothing the live preview did"
    );
    assert_eq!(browser.current_url().await.path(), DESIGNER);
    assert_eq!(
        browser
            .execute(
                "return document.getElementById('c-colors-background-picker').value",
                vec![]
            )
            .await,
        json!("#0a3d62"),
        "the picker follows the text box"
    );

    // A new field on the card's front, its label in English and Russian.
    browser
        .fill(r#"[name="f.secondary.1.key"]"#, "visits")
        .await;
    browser
        .fill(r#"[name="f.secondary.1.label"]"#, "visits_label")
        .await;
    browser
        .fill(r#"[name="f.secondary.1.value"]"#, "{{points}}")
        .await;
    browser.fill("#lk-new", "visits_label").await;
    browser.fill("#l-new-en", "Visits").await;
    browser.fill("#l-new-ru", "Визиты").await;

    // A 3000x2000 JPEG as the logo, through the file input, without saving first: the
    // upload carries the typed colour, field and translation, and keeps them in the draft.
    let logo_before = browser
        .execute(
            "const i = document.querySelector('#preview .pf-apple-logo'); return i ? i.src : null",
            vec![],
        )
        .await;
    let input = browser.find("#file-logo").await;
    input.send_keys(photo.to_str().unwrap()).await.unwrap();
    browser.click("#upload-logo").await;
    browser.wait_for("#fitted-logo", WAIT).await;
    let logo = browser
        .execute(
            "const i = document.querySelector('#preview .pf-apple-logo');
             return i ? [i.src, i.naturalWidth, i.naturalHeight, i.complete] : null",
            vec![],
        )
        .await;
    assert_ne!(logo[0], logo_before, "the preview shows the new logo");
    assert_eq!((logo[1].clone(), logo[2].clone()), (json!(150), json!(100)));
    assert_eq!(
        computed(&browser, apple, "backgroundColor").await,
        "rgb(10, 61, 98)",
        "the colour was kept by the upload"
    );
    let google_logo = browser
        .execute(
            "const i = document.querySelector('#preview .pf-google-logo');
             return i ? i.naturalWidth > 0 : false",
            vec![],
        )
        .await;
    assert_eq!(google_logo, json!(true), "the Google card shows a logo");
    // Kept for people to look at: each wallet's face as drawn (a phone's viewport high).
    for (face, name) in [
        (apple, "designer-preview-apple"),
        (google_card, "designer-preview-google"),
    ] {
        let shot = browser.screenshot_of(face, name).await;
        assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    }
    assert_fits(&browser, "designer after upload").await;
    assert_accessible(&browser, "designer after upload").await;

    // The test pass's QR code draws (a data: image the page's CSP allows).
    browser.click("#send-to-phone").await;
    let qr = browser.wait_for("#test-qr", WAIT).await;
    let drawn = browser
        .execute(
            "return arguments[0].complete && arguments[0].naturalWidth > 0",
            vec![json!(qr)],
        )
        .await;
    assert_eq!(drawn, json!(true), "the test pass's QR code is drawn");

    // Publish with the keyboard alone: Tab from the top of the page to the button, Enter.
    browser
        .execute("document.activeElement.blur(); return null", vec![])
        .await;
    let mut tabs = 0;
    loop {
        browser.press(Key::Tab).await;
        tabs += 1;
        let on = browser
            .execute("return document.activeElement.id", vec![])
            .await;
        if on == json!("publish-button") {
            break;
        }
        assert!(tabs < 400, "Tab never reached the publish button");
    }
    browser.press(Key::Enter).await;
    browser.wait_for("#progress", WAIT).await;
    assert_accessible(&browser, "publish progress").await;
    assert_fits(&browser, "publish progress").await;
    assert!(mock.wait_for(&token, 1, WAIT).await, "the phone was pushed");
    // Google's class takes the new look too.
    let recoloured = google
        .wait_until(
            |g| {
                g.all("loyaltyClass")
                    .iter()
                    .any(|c| c["hexBackgroundColor"] == "#0a3d62")
            },
            WAIT,
        )
        .await;
    assert!(
        recoloured,
        "the Google class was patched with the new colour"
    );
    // The script follows the queue down to zero, no reload needed.
    browser.wait_for("#progress-done.notice", WAIT).await;
    until(
        &browser,
        "return !document.getElementById('check-again')",
        "the script says when every card has its update",
    )
    .await;

    // The phone then downloads its pass: signed, in the new colour, with the fitted logo.
    let res = app
        .client
        .get(app.latest_pass_url(&pass))
        .header("authorization", apple_auth(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let checked = check_pkpass(&res.bytes().await.unwrap());
    assert_eq!(checked.pass_json["backgroundColor"], "rgb(10, 61, 98)");
    let visits = checked.pass_json["storeCard"]["secondaryFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "visits")
        .cloned()
        .expect("the new field is on the pass");
    // The label in the template's default language, translated for Russian phones.
    assert_eq!(visits["label"], "Visits");
    let russian = crate::pass_check::pass_strings(&checked, "ru");
    assert_eq!(
        russian.get("Visits").map(String::as_str),
        Some("Визиты"),
        "{russian:?}"
    );
    for (file, (w, h)) in [
        ("logo.png", (75, 50)),
        ("logo@2x.png", (150, 100)),
        ("logo@3x.png", (225, 150)),
    ] {
        let img = image::load_from_memory(&checked.files[file]).unwrap();
        assert_eq!((img.width(), img.height()), (w, h), "{file}");
    }
    browser.close().await;
    eprintln!(
        "designer journey: {tabs} Tabs to Publish, done in {:?}",
        started.elapsed()
    );
}

/// The error element the control is described by: shown, and saying something.
async fn described_error(browser: &Browser, control: &str) -> Value {
    browser
        .execute(
            "const c = document.getElementById(arguments[0]);
             const id = c.getAttribute('aria-describedby');
             const e = id && document.getElementById(id);
             if (!e) { return null; }
             const r = e.getBoundingClientRect();
             return { invalid: c.getAttribute('aria-invalid'), text: e.textContent.trim(),
                      visible: r.width > 0 && r.height > 0
                        && getComputedStyle(e).visibility !== 'hidden',
                      near: e.closest('.control') === c.closest('.control'),
                      below: r.top >= c.getBoundingClientRect().bottom - 0.5 };",
            vec![json!(control)],
        )
        .await
}

#[tokio::test]
async fn a_too_long_value_is_shown_next_to_its_field_live_and_without_script() {
    let app = spawn_app().await;
    let (m, _program, _member) = app.merchant_with_member("Long names", "Bo").await;
    staff(&app, m.id, "designer@journey.example", Role::Designer);
    let browser = Browser::start_sized(PHONE.0, PHONE.1).await;
    sign_in(&browser, &app, "designer@journey.example").await;
    browser.goto(&app.url(DESIGNER)).await;
    browser.wait_for("#designer", WAIT).await;
    assert_eq!(described_error(&browser, "c-logo_text").await, Value::Null);

    // logo_text takes at most 40 characters.
    let long = "A logo text far longer than Wallet can show";
    assert!(long.chars().count() > 40);
    browser.fill("#c-logo_text", long).await;
    browser.wait_for("#err-c-logo_text", WAIT).await;
    let live = described_error(&browser, "c-logo_text").await;
    assert_eq!(live["invalid"], "true", "{live}");
    assert_eq!(live["visible"], true, "{live}");
    assert_eq!(live["near"], true, "{live}");
    assert_eq!(live["below"], true, "{live}");
    assert!(
        live["text"].as_str().unwrap().contains("40"),
        "says the limit: {live}"
    );

    // The same from the server, as a browser without script gets it.
    browser.click("#refresh").await;
    browser.wait_for("#refreshed", WAIT).await;
    let drawn = described_error(&browser, "c-logo_text").await;
    assert_eq!(drawn["invalid"], "true", "{drawn}");
    assert_eq!(drawn["visible"], true, "{drawn}");
    assert_eq!(drawn["near"], true, "{drawn}");
    assert_eq!(drawn["text"], live["text"], "the same words either way");
    assert_eq!(
        browser
            .execute(
                "return document.getElementById('c-logo_text').value",
                vec![]
            )
            .await,
        json!(long),
        "what was typed is kept"
    );
    assert_accessible(&browser, "designer with an error").await;

    // Fixed, the error goes away live.
    browser.fill("#c-logo_text", "Short").await;
    until(
        &browser,
        "return !document.getElementById('err-c-logo_text')",
        "the error leaves once fixed",
    )
    .await;
    assert_eq!(described_error(&browser, "c-logo_text").await, Value::Null);

    // A colour's error goes under its pair of inputs, where the server puts it, not into
    // the row beside the picker.
    browser.fill("#c-colors-background", "not a colour").await;
    browser.wait_for("#err-c-colors-background", WAIT).await;
    let live = described_error(&browser, "c-colors-background").await;
    assert_eq!(live["visible"], true, "{live}");
    assert_eq!(live["near"], true, "{live}");
    assert_eq!(live["below"], true, "{live}");
    assert_fits(&browser, "designer with a colour error").await;
    browser.click("#refresh").await;
    browser.wait_for("#refreshed", WAIT).await;
    let drawn = described_error(&browser, "c-colors-background").await;
    assert_eq!(drawn, live, "the same place and words either way");
    browser.close().await;
}
