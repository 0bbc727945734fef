//! Template images: oversize PNGs are refused from their header, naming the image and the
//! size expected; Google's own images are checked the same way and served publicly.

use crate::helpers::{assert_problem, spawn_app_with};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const APPLE_FILES: [(&str, &str); 9] = [
    ("icon.png", "Apple Wallet expects 29x29"),
    ("icon@2x.png", "Apple Wallet expects 58x58"),
    ("icon@3x.png", "Apple Wallet expects 87x87"),
    ("logo.png", "Apple Wallet expects at most 160x50"),
    ("logo@2x.png", "Apple Wallet expects at most 320x100"),
    ("logo@3x.png", "Apple Wallet expects at most 480x150"),
    ("strip.png", "Apple Wallet expects at most 375x144"),
    ("strip@2x.png", "Apple Wallet expects at most 750x288"),
    ("strip@3x.png", "Apple Wallet expects at most 1125x432"),
];

/// A flat-colour RGBA PNG: tiny on the wire whatever it decodes to. Written row by row.
pub fn flat_png(width: u32, height: u32, depth: png::BitDepth) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(depth);
    encoder.set_compression(png::Compression::Best);
    let bytes_per_pixel = if depth == png::BitDepth::Sixteen {
        8
    } else {
        4
    };
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0x5au8; (width * bytes_per_pixel) as usize];
    for _ in 0..height {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
    drop(writer);
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn example(folder: &str) -> (Value, BTreeMap<String, String>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pass-templates")
        .join(folder);
    let document = serde_json::from_slice(&std::fs::read(dir.join("template.json")).unwrap())
        .expect("template.json");
    let images = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                b64(&std::fs::read(e.path()).unwrap()),
            )
        })
        .collect();
    (document, images)
}

/// Width and height from a PNG's header.
fn size_of(png: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    (reader.info().width, reader.info().height)
}

#[tokio::test]
async fn parallel_oversize_uploads_are_refused_naming_each_image_and_its_size() {
    let app = spawn_app_with(|s| s.limits.image_decodes = 2).await;
    let m = app.create_merchant("Huge Images");
    let (document, _) = example("loyalty-default");
    // 4096x4096 16-bit RGBA: 128 MiB decoded, about 130 kB as a file.
    let huge = b64(&flat_png(4096, 4096, png::BitDepth::Sixteen));
    let images: BTreeMap<&str, &str> = APPLE_FILES
        .iter()
        .map(|(f, _)| (*f, huge.as_str()))
        .collect();
    let body = json!({"template": document, "images": images});
    let uploads: Vec<_> = (0..8)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/templates");
            let (key, body) = (m.admin_key.clone(), body.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for upload in uploads {
        let problem = assert_problem(upload.await.unwrap(), 422, "validation").await;
        let errors = problem["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), APPLE_FILES.len(), "{problem}");
        for (file, expected) in APPLE_FILES {
            let error = errors
                .iter()
                .find(|e| e["pointer"] == format!("/images/{file}"))
                .unwrap_or_else(|| panic!("{file} not named: {problem}"));
            assert_eq!(
                error["detail"],
                format!("{file} is 4096x4096 (16-bit RGBA); {expected}"),
            );
        }
    }
    // Nothing was stored, and the service still answers.
    let list = app
        .client
        .get(app.url("/api/v1/templates"))
        .bearer_auth(&m.admin_key)
        .send()
        .await
        .unwrap();
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["templates"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test]
async fn google_images_are_checked_like_apples_and_served_publicly() {
    let app = spawn_app_with(|_| {}).await;
    let m = app.create_merchant("Google Images");
    let (document, mut images) = example("gift-card-default");
    assert!(images.contains_key("google_logo.png") && images.contains_key("google_hero.png"));

    // The Apple icon as Google's logo, Apple's largest strip (2.6:1) as Google's hero: both
    // refused.
    images.insert("google_logo.png".into(), images["icon@3x.png"].clone());
    let strip = flat_png(1125, 432, png::BitDepth::Eight);
    images.insert("google_hero.png".into(), b64(&strip));
    let res = app
        .post_json(
            "/api/v1/templates",
            &m.admin_key,
            &json!({"id": "gift-2", "template": document, "images": images}),
        )
        .await;
    let problem = assert_problem(res, 422, "validation").await;
    let details: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("google_logo.png is 87x87")
                && d.contains("Google Wallet expects a square of at least 660x660")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("google_hero.png is 1125x432")
                && d.contains("Google Wallet expects 1032x336")),
        "{details:?}"
    );

    // The example's own Google images pass, and are served at the template image URL.
    let (document, images) = example("gift-card-default");
    let created = app
        .post_json(
            "/api/v1/templates",
            &m.admin_key,
            &json!({"id": "gift-2", "template": document, "images": images}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let version = created["version"].as_i64().unwrap();
    for (file, size) in [
        ("google_logo.png", (660, 660)),
        ("google_hero.png", (1032, 336)),
    ] {
        let res = app
            .get(&passfold::urls::template_image_path(
                m.id,
                "gift-2",
                version as i32,
                file,
            ))
            .await;
        assert_eq!(res.status(), 200, "{file}");
        assert_eq!(size_of(&res.bytes().await.unwrap()), size, "{file}");
    }

    // The Apple package carries Apple's images only.
    let card = app
        .post_json(
            "/api/v1/gift-cards",
            &m.admin_key,
            &json!({"template": "gift-2", "currency": "EUR", "initial_balance": 500}),
        )
        .await;
    assert_eq!(card.status(), 201);
    let card: Value = card.json().await.unwrap();
    let pkpass = app
        .download_pass(card["apple_pass_url"].as_str().unwrap())
        .await;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(pkpass)).unwrap();
    let names: Vec<&str> = zip.file_names().collect();
    assert!(
        names.contains(&"icon@3x.png") && names.contains(&"strip@3x.png"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("google_")), "{names:?}");
}
