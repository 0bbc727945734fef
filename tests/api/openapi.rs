//! The OpenAPI document: valid by `openapi-spec-validator`, one id per operation, every
//! error an operation can answer documented as problem+json, and the integer ranges it
//! declares are the ones the service enforces.

use crate::helpers::{assert_problem, spawn_app, TestApp};
use passfold::domain::ranges::{MAX_AMOUNT, MAX_MONTHLY_CAP, MAX_POINTS_CHANGE};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("fetch the document");
    TestApp::expect_json(res, 200).await
}

/// `python3 -m openapi_spec_validator <file>`; the module is installed under target/py
/// (`pip install --target`) when python3 does not have it.
fn run_validator(file: &Path) -> std::process::Output {
    let has_module = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .status()
        .expect("python3 is needed to validate the OpenAPI document")
        .success();
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py");
    if !has_module && !local.join("openapi_spec_validator").exists() {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&local)
            .arg("openapi-spec-validator")
            .status()
            .expect("run pip");
        assert!(installed.success(), "pip install openapi-spec-validator");
    }
    let mut validator = Command::new("python3");
    validator.args(["-m", "openapi_spec_validator"]).arg(file);
    if !has_module {
        validator.env("PYTHONPATH", &local);
    }
    validator.output().expect("run openapi_spec_validator")
}

/// A response object, following a `$ref` into `components/responses`.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/responses/")
                .expect("a response reference");
            &doc["components"]["responses"][name]
        }
        None => response,
    }
}

#[tokio::test]
async fn the_document_validates_and_documents_every_error() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    let dir = tempfile::tempdir().expect("temporary folder");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write the document");
    let out = run_validator(&file);
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            count += 1;
            let label = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{label}: operationId {id:?} is not camelCase"
            );
            assert!(
                ids.insert(id.to_string()),
                "{label}: operationId {id} twice"
            );

            let responses = op["responses"].as_object().expect("responses");
            // Apple's web service and the HTML pages document their own answers.
            let own_rules = path.starts_with("/apple/") || op["tags"][0] == "public pages";
            let mut needed: Vec<&str> = Vec::new();
            let roles: Vec<&str> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["bearer"].as_array())
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let keyed = op["security"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r.get("bearer").is_some()));
            if path.starts_with("/api/v1/") && !path.starts_with("/api/v1/public/") {
                assert!(keyed, "{label} needs a key but says none");
                assert!(
                    roles == ["admin"] || roles == ["pos"],
                    "{label}: role {roles:?}"
                );
            }
            if keyed {
                needed.push("401");
            }
            if roles.contains(&"admin") {
                needed.push("403");
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                needed.push("404");
            }
            if params.iter().any(|p| p["in"] == "query") {
                needed.extend(["400", "422"]);
            }
            if params.iter().any(|p| p["name"] == "Idempotency-Key") {
                needed.extend(["400", "409", "422"]);
            }
            if op.get("requestBody").is_some() {
                needed.extend(["400", "413", "415", "422"]);
            }
            if own_rules {
                needed.clear();
            }
            for status in needed {
                assert!(
                    responses.contains_key(status),
                    "{label} does not document {status}"
                );
            }
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let content = resolve(&doc, response)["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{label} {status}: no content"));
                // The public pages answer people in HTML; everything else is a problem.
                if content.contains_key("text/html") {
                    continue;
                }
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{label} {status}"
                );
            }
        }
    }
    assert!(count >= 40, "only {count} operations");
    for id in [
        "listApiKeys",
        "createProgram",
        "getGiftCard",
        "redeemGiftCard",
        "adjustPoints",
    ] {
        assert!(ids.contains(id), "{id} in {ids:?}");
    }

    // The declared ranges are the enforced ones.
    let schemas = &doc["components"]["schemas"];
    let range = |schema: &str, field: &str| {
        let p = &schemas[schema]["properties"][field];
        (p["minimum"].as_f64(), p["maximum"].as_f64())
    };
    let points = MAX_POINTS_CHANGE as f64;
    let amount = MAX_AMOUNT as f64;
    assert_eq!(
        range("PointsAdjustment", "delta"),
        (Some(-points), Some(points))
    );
    assert_eq!(range("Purchase", "amount"), (Some(1.0), Some(amount)));
    assert_eq!(range("Redeem", "amount"), (Some(1.0), Some(amount)));
    assert_eq!(range("Load", "amount"), (Some(1.0), Some(amount)));
    assert_eq!(range("Adjust", "amount"), (Some(-amount), Some(amount)));
    assert_eq!(
        range("IssueGiftCard", "initial_balance"),
        (Some(0.0), Some(amount))
    );
    assert_eq!(
        range("CreateProgram", "welcome_points"),
        (Some(0.0), Some(points))
    );
    assert_eq!(
        range("ReferralRule", "monthly_cap"),
        (Some(0.0), Some(MAX_MONTHLY_CAP as f64))
    );
    // `errors` is omitted when empty, so it must not be required.
    assert!(!schemas["Problem"]["required"]
        .as_array()
        .expect("required")
        .contains(&json!("errors")));
}

/// The field a 422 names.
async fn refused_at(res: reqwest::Response, pointer: &str) {
    let body = assert_problem(res, 422, "validation").await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(pointers, [pointer], "{body}");
}

#[tokio::test]
async fn integers_outside_their_ranges_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let m = app.create_merchant("Ranges Ltd");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let program_id = program["id"].as_str().expect("program id");
    let member = app.enroll(&m.pos_key, program_id, "Ann").await;
    // Admin key: a pos key is stopped earlier by the program's pos limits (403).
    let points = format!("/api/v1/members/{}/points", member["id"].as_str().unwrap());

    // -2^63 used to overflow `abs()` and reach the database's check constraint.
    for (i, delta) in [
        json!(i64::MIN),
        json!(i64::MAX),
        json!(MAX_POINTS_CHANGE + 1),
        json!(-MAX_POINTS_CHANGE - 1),
        json!(0),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"delta": delta, "reason": "edge"});
        let res = app
            .pos(&points, &m.admin_key, &format!("d{i}"), &body)
            .await;
        refused_at(res, "/delta").await;
    }
    // Beyond 64 bits, or not whole: the body does not fit its type.
    for (i, raw) in [
        "18446744073709551616",
        "1e30",
        "1.5",
        "-9223372036854775809",
    ]
    .into_iter()
    .enumerate()
    {
        let res = app
            .client
            .post(app.url(&points))
            .bearer_auth(&m.admin_key)
            .header("Idempotency-Key", format!("raw{i}"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"delta": {raw}, "reason": "edge"}}"#))
            .send()
            .await
            .expect("request");
        assert_problem(res, 400, "validation").await;
    }
    let res = app
        .pos(
            &points,
            &m.admin_key,
            "ok",
            // A whole number is one whatever its spelling (JSON Schema agrees).
            &json!({"delta": -50.0, "reason": "welcome back"}),
        )
        .await;
    assert_eq!(TestApp::expect_json(res, 200).await["points"], 0);

    let purchases = format!(
        "/api/v1/members/{}/purchases",
        member["id"].as_str().unwrap()
    );
    let res = app
        .pos(
            &purchases,
            &m.admin_key,
            "p1",
            &json!({"amount": MAX_AMOUNT + 1, "currency": "EUR"}),
        )
        .await;
    refused_at(res, "/amount").await;

    let card = app.issue_gift_card(&m.admin_key, "EUR", 1000).await;
    let gan = card["gan"].as_str().expect("gan");
    for (i, (action, body, key)) in [
        (
            "redeem",
            json!({"amount": i64::MAX, "currency": "EUR"}),
            &m.pos_key,
        ),
        (
            "redeem",
            json!({"amount": i64::MIN, "currency": "EUR"}),
            &m.pos_key,
        ),
        (
            "load",
            json!({"amount": MAX_AMOUNT + 1, "currency": "EUR"}),
            &m.pos_key,
        ),
        (
            "refund",
            json!({"activity_id": uuid::Uuid::new_v4(), "amount": 0}),
            &m.pos_key,
        ),
        (
            "adjust",
            json!({"amount": i64::MIN, "currency": "EUR", "reason": "x"}),
            &m.admin_key,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/api/v1/gift-cards/{gan}/{action}");
        let res = app.pos(&path, key, &format!("g{i}"), &body).await;
        refused_at(res, "/amount").await;
    }
    let res = app
        .post_json(
            "/api/v1/gift-cards",
            &m.admin_key,
            &json!({"template": "gift-card-default", "currency": "EUR", "initial_balance": -1}),
        )
        .await;
    refused_at(res, "/initial_balance").await;

    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Edges", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 1, "welcome_points": MAX_POINTS_CHANGE + 1,
            }),
        )
        .await;
    refused_at(res, "/welcome_points").await;
    let res = app
        .post_json(
            "/api/v1/programs",
            &m.admin_key,
            &json!({
                "name": "Edges", "template": "loyalty-default", "currency": "EUR",
                "points_per_unit": 1,
                "referral": {"referrer_points": 10, "referee_points": 10, "trigger": "join",
                             "monthly_cap": MAX_MONTHLY_CAP + 1},
            }),
        )
        .await;
    refused_at(res, "/referral/monthly_cap").await;
}

/// A component by its `$ref`.
fn component<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let name = reference
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .unwrap_or_else(|| panic!("a component reference: {reference}"));
    &doc["components"]["schemas"][name]
}

/// Where schemathesis found real answers outside the document: a program (a flattened part
/// forbade the other parts' fields), the analytics report (`Interval` named two types) and
/// the preview of a draft with problems (`null` where only an object was allowed).
#[tokio::test]
async fn answers_fit_the_schemas_the_document_gives_them() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];

    // Every part of an allOf describes the same object: none may refuse the others' fields.
    for (name, schema) in schemas.as_object().expect("schemas") {
        for part in schema["allOf"].as_array().into_iter().flatten() {
            let part = match part.get("$ref") {
                Some(r) => component(&doc, r),
                None => part,
            };
            assert_ne!(
                part["additionalProperties"],
                json!(false),
                "{name}: an allOf part refuses the other parts' fields: {part}"
            );
        }
    }

    // A disabled endpoint's resend and replay answer 409 (and so does an endpoint too many).
    for (path, method) in [
        ("/api/v1/webhooks/{id}/messages/{msg_id}/resend", "post"),
        ("/api/v1/webhooks/{id}/replay", "post"),
        ("/api/v1/webhooks", "post"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(responses.get("409").is_some(), "{path}: 409 undocumented");
    }

    // A pos key past the program's pos limits, or dating a purchase long ago, gets 403.
    for path in [
        "/api/v1/members/{id}/purchases",
        "/api/v1/members/{id}/points",
        "/api/v1/programs/{id}/receipts",
    ] {
        let responses = &doc["paths"][path]["post"]["responses"];
        assert!(responses.get("403").is_some(), "{path}: 403 undocumented");
    }
    // The survey form refuses a NUL as a problem before any page.
    let refused = &doc["paths"]["/s/{token}"]["post"]["responses"]["422"]["content"];
    assert!(
        refused.get("application/problem+json").is_some(),
        "{refused}"
    );

    let m = app.create_merchant("Schema Fit");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let pid = program["id"].as_str().expect("program id");
    let view = &schemas["ProgramView"];
    let parts = view["allOf"].as_array().expect("ProgramView is an allOf");
    let documented: BTreeSet<&str> = parts
        .iter()
        .map(|p| p.get("$ref").map_or(p, |r| component(&doc, r)))
        .flat_map(|p| p["properties"].as_object().into_iter().flatten())
        .map(|(k, _)| k.as_str())
        .collect();
    for field in program.as_object().expect("a program").keys() {
        assert!(documented.contains(field.as_str()), "{field} undocumented");
    }

    let report = app
        .get_json(
            &format!("/api/v1/programs/{pid}/analytics?interval=month"),
            &m.admin_key,
        )
        .await;
    assert_eq!(report["interval"], "month");
    let interval = component(&doc, &schemas["Report"]["properties"]["interval"]["$ref"]);
    assert!(
        interval["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("month"))),
        "Report.interval: {interval}"
    );
    let ci = &schemas["Results"]["properties"]["conversion_difference_ci95"]["oneOf"][1]["$ref"];
    assert_eq!(component(&doc, ci)["required"], json!(["low", "high"]));

    let res = app
        .post_json(
            "/api/v1/templates/loyalty-default/preview",
            &m.admin_key,
            &json!({"template": [null, null]}),
        )
        .await;
    let preview = TestApp::expect_json(res, 200).await;
    assert!(!preview["problems"].as_array().expect("problems").is_empty());
    for field in ["html", "apple_pass", "google_class", "google_object"] {
        assert!(preview[field].is_null(), "{field}: {preview}");
        let types = &schemas["PreviewView"]["properties"][field]["type"];
        assert!(
            types.as_array().is_some_and(|t| t.contains(&json!("null"))),
            "PreviewView.{field} does not allow null: {types}"
        );
    }
}
