//! The console's pass designer (issue 14): a designer saves a draft through the form and
//! publishes it (a registered phone is pushed and its pass changes), cashiers are refused,
//! forged posts are refused, a bad value comes back next to its control, an image of any
//! size lands in the draft, and a test pass downloads signed and marked as a test.

use crate::apns_mock::ApnsMock;
use crate::console_auth::{staff, Console};
use crate::helpers::{spawn_app, spawn_app_with_apns, TestApp};
use crate::pass_check::check_pkpass;
use passfold::domain::Role;
use std::time::Duration;

const DESIGNER: &str = "/console/templates/loyalty-default";

/// A 3000x2000 JPEG, as a phone's photo would be.
fn big_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(3000, 2000, |x, y| {
        image::Rgb([(x / 12) as u8, (y / 8) as u8, 120])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// The working copy as the API reads it.
async fn draft(app: &TestApp, key: &str) -> serde_json::Value {
    app.get_json("/api/v1/templates/loyalty-default/draft", key)
        .await
}

#[tokio::test]
async fn a_designer_saves_uploads_tests_and_publishes_and_the_phone_gets_it() {
    // Made first: encoding it takes seconds in a debug build, long enough for a kept-alive
    // connection to the app to be closed under the upload.
    let logo = big_jpeg();
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let (m, _program, member) = app.merchant_with_member("Designer café", "Ann").await;
    staff(&app, m.id, "designer@cafe.example", Role::Designer);
    let pass = app.pass_json_of(&member).await;
    let token = format!("{:064x}", 41);
    assert_eq!(app.register_device(&pass, "phone", &token).await, 201);

    let mut console = Console::signed_in(&app, "designer@cafe.example").await;
    let list = console.get("/console/templates").await;
    assert_eq!(list.status, 200);
    assert!(list
        .body
        .contains(r#"href="/console/templates/loyalty-default""#));
    let page = console.get(DESIGNER).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"class="pf-preview""#));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("'nonce-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.body.contains(r#"id="c-colors-background""#));

    // Saved through the form's JSON escape hatch: a new background, a draft only.
    let mut doc = draft(&app, &m.admin_key).await["template"].clone();
    doc["colors"]["background"] = serde_json::json!("#0a3d62");
    let json = doc.to_string();
    let csrf = page.csrf();
    let saved = console
        .post(
            DESIGNER,
            &[("csrf", &csrf), ("action", "json"), ("json", &json)],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains(r#"id="saved""#));
    let working = draft(&app, &m.admin_key).await;
    assert_eq!(working["is_draft"], true);
    assert_eq!(working["template"]["colors"]["background"], "#0a3d62");

    // A 3000x2000 JPEG logo lands in the draft, fitted.
    let uploaded = console
        .upload(&format!("{DESIGNER}/images/logo?csrf={csrf}"), &logo)
        .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    assert!(uploaded.body.contains(r#"id="fitted-logo""#));
    let files: Vec<String> = draft(&app, &m.admin_key).await["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap().to_string())
        .collect();
    assert!(files.contains(&"logo@3x.png".to_string()), "{files:?}");

    // The test pass: signed, marked, never registering.
    let tested = console
        .post(&format!("{DESIGNER}/test-pass"), &[("csrf", &csrf)])
        .await;
    assert_eq!(tested.status, 200);
    assert!(tested.body.contains(r#"id="test-qr""#));
    let start = tested.body.find(r#"id="test-link" href=""#).unwrap() + 21;
    let end = tested.body[start..].find('"').unwrap() + start;
    let link = tested.body[start..end].replace("&amp;", "&");
    let bytes = app.download_pass(&link).await;
    let checked = check_pkpass(&bytes);
    let serial = checked.pass_json["serialNumber"].as_str().unwrap();
    assert!(serial.starts_with("test-"), "{serial}");
    assert!(checked.pass_json.get("webServiceURL").is_none());
    assert!(checked.pass_json.get("authenticationToken").is_none());
    assert_eq!(checked.pass_json["backgroundColor"], "rgb(10, 61, 98)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mock.accepted_for(&token).await, 0, "drafts push nothing");

    // Publish: the phone is pushed, its pass has the colour and the fitted logo.
    let reach = console.get(DESIGNER).await;
    assert!(reach.body.contains(r#"id="publish-button""#));
    let published = console
        .post(&format!("{DESIGNER}/publish"), &[("csrf", &csrf)])
        .await;
    assert_eq!(published.status, 303, "{}", published.body);
    assert!(mock.wait_for(&token, 1, Duration::from_secs(5)).await);
    let pass = app.checked_pass(&member).await;
    assert_eq!(pass.pass_json["backgroundColor"], "rgb(10, 61, 98)");
    for (file, (w, h)) in [
        ("logo.png", (75, 50)),
        ("logo@2x.png", (150, 100)),
        ("logo@3x.png", (225, 150)),
    ] {
        let img = image::load_from_memory(&pass.files[file]).unwrap();
        assert_eq!((img.width(), img.height()), (w, h), "{file}");
    }
    let progress = console.get(&format!("{DESIGNER}/progress")).await;
    assert_eq!(progress.status, 200);
    assert!(progress.body.contains(r#"id="queued""#));
    let history = console.get(DESIGNER).await;
    assert!(history.body.contains("designer@cafe.example"));
    let audit: i64 = {
        use diesel::prelude::*;
        let mut conn = app.db.connect();
        diesel::sql_query("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'template_%'")
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n
    };
    assert_eq!(audit, 3, "save, image, publish: one line each");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn cashiers_forged_posts_and_bad_values_are_refused_where_they_belong() {
    let app = spawn_app().await;
    let m = app.create_merchant("Designer rules");
    staff(&app, m.id, "cashier@cafe.example", Role::Cashier);
    staff(&app, m.id, "owner@cafe.example", Role::Owner);

    let mut cashier = Console::signed_in(&app, "cashier@cafe.example").await;
    assert_eq!(cashier.get(DESIGNER).await.status, 403);
    assert_eq!(cashier.get("/console/templates").await.status, 403);

    let mut owner = Console::signed_in(&app, "owner@cafe.example").await;
    let page = owner.get(DESIGNER).await;
    assert_eq!(page.status, 200);
    let forged = owner
        .post(DESIGNER, &[("action", "save"), ("name", "Forged")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(owner.get("/console/templates/nope").await.status, 404);

    // A bad colour: saved as typed, sent back with the error described by its control.
    let csrf = page.csrf();
    let bad = owner
        .post(
            DESIGNER,
            &[
                ("csrf", &csrf),
                ("action", "save"),
                ("name", "Card"),
                ("description", "A card"),
                ("organization_name", "Café"),
                ("colors.background", "not a colour"),
                ("colors.background.was", "#3b2418"),
                ("colors.background.picker", "#3b2418"),
                ("colors.foreground", "#ffffff"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body
            .contains(r#"id="err-c-colors-background" data-for="c-colors-background""#),
        "{}",
        bad.body
    );
    assert!(bad
        .body
        .contains(r#"id="c-colors-background" name="colors.background" value="not a colour""#));
    assert!(bad
        .body
        .contains(r#"aria-describedby="err-c-colors-background""#));
}

/// The designer's form fields for `doc`, as its page would post them (the inverse of the
/// console's `document_from`).
fn form_of(doc: &serde_json::Value) -> Vec<(String, String)> {
    let text = |p: &str| {
        doc.pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut form: Vec<(String, String)> = Vec::new();
    for key in ["name", "description", "organization_name", "logo_text"] {
        form.push((key.into(), text(&format!("/{key}"))));
    }
    for c in ["background", "foreground", "label"] {
        let value = text(&format!("/colors/{c}"));
        form.push((format!("colors.{c}"), value.clone()));
        form.push((format!("colors.{c}.was"), value));
    }
    for group in ["header", "primary", "secondary", "auxiliary", "back"] {
        let fields = doc["fields"][group].as_array().cloned().unwrap_or_default();
        for (i, f) in fields.iter().enumerate() {
            for p in ["key", "label", "value", "change_message", "text_alignment"] {
                let v = f[p].as_str().unwrap_or("").to_string();
                form.push((format!("f.{group}.{i}.{p}"), v));
            }
        }
    }
    for p in ["format", "message", "alt_text"] {
        form.push((format!("barcode.{p}"), text(&format!("/barcode/{p}"))));
    }
    let locs = doc["localizations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let langs: Vec<&String> = locs.keys().collect();
    for (j, lang) in langs.iter().enumerate() {
        form.push((format!("lang.{j}"), lang.to_string()));
    }
    let mut keys: Vec<&String> = locs
        .values()
        .flat_map(|m| m.as_object().unwrap().keys())
        .collect();
    keys.sort();
    keys.dedup();
    for (i, key) in keys.iter().enumerate() {
        form.push((format!("lk.{i}"), key.to_string()));
        for lang in &langs {
            let v = locs[*lang][key.as_str()].as_str().unwrap_or("").to_string();
            form.push((format!("l.{i}.{lang}"), v));
        }
    }
    form
}

fn set(form: &mut [(String, String)], name: &str, value: &str) {
    form.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.into();
}

/// The drawn preview of a designer page (not the form's translation table).
fn preview_part(body: &str) -> &str {
    let start = body.find(r#"class="pf-preview""#).expect("a preview");
    let end = body[start..].find(r#"class="designer-form""#).unwrap() + start;
    &body[start..end]
}

#[tokio::test]
async fn a_russian_speaking_designer_reads_the_problems_and_the_preview_in_russian() {
    let app = spawn_app().await;
    let m = app.create_merchant("Кофейня");
    staff(&app, m.id, "designer@cafe.example", Role::Designer);
    let mut console = Console::signed_in(&app, "designer@cafe.example").await;
    let csrf = console.get("/console/account").await.csrf();
    console
        .post(
            "/console/account/language",
            &[("language", "ru"), ("csrf", &csrf)],
        )
        .await;
    let page = console.get(DESIGNER).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"<html lang="ru">"#));
    // The template's default language first: English labels on the cards.
    assert!(page
        .body
        .contains(r#"id="preview-lang" name="preview_lang" form="designer""#));
    assert!(preview_part(&page.body).contains(">Points<"));
    let csrf = page.csrf();
    let doc = draft(&app, &m.admin_key).await["template"].clone();

    // "Refresh preview" without a script, with Russian picked: both wallets in Russian.
    let mut form = form_of(&doc);
    form.push(("csrf".into(), csrf.clone()));
    form.push(("action".into(), "refresh".into()));
    form.push(("preview_lang".into(), "ru".into()));
    let as_refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refreshed = console.post(DESIGNER, &as_refs).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert!(refreshed.body.contains(r#"id="refreshed""#));
    let shown = preview_part(&refreshed.body);
    assert!(shown.contains(r#"lang="ru""#), "{shown}");
    for ru in ["Баллы", "Уровень", "Номер карты", "Условия программы"]
    {
        assert!(
            shown.contains(ru),
            "{ru} not in the Russian preview: {shown}"
        );
    }
    let google = shown.split(r#"class="pf-google""#).nth(1).unwrap();
    assert!(
        google.contains("Условия программы"),
        "Google's translatedValues"
    );
    assert!(refreshed
        .body
        .contains(r#"<option value="ru" selected>ru</option>"#));

    // A value too long: the reason next to its control, in Russian, with its numbers.
    set(&mut form, "f.primary.0.value", &"x".repeat(201));
    let as_refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let bad = console.post(DESIGNER, &as_refs).await;
    assert_eq!(bad.status, 200, "{}", bad.body);
    let start = bad
        .body
        .find(r#"id="err-c-fields-primary-0-value""#)
        .expect("the problem next to its control");
    let note = &bad.body[start..start + bad.body[start..].find("</p>").unwrap()];
    assert!(
        note.contains("слишком длинный текст: символов 201, можно не больше 200"),
        "{note}"
    );
    assert!(bad
        .body
        .contains(r#"aria-describedby="err-c-fields-primary-0-value""#));

    // The API keeps its English for the same draft, and draws the language it is asked.
    let mut typed = doc.clone();
    typed["fields"]["primary"][0]["value"] = serde_json::json!("x".repeat(201));
    let path = "/api/v1/templates/loyalty-default/preview";
    let answer = TestApp::expect_json(
        app.post_json(path, &m.admin_key, &serde_json::json!({"template": typed}))
            .await,
        200,
    )
    .await;
    assert_eq!(
        answer["problems"][0]["detail"],
        "text too long: 201 characters, at most 200"
    );
    let answer = TestApp::expect_json(
        app.post_json(
            path,
            &m.admin_key,
            &serde_json::json!({"template": doc, "language": "ru"}),
        )
        .await,
        200,
    )
    .await;
    assert!(answer["html"].as_str().unwrap().contains("Баллы"));
}

/// The version numbers a designer page lists in its history, in order.
fn listed_versions(body: &str) -> Vec<i64> {
    body.split(r#"tr data-version=""#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The history's "Next page" link of a designer page, if any.
fn history_next(body: &str) -> Option<String> {
    let pager = &body[body.find(r#"id="history-pager""#)?..];
    let pager = &pager[..pager.find("</nav>").unwrap()];
    let at = pager.find(r#"class="next-page""#)?;
    let href = &pager[..at];
    let href = &href[href.rfind(r#"href=""#).unwrap() + 6..];
    Some(href[..href.find('"').unwrap()].to_string())
}

#[tokio::test]
async fn the_version_history_pages_by_cursor_in_the_console_and_the_api() {
    let app = spawn_app().await;
    let m = app.create_merchant("Many versions");
    staff(&app, m.id, "designer@many.example", Role::Designer);
    // The example is version 1; 30 publishes make 31 versions, more than a page of 25.
    for i in 0..30 {
        app.recolor_template(&m.admin_key, "loyalty-default", &format!("#0000{i:02x}"))
            .await;
    }
    let all: Vec<i64> = (1..=31).rev().collect();

    let mut console = Console::signed_in(&app, "designer@many.example").await;
    let mut seen = Vec::new();
    let mut path = DESIGNER.to_string();
    let mut pages = 0;
    loop {
        let page = console.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let listed = listed_versions(&page.body);
        assert!(listed.len() <= 25, "{path}: {listed:?}");
        pages += 1;
        if pages > 1 {
            assert!(
                page.body.contains(&format!(
                    r#"href="{DESIGNER}#history-title" class="first-page""#
                )),
                "a later page links back to the first"
            );
        }
        seen.extend(listed);
        match history_next(&page.body) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, all, "each version once, newest first");
    let first = console.get(DESIGNER).await;
    assert!(!first.body.contains(r#"class="first-page""#));
    assert_eq!(
        console
            .get(&format!("{DESIGNER}?before=nonsense"))
            .await
            .status,
        404
    );

    // The API, by its cursor, with the default page and with a small one.
    for limit in ["", "limit=7&"] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/api/v1/templates/loyalty-default/versions?{limit}{cursor}");
            let page = app.get_json(&path, &m.admin_key).await;
            seen.extend(
                page["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["version"].as_i64().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("cursor={next}"),
                None => break,
            }
        }
        assert_eq!(seen, all, "limit {limit:?}: each version once");
    }
}
