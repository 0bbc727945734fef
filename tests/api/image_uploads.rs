//! Images uploaded at any size into a template's slots: fitted, published, and carried by
//! the passes built from the template; unusable uploads refused with a reason.

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::pass_check::check_pkpass;
use image::{ImageBuffer, Rgb};
use serde_json::Value;

/// A photo-like JPEG: a gradient, so it compresses like one.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x / 12 % 256) as u8, (y / 8 % 256) as u8, 120])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

async fn upload(
    app: &TestApp,
    key: &str,
    template: &str,
    slot: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/templates/{template}/images/{slot}")))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn size_of(png: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap();
    (img.width(), img.height())
}

#[tokio::test]
async fn a_large_jpeg_logo_is_fitted_and_reaches_the_members_pass() {
    let app = spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Big Logo Cafe", "Ann Lee").await;
    let before: Value = app
        .get_json("/api/v1/templates/loyalty-default", &m.admin_key)
        .await;

    let res = upload(
        &app,
        &m.admin_key,
        "loyalty-default",
        "logo",
        "image/jpeg",
        jpeg(3000, 2000),
    )
    .await;
    let answer = TestApp::expect_json(res, 200).await;
    let files: Vec<(String, u64, u64)> = answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["width"].as_u64().unwrap(),
                f["height"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("logo.png", 75, 50),
        ("logo@2x.png", 150, 100),
        ("logo@3x.png", 225, 150),
    ];
    assert_eq!(
        files,
        expected.map(|(f, w, h)| (f.to_string(), w, h)),
        "{answer}"
    );
    assert_eq!(
        answer["template"]["version"],
        before["version"].as_i64().unwrap() + 1
    );
    assert_eq!(answer["kept"]["width"], 3000);
    assert!(answer["preview"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));

    // The member's pass now carries the fitted logo, at every scale.
    let pkpass = app
        .download_pass(member["apple_pass_url"].as_str().unwrap())
        .await;
    let pass = check_pkpass(&pkpass);
    for (file, w, h) in expected {
        assert_eq!(size_of(&pass.files[file]), (w as u32, h as u32), "{file}");
    }
    // The other slots are untouched.
    assert_eq!(size_of(&pass.files["icon@3x.png"]), (87, 87));
}

#[tokio::test]
async fn unusable_uploads_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let m = app.create_merchant("Refusals");
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00;".to_vec();
    let problem = assert_problem(
        upload(
            &app,
            &m.admin_key,
            "loyalty-default",
            "logo",
            "image/png",
            gif,
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["pointer"], "/images/logo", "{problem}");
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("GIF"),
        "{problem}"
    );

    let problem = assert_problem(
        upload(
            &app,
            &m.admin_key,
            "loyalty-default",
            "google_logo",
            "image/jpeg",
            jpeg(200, 200),
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("give at least 330x330"),
        "{problem}"
    );

    let mut cut = jpeg(800, 600);
    cut.truncate(cut.len() / 2);
    assert_problem(
        upload(
            &app,
            &m.admin_key,
            "loyalty-default",
            "strip",
            "image/jpeg",
            cut,
        )
        .await,
        422,
        "validation",
    )
    .await;

    let res = upload(
        &app,
        &m.admin_key,
        "loyalty-default",
        "logo",
        "text/plain",
        jpeg(400, 400),
    )
    .await;
    assert_problem(res, 415, "unsupported-media-type").await;
    let res = upload(
        &app,
        &m.admin_key,
        "loyalty-default",
        "background",
        "image/jpeg",
        jpeg(400, 400),
    )
    .await;
    assert_problem(res, 404, "not-found").await;
    let res = upload(
        &app,
        &m.admin_key,
        "nope",
        "logo",
        "image/jpeg",
        jpeg(400, 400),
    )
    .await;
    assert_problem(res, 404, "not-found").await;
    // A pos key may not change templates.
    let res = upload(
        &app,
        &m.pos_key,
        "loyalty-default",
        "logo",
        "image/jpeg",
        jpeg(400, 400),
    )
    .await;
    assert_eq!(res.status(), 403);
}
