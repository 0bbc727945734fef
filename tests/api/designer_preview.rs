//! The pass designer's preview endpoint: a draft drawn as both wallets show it, or the
//! validator's problems with pointers the page can place.

use crate::helpers::{spawn_app, TestApp};
use serde_json::json;

#[tokio::test]
async fn a_draft_is_previewed_with_the_stored_images_or_answered_with_its_problems() {
    let app = spawn_app().await;
    let m = app.create_merchant("Preview Roasters");
    let path = "/api/v1/templates/loyalty-default/preview";
    let stored = app
        .get_json("/api/v1/templates/loyalty-default", &m.admin_key)
        .await;
    let mut draft = stored["template"].clone();
    draft["colors"]["background"] = json!("#123456");

    let answer = TestApp::expect_json(
        app.post_json(path, &m.admin_key, &json!({"template": draft}))
            .await,
        200,
    )
    .await;
    let html = answer["html"].as_str().unwrap();
    assert!(html.contains("Preview Roasters"), "merchant name");
    assert!(html.contains("Alex Morgan"), "sample member");
    // Stored images by their same-origin path; nothing inline.
    let logo = format!("src=\"/images/{}/loyalty-default/1/logo@2x.png\"", m.id);
    assert!(html.contains(&logo), "{html}");
    assert!(!html.contains("style="));
    assert_eq!(answer["colors"]["--pf-apple-bg"], "#123456");
    assert_eq!(answer["apple_pass"]["backgroundColor"], "rgb(18, 52, 86)");
    assert_eq!(answer["google_class"]["hexBackgroundColor"], "#123456");
    assert_eq!(answer["problems"], json!([]));

    // Nothing was saved.
    let after = app
        .get_json("/api/v1/templates/loyalty-default", &m.admin_key)
        .await;
    assert_eq!(after["version"], stored["version"]);

    draft["colors"]["background"] = json!("teal");
    draft["fields"]["secondary"][0]["value"] = json!("x".repeat(300));
    let answer = TestApp::expect_json(
        app.post_json(path, &m.admin_key, &json!({"template": draft}))
            .await,
        200,
    )
    .await;
    assert_eq!(answer["html"], json!(null));
    let pointers: Vec<&str> = answer["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        [
            "/template/colors/background",
            "/template/fields/secondary/0/value"
        ]
    );

    let res = app
        .post_json(path, &m.pos_key, &json!({"template": draft}))
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .post_json(
            "/api/v1/templates/nope/preview",
            &m.admin_key,
            &json!({"template": draft}),
        )
        .await;
    assert_eq!(res.status(), 404);
}
