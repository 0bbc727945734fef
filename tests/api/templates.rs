use crate::helpers::{assert_problem, id_of, spawn_app, TestApp};
use crate::pass_check::{check_pkpass, pass_strings};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn example_images(folder: &str) -> BTreeMap<String, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pass-templates")
        .join(folder);
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            name.ends_with(".png").then(|| {
                (
                    name,
                    base64::engine::general_purpose::STANDARD
                        .encode(std::fs::read(e.path()).unwrap()),
                )
            })
        })
        .collect()
}

fn loyalty_document(barcode: &str) -> Value {
    json!({
        "kind": "loyalty",
        "name": "Bakery card",
        "description": "{{program.name}} card of {{member.first_name}}",
        "organization_name": "{{merchant.name}}",
        "logo_text": "{{program.name}}",
        "colors": {"background": "rgb(20, 40, 60)", "foreground": "#ffffff", "label": "#ffcc00"},
        "fields": {
            "header": [{"key": "points", "label": "points", "value": "{{points}}", "change_message": "points_changed"}],
            "primary": [{"key": "name", "label": "member", "value": "{{member.name}}"}],
            "secondary": [{"key": "tier", "label": "tier", "value": "{{tier}}", "change_message": "tier_changed"}],
            "auxiliary": [{"key": "number", "label": "number", "value": "{{card_number}}", "text_alignment": "right"}],
            "back": [{"key": "about", "label": "about", "value": "about_text"}, {"key": "share", "value": "{{referral_url}}"}]
        },
        "barcode": {"format": barcode, "message": "{{card_number}}", "alt_text": "{{card_number}}"},
        "localizations": {
            "en": {"points": "Points", "points_changed": "You have %@ points", "member": "Member", "tier": "Tier",
                   "tier_changed": "Tier: %@", "number": "Card", "about": "About", "about_text": "Fresh bread every morning."},
            "ru": {"points": "Баллы", "points_changed": "У вас %@ баллов", "member": "Участник", "tier": "Уровень",
                   "tier_changed": "Уровень: %@", "number": "Карта", "about": "О нас", "about_text": "Свежий хлеб каждое утро."},
            "de": {"points": "Punkte", "points_changed": "Sie haben %@ Punkte", "member": "Mitglied", "tier": "Stufe",
                   "tier_changed": "Stufe: %@", "number": "Karte", "about": "Über uns", "about_text": "Jeden Morgen frisches Brot."}
        },
        "locations": [{"latitude": 55.75, "longitude": 37.61, "relevant_text": "{{program.name}} is near"}],
        "expiration_date": "2030-12-31T23:59:00+03:00"
    })
}

#[tokio::test]
async fn merchant_templates_with_localizations_and_every_barcode_format_make_valid_passes() {
    let app = spawn_app().await;
    let m = app.create_merchant("Bakery");
    for (format, apple) in [
        ("qr", "PKBarcodeFormatQR"),
        ("pdf417", "PKBarcodeFormatPDF417"),
        ("aztec", "PKBarcodeFormatAztec"),
        ("code128", "PKBarcodeFormatCode128"),
    ] {
        let id = format!("bakery-{format}");
        let res = app
            .post_json("/api/v1/templates", &m.admin_key, &json!({"id": id, "template": loyalty_document(format), "images": example_images("loyalty-default")}))
            .await;
        let created = TestApp::expect_json(res, 201).await;
        assert_eq!(created["version"], 1);
        let program = app.create_program(&m.admin_key, &id).await;
        let member = app
            .enroll(&m.admin_key, id_of(&program), "Mia Schmidt")
            .await;
        let checked = app.checked_pass(&member).await;
        let pass = &checked.pass_json;
        assert_eq!(pass["barcodes"][0]["format"], apple);
        assert_eq!(pass["barcodes"][0]["message"], member["card_number"]);
        assert_eq!(pass.get("barcode").is_some(), format != "code128");
        assert_eq!(pass["backgroundColor"], "rgb(20, 40, 60)");
        assert_eq!(pass["description"], "Coffee Club card of Mia");
        assert_eq!(pass["expirationDate"], "2030-12-31T23:59:00+03:00");
        assert_eq!(pass["locations"][0]["relevantText"], "Coffee Club is near");
        let de = pass_strings(&checked, "de");
        assert_eq!(
            de.get("Fresh bread every morning.").map(String::as_str),
            Some("Jeden Morgen frisches Brot.")
        );
        assert_eq!(
            de.get("You have %@ points").map(String::as_str),
            Some("Sie haben %@ Punkte")
        );
        assert_eq!(
            pass_strings(&checked, "ru")
                .get("Tier: %@")
                .map(String::as_str),
            Some("Уровень: %@")
        );
    }
}

#[tokio::test]
async fn a_bad_template_gets_one_422_naming_every_problem() {
    let app = spawn_app().await;
    let m = app.create_merchant("Sloppy");
    let mut doc = loyalty_document("ean13");
    doc["colors"]["background"] = json!("#12345");
    doc["fields"]["header"][0]["value"] = json!("{{pointz}}");
    doc["fields"]["secondary"][0]["key"] = json!("name");
    doc["logo_text"] = json!("x".repeat(41));
    doc["localizations"]["de"]["tier_changed"] = json!("Stufe");
    let mut images = example_images("loyalty-default");
    images.remove("icon.png");
    images.insert(
        "logo.png".into(),
        base64::engine::general_purpose::STANDARD.encode(b"not a png"),
    );
    images.insert("strip@2x.png".into(), images["icon@2x.png"].clone()); // 58x58: fits
    images.insert("logo@2x.png".into(), images["strip@3x.png"].clone()); // 1125 wide: too big
    images.insert("background.png".into(), images["icon@2x.png"].clone());
    images.insert("thumbnail.png".into(), "%%%".into());

    let res = app
        .post_json(
            "/api/v1/templates",
            &m.admin_key,
            &json!({"id": "Bad Id", "template": doc, "images": images}),
        )
        .await;
    let body = assert_problem(res, 422, "validation").await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    for expected in [
        "/id",
        "/template/colors/background",
        "/template/fields/header/0/value",
        "/template/fields/secondary/0/key",
        "/template/logo_text",
        "/template/barcode/format",
        "/template/localizations/de/tier_changed",
        "/images/icon.png",
        "/images/logo.png",
        "/images/logo@2x.png",
        "/images/background.png",
        "/images/thumbnail.png",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} missing from {pointers:?}"
        );
    }
    assert!(
        !pointers.contains(&"/images/strip@2x.png"),
        "a fitting strip is fine"
    );

    // Wrong kinds and shapes are problems too, never a 500.
    for template in [
        json!([]),
        json!({"kind": "coupon"}),
        json!({"kind": "loyalty", "fields": {"header": "x"}}),
        json!(null),
    ] {
        let res = app
            .post_json(
                "/api/v1/templates",
                &m.admin_key,
                &json!({"template": template, "images": {}}),
            )
            .await;
        assert_problem(res, 422, "validation").await;
    }
    // A pos key may not design cards.
    let res = app
        .post_json(
            "/api/v1/templates",
            &m.pos_key,
            &json!({"template": loyalty_document("qr"), "images": {}}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
}

#[tokio::test]
async fn changing_a_template_changes_the_passes_built_from_it() {
    let app = spawn_app().await;
    let m = app.create_merchant("Redesign");
    let list = app.get_json("/api/v1/templates", &m.admin_key).await;
    let ids: Vec<&str> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gift-card-default", "loyalty-default"]);

    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Ann").await;
    let url = member["apple_pass_url"].as_str().unwrap();
    let first = app.client.get(url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();

    let current = app
        .get_json("/api/v1/templates/loyalty-default", &m.admin_key)
        .await;
    let mut doc = current["template"].clone();
    doc["colors"]["background"] = json!("#000080");
    let updated = TestApp::expect_json(
        app.put_json(
            "/api/v1/templates/loyalty-default",
            &m.admin_key,
            &json!({"template": doc}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["version"], 2);
    assert_eq!(
        updated["images"].as_array().unwrap().len(),
        11,
        "images kept when not sent (Apple's 9, Google's 2)"
    );

    let res = app.get_url_with(url, &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), 200, "the old ETag no longer matches");
    let checked = check_pkpass(&res.bytes().await.unwrap());
    assert_eq!(checked.pass_json["backgroundColor"], "rgb(0, 0, 128)");
    assert_eq!(checked.pass_json["serialNumber"], member["serial"]);

    // The kind cannot change under cards that use the template.
    doc["kind"] = json!("gift_card");
    let res = app
        .put_json(
            "/api/v1/templates/loyalty-default",
            &m.admin_key,
            &json!({"template": doc}),
        )
        .await;
    assert_problem(res, 422, "validation").await;
    let res = app
        .put_json(
            "/api/v1/templates/nope",
            &m.admin_key,
            &json!({"template": doc}),
        )
        .await;
    assert_problem(res, 404, "not-found").await;
}
