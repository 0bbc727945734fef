use crate::helpers::{assert_problem, spawn_app};
use serde_json::{json, Value};

#[tokio::test]
async fn admin_keys_reach_admin_endpoints_and_pos_keys_do_not() {
    let app = spawn_app().await;
    let m = app.create_merchant("Кофейня Ромашка");

    let res = app.get_with_key("/api/v1/api-keys", &m.admin_key).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let keys = body["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    // Listings never carry secrets.
    assert!(!body.to_string().contains(&m.admin_key[12..]));

    let res = app.get_with_key("/api/v1/api-keys", &m.pos_key).await;
    assert_problem(res, 403, "forbidden").await;

    let res = app.get("/api/v1/api-keys").await;
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_problem(res, 401, "unauthorized").await;

    for wrong in [
        "pf_admin_0000000000000000000000000000000x",
        "garbage",
        "pf_admin_",
    ] {
        let res = app.get_with_key("/api/v1/api-keys", wrong).await;
        assert_problem(res, 401, "unauthorized").await;
    }
    let res = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .header("authorization", format!("Basic {}", m.admin_key))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

#[tokio::test]
async fn issued_keys_work_until_revoked_and_the_last_admin_key_stays() {
    let app = spawn_app().await;
    let m = app.create_merchant("Till Shop");

    let res = app
        .post_json(
            "/api/v1/api-keys",
            &m.admin_key,
            &json!({"scope": "pos", "label": "till 2"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let new_key = created["key"].as_str().unwrap().to_string();
    assert!(new_key.starts_with("pf_pos_"));
    assert_eq!(created["label"], "till 2");

    // A pos key authenticates (403 on an admin endpoint, not 401).
    let res = app.get_with_key("/api/v1/api-keys", &new_key).await;
    assert_problem(res, 403, "forbidden").await;

    let id = created["id"].as_str().unwrap();
    let res = app
        .delete_with_key(&format!("/api/v1/api-keys/{id}"), &m.admin_key)
        .await;
    assert_eq!(res.status(), 200);
    let res = app.get_with_key("/api/v1/api-keys", &new_key).await;
    assert_problem(res, 401, "unauthorized").await;

    // The only admin key cannot be revoked.
    let list = app.get_json("/api/v1/api-keys", &m.admin_key).await;
    let admin_id = list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scope"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .delete_with_key(&format!("/api/v1/api-keys/{admin_id}"), &m.admin_key)
        .await;
    assert_problem(res, 409, "conflict").await;

    // Unknown scopes are a validation problem.
    let res = app
        .post_json("/api/v1/api-keys", &m.admin_key, &json!({"scope": "root"}))
        .await;
    assert!(res.status().is_client_error());
    assert_problem(res, 400, "validation").await;
}

#[tokio::test]
async fn one_merchant_never_sees_another_merchants_keys() {
    let app = spawn_app().await;
    let a = app.create_merchant("A");
    let b = app.create_merchant("B");

    let b_keys = app.get_json("/api/v1/api-keys", &b.admin_key).await;
    let a_keys = app.get_json("/api/v1/api-keys", &a.admin_key).await;
    let b_ids: Vec<&str> = b_keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    for k in a_keys["api_keys"].as_array().unwrap() {
        assert!(!b_ids.contains(&k["id"].as_str().unwrap()));
    }
    // A revoking B's key: not found, and B's key still works.
    for id in &b_ids {
        let res = app
            .delete_with_key(&format!("/api/v1/api-keys/{id}"), &a.admin_key)
            .await;
        assert_problem(res, 404, "not-found").await;
    }
    let res = app.get_with_key("/api/v1/api-keys", &b.admin_key).await;
    assert_eq!(res.status(), 200);
}
