//! Every pass the service hands out is checked by `pass_check` (zip layout, manifest
//! hashes, signature against the example root, pass.json keys and types).

use crate::helpers::{assert_problem, id_of, spawn_app, TestApp};
use crate::pass_check::{check_pkpass, pass_strings};
use serde_json::{json, Value};

fn field<'a>(pass: &'a Value, group: &str, key: &str) -> &'a Value {
    pass["storeCard"][group]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["key"] == key))
        .unwrap_or_else(|| panic!("no field {key} in {group}: {pass}"))
}

#[tokio::test]
async fn loyalty_cards_from_the_example_template_are_valid_signed_passes() {
    let app = spawn_app().await;
    let m = app.create_merchant("Кофейня Ромашка");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let member = app
        .enroll(&m.pos_key, id_of(&program), "Анна Петрова")
        .await;
    assert_eq!(member["points"], 50);
    assert_eq!(member["tier"], "Bronze");
    assert!(member["card_number"].as_str().unwrap().len() == 16);

    let bytes = app
        .download_pass(member["apple_pass_url"].as_str().unwrap())
        .await;
    let checked = check_pkpass(&bytes);
    let pass = &checked.pass_json;
    assert_eq!(pass["passTypeIdentifier"], "pass.dev.passfold.example");
    assert_eq!(pass["teamIdentifier"], "PASSFOLD01");
    assert_eq!(pass["serialNumber"], member["serial"]);
    assert_eq!(pass["organizationName"], "Кофейня Ромашка");
    assert_eq!(pass["webServiceURL"], format!("{}/apple", app.address));
    assert!(pass["authenticationToken"].as_str().unwrap().len() >= 16);
    assert_eq!(pass["barcodes"][0]["message"], member["card_number"]);
    assert_eq!(pass["barcodes"][0]["format"], "PKBarcodeFormatQR");
    assert_eq!(pass["barcode"]["message"], member["card_number"]);
    assert_eq!(field(pass, "headerFields", "points")["value"], 50);
    assert_eq!(
        field(pass, "headerFields", "points")["changeMessage"],
        "Points: %@"
    );
    assert_eq!(field(pass, "primaryFields", "tier")["value"], "Bronze");
    assert_eq!(
        field(pass, "secondaryFields", "member")["value"],
        "Анна Петрова"
    );
    assert_eq!(
        field(pass, "backFields", "referral")["value"],
        member["referral_url"]
    );
    assert!(pass.get("nfc").is_none());
    assert!(checked.signer_subject.contains("pass.dev.passfold.example"));
    for image in [
        "icon.png",
        "icon@2x.png",
        "icon@3x.png",
        "logo.png",
        "strip@3x.png",
    ] {
        assert!(checked.files.contains_key(image), "{image}");
    }

    // Russian strings translate what the pass shows in English.
    let ru = pass_strings(&checked, "ru");
    assert_eq!(ru.get("Points").map(String::as_str), Some("Баллы"));
    assert_eq!(ru.get("Points: %@").map(String::as_str), Some("Баллы: %@"));

    // The till finds the member by the scanned number.
    let found = app
        .get_json(
            &format!(
                "/api/v1/members?card_number={}",
                member["card_number"].as_str().unwrap()
            ),
            &m.pos_key,
        )
        .await;
    assert_eq!(found["members"][0]["id"], member["id"]);
}

#[tokio::test]
async fn gift_cards_show_their_balance_as_money_and_unchanged_passes_answer_304() {
    let app = spawn_app().await;
    let m = app.create_merchant("Gift Shop");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 1250).await;
    assert_eq!(card["state"], "active");
    assert_eq!(card["balance"], 1250);
    assert_eq!(card["pin"].as_str().unwrap().len(), 8);
    let gan = card["gan"].as_str().unwrap();

    let url = card["apple_pass_url"].as_str().unwrap();
    let res = crate::apple_web_service::settled_fetch(app.client.get(url)).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = res.headers()["last-modified"].to_str().unwrap().to_string();
    let checked = check_pkpass(&res.bytes().await.unwrap());
    let balance = field(&checked.pass_json, "headerFields", "balance");
    assert_eq!(balance["value"], 12.5);
    assert_eq!(balance["currencyCode"], "EUR");
    assert_eq!(
        checked.pass_json["barcodes"][0]["format"],
        "PKBarcodeFormatCode128"
    );
    assert_eq!(checked.pass_json["barcodes"][0]["message"], gan);
    // Code 128 has no legacy form.
    assert!(checked.pass_json.get("barcode").is_none());

    let res = app.get_url_with(url, &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), 304);
    let res = app
        .get_url_with(url, &[("if-modified-since", &last_modified)])
        .await;
    assert_eq!(res.status(), 304);
    let res = app
        .get_url_with(
            url,
            &[("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        )
        .await;
    assert_eq!(res.status(), 200);

    // The till reads the balance; a GAN with a bad check digit is refused before lookup.
    let read = app
        .get_json(&format!("/api/v1/gift-cards/{gan}"), &m.pos_key)
        .await;
    assert_eq!(read["balance"], 1250);
    assert!(read.get("pin").is_none());
    let mut bad = gan.as_bytes().to_vec();
    bad[15] = if bad[15] == b'9' { b'0' } else { bad[15] + 1 };
    let res = app
        .get_with_key(
            &format!("/api/v1/gift-cards/{}", String::from_utf8(bad).unwrap()),
            &m.pos_key,
        )
        .await;
    assert_problem(res, 422, "validation").await;

    // Wrong or malformed links are 404.
    for path in ["/passes/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/passes/short"] {
        let res = app.get(path).await;
        assert_problem(res, 404, "not-found").await;
    }
    // A NUL (or bytes that are no UTF-8) in the path is refused before any lookup.
    let res = app.get("/passes/%00%ff").await;
    assert_problem(res, 400, "validation").await;
}

#[tokio::test]
async fn merchants_never_see_each_others_cards_programs_or_templates() {
    let app = spawn_app().await;
    let a = app.create_merchant("A");
    let b = app.create_merchant("B");
    let program = app.create_program(&a.admin_key, "loyalty-default").await;
    let member = app.enroll(&a.pos_key, id_of(&program), "Ann").await;
    let card = app.issue_gift_card(&a.admin_key, "EUR", 500).await;
    for path in [
        format!("/api/v1/programs/{}", program["id"].as_str().unwrap()),
        format!("/api/v1/members/{}", member["id"].as_str().unwrap()),
        format!("/api/v1/gift-cards/{}", card["gan"].as_str().unwrap()),
    ] {
        assert_problem(
            app.get_with_key(&path, &b.admin_key).await,
            404,
            "not-found",
        )
        .await;
    }
    let res = app
        .post_json(
            &format!(
                "/api/v1/programs/{}/members",
                program["id"].as_str().unwrap()
            ),
            &b.pos_key,
            &json!({"name": "Eve"}),
        )
        .await;
    assert_problem(res, 404, "not-found").await;
    let found = app
        .get_json(
            &format!(
                "/api/v1/members?card_number={}",
                member["card_number"].as_str().unwrap()
            ),
            &b.pos_key,
        )
        .await;
    assert_eq!(found["members"], json!([]));
}

/// Another process changing a pass (here: SQL straight into the database, as the worker or
/// a second server would) must reach phones fetching it from this process's cache.
#[tokio::test]
async fn cached_passes_follow_changes_made_by_other_processes() {
    use diesel::RunQueryDsl;
    let app = spawn_app().await;
    let m = app.create_merchant("Cache");
    let card = app.issue_gift_card(&m.admin_key, "EUR", 1000).await;
    let url = card["apple_pass_url"].as_str().unwrap();
    let balance_of = |bytes: &[u8]| {
        field(&check_pkpass(bytes).pass_json, "headerFields", "balance")["value"].clone()
    };
    // Give the listener a moment to connect and the pass's Last-Modified time to settle
    // (only settled passes are cached), then fill the cache and hit it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(balance_of(&app.download_pass(url).await), 10.0);
    assert_eq!(balance_of(&app.download_pass(url).await), 10.0);
    let metrics = app.text_of("/metrics").await;
    assert!(
        metrics.contains(r#"passfold_pass_downloads_total{answer="cache"} 1"#),
        "{metrics}"
    );

    // Another process's till: the balance, the activity, the pass's new version and its
    // outbox row in one transaction, the way every change is written.
    let mut conn = app.db.connect();
    diesel::sql_query(format!(
        "WITH c AS (UPDATE gift_cards SET balance = 400 WHERE gan = '{}' RETURNING id, merchant_id)
         SELECT passfold_record_activity(gen_random_uuid(), merchant_id, id, 'adjust', -600, 400, NULL, 'elsewhere', ARRAY['apple']) FROM c",
        card["gan"].as_str().unwrap()
    ))
    .execute(&mut conn)
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        if balance_of(&app.download_pass(url).await) == 4.0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "a stale pass was served for a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The example loyalty template's document and images, as an API request carries them.
fn example_template() -> (Value, serde_json::Map<String, Value>) {
    use base64::Engine;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pass-templates/loyalty-default");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("template.json")).unwrap()).unwrap();
    let mut images = serde_json::Map::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".png") {
            images.insert(
                name,
                json!(
                    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap())
                ),
            );
        }
    }
    (doc, images)
}

#[tokio::test]
async fn template_dates_reach_pass_json_and_the_message_key_is_reserved() {
    let app = spawn_app().await;
    let m = app.create_merchant("Dates");
    let (mut doc, images) = example_template();
    doc["relevant_date"] = json!("2030-06-01T09:00:00+02:00");
    doc["expiration_date"] = json!("2030-12-31T23:59:00+02:00");
    let res = app
        .post_json(
            "/api/v1/templates",
            &m.admin_key,
            &json!({"id": "dated", "template": doc, "images": images}),
        )
        .await;
    TestApp::expect_json(res, 201).await;
    let program = app.create_program(&m.admin_key, "dated").await;
    let member = app.enroll(&m.pos_key, id_of(&program), "Di Eve").await;
    let pass = app.pass_json_of(&member).await;
    assert_eq!(pass["relevantDate"], "2030-06-01T09:00:00+02:00");
    assert_eq!(
        pass["relevantDates"],
        json!([{"date": "2030-06-01T09:00:00+02:00", "relevantDate": "2030-06-01T09:00:00+02:00"}])
    );
    assert_eq!(pass["expirationDate"], "2030-12-31T23:59:00+02:00");

    // Without dates, neither key is written.
    let plain = check_pkpass(
        &app.download_pass(
            app.enroll(
                &m.pos_key,
                app.create_program(&m.admin_key, "loyalty-default").await["id"]
                    .as_str()
                    .unwrap(),
                "Fay Gee",
            )
            .await["apple_pass_url"]
                .as_str()
                .unwrap(),
        )
        .await,
    )
    .pass_json;
    assert!(plain.get("relevantDates").is_none() && plain.get("expirationDate").is_none());

    // The service's own message field key is refused, naming the field.
    let (mut doc, images) = example_template();
    doc["fields"]["back"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "merchant_message", "label": "Note", "value": "hello"}));
    let at = doc["fields"]["back"].as_array().unwrap().len() - 1;
    let res = app
        .post_json(
            "/api/v1/templates",
            &m.admin_key,
            &json!({"id": "clash", "template": doc, "images": images}),
        )
        .await;
    let body = assert_problem(res, 422, "validation").await;
    let problem = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pointer"] == format!("/template/fields/back/{at}/key"))
        .unwrap_or_else(|| panic!("no problem names the field: {body}"));
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("merchant_message"));
}
