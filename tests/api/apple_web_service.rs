//! Apple's PassKit web service and APNs pushes, as an iPhone and Apple would use them.

use crate::apns_mock::{ApnsMock, Behaviour};
use crate::helpers::{
    apple_auth, id_of, latest_pass_path, registration_path, spawn_app_with, spawn_app_with_apns,
};
use crate::pass_check::check_pkpass;
use serde_json::{json, Value};
use std::time::Duration;

/// Sends `request` until the answer carries `Last-Modified` (at most ~1 s after the pass's
/// last change, see routes::passes::settled); each answer is a 200 with a valid pass.
pub async fn settled_fetch(request: reqwest::RequestBuilder) -> reqwest::Response {
    let started = std::time::Instant::now();
    loop {
        let res = request.try_clone().unwrap().send().await.unwrap();
        assert_eq!(res.status(), 200);
        if res.headers().contains_key("last-modified") {
            return res;
        }
        check_pkpass(&res.bytes().await.unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no Last-Modified within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const T1: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const T2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

#[tokio::test]
async fn an_iphone_registers_gets_pushed_and_fetches_the_new_pass() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let (m, _, member) = app.merchant_with_member("Push Café", "Ann Lee").await;

    // The phone downloads the pass and reads what it needs from pass.json.
    let first = app.checked_pass(&member).await;
    let pass = &first.pass_json;
    assert_eq!(pass["webServiceURL"], format!("{}/apple", app.address));
    let (pass_type, serial) = (
        pass["passTypeIdentifier"].as_str().unwrap(),
        pass["serialNumber"].as_str().unwrap(),
    );
    let registration = |device: &str| app.url(&registration_path(pass, device));
    let auth = apple_auth(pass);

    // Register: 401 with a wrong token, 201, then 200.
    let mut forged = pass.clone();
    forged["authenticationToken"] = json!("wrongwrongwrongwrong");
    assert_eq!(app.register_device(&forged, "device1", T1).await, 401);
    assert_eq!(app.register_device(pass, "device1", T1).await, 201);
    assert_eq!(app.register_device(pass, "device1", T1).await, 200);
    // A second device whose token APNs no longer knows.
    mock.behave(T2, Behaviour::Unregistered);
    assert_eq!(app.register_device(pass, "device2", T2).await, 201);

    // Changed serials: 200 with a tag, 204 when nothing changed since.
    let serials = |device: &str, since: Option<&str>| {
        let mut url = app.url(&format!(
            "/apple/v1/devices/{device}/registrations/{pass_type}"
        ));
        if let Some(tag) = since {
            url.push_str(&format!("?passesUpdatedSince={tag}"));
        }
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let res = serials("device1", None).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["serialNumbers"], json!([serial]));
    let tag = body["lastUpdated"].as_str().unwrap().to_string();
    assert_eq!(serials("device1", Some(&tag)).await.status(), 204);

    // Latest pass: 401 with a wrong token, 200 with Last-Modified, 304 for the same time.
    let latest = app.latest_pass_url(pass);
    let res = app
        .get_url_with(
            &latest,
            &[("authorization", "ApplePass nope-nope-nope-nope")],
        )
        .await;
    assert_eq!(res.status(), 401);
    // Last-Modified comes once the second of the pass's last change is over.
    let res = settled_fetch(app.client.get(&latest).header("authorization", &auth)).await;
    let last_modified = res.headers()["last-modified"].to_str().unwrap().to_string();
    check_pkpass(&res.bytes().await.unwrap());
    let res = app
        .get_url_with(
            &latest,
            &[
                ("authorization", &auth),
                ("if-modified-since", &last_modified),
            ],
        )
        .await;
    assert_eq!(res.status(), 304);

    // A purchase at the till: a push to the device within 2 s, topic = pass type id.
    let purchase = app
        .purchase(&m.pos_key, id_of(&member), "buy-1", 2500)
        .await;
    assert_eq!(purchase.status(), 200);
    assert!(
        mock.wait_for(T1, 1, Duration::from_secs(2)).await,
        "no push reached the device within 2 s"
    );
    let push = mock
        .accepted()
        .await
        .into_iter()
        .find(|p| p.token == T1)
        .unwrap();
    assert_eq!(push.topic, pass_type);
    assert_eq!(
        mock.client_uids().await.first().map(String::as_str),
        Some(pass_type)
    );

    // The serial list since the old tag names the pass; the new pass differs, same serial.
    // The new tag may be held back while a worker's transaction (begun before the change's
    // commit) still runs: the phone asks again and then gets past its old tag.
    let started = std::time::Instant::now();
    loop {
        let res = serials("device1", Some(&tag)).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["serialNumbers"], json!([serial]));
        let last: i64 = body["lastUpdated"].as_str().unwrap().parse().unwrap();
        if last > tag.parse::<i64>().unwrap() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the tag never moved"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = app
        .get_url_with(
            &latest,
            &[
                ("authorization", &auth),
                ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ],
        )
        .await;
    let second = check_pkpass(&res.bytes().await.unwrap());
    assert_eq!(second.pass_json["serialNumber"], serial);
    assert_eq!(
        second.pass_json["storeCard"]["headerFields"][0]["value"],
        300
    );
    assert_eq!(
        second.pass_json["storeCard"]["headerFields"][0]["changeMessage"],
        "Points: %@"
    );

    // The 410 device was unregistered.
    let started = std::time::Instant::now();
    while serials("device2", None).await.status() != 204 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the unregistered device still holds the pass"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Log and unregister.
    let res = app
        .client
        .post(app.url("/apple/v1/log"))
        .json(&json!({"logs": ["[2026-11-23] something went wrong"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .delete(registration("device1"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(serials("device1", None).await.status(), 204);

    // Bad input is 4xx, never 500.
    for (method, path) in [
        (
            "GET",
            format!("/apple/v1/devices/device1/registrations/{pass_type}?passesUpdatedSince=abc"),
        ),
        (
            "GET",
            "/apple/v1/devices/device1/registrations/pass.other.type".to_string(),
        ),
        (
            "POST",
            format!("/apple/v1/devices/device1/registrations/{pass_type}/nope"),
        ),
    ] {
        let req = if method == "GET" {
            app.client.get(app.url(&path))
        } else {
            app.client
                .post(app.url(&path))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "zz"}))
        };
        let status = req.send().await.unwrap().status();
        assert!(status.is_client_error(), "{method} {path}: {status}");
    }
}

#[tokio::test]
async fn a_template_change_pushes_every_pass_built_from_it() {
    let mock = ApnsMock::start().await;
    let app = spawn_app_with_apns(&mock).await;
    let m = app.create_merchant("Redesign");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        let member = app
            .enroll(&m.pos_key, id_of(&program), &format!("Member {i}"))
            .await;
        let pass = app.pass_json_of(&member).await;
        let token = format!("{:064x}", i + 1);
        assert_eq!(
            app.register_device(&pass, &format!("dev{i}"), &token).await,
            201
        );
        tokens.push(token);
    }
    // Pushes fail twice with 500 for one device: retried until delivered.
    mock.behave(&tokens[0], Behaviour::FailTimes(2, 500));
    app.recolor_template(&m.admin_key, "loyalty-default", "#112233")
        .await;
    for token in &tokens {
        assert!(
            mock.wait_for(token, 1, Duration::from_secs(5)).await,
            "{token} got no push"
        );
    }
    assert_eq!(
        mock.connections().await,
        1,
        "all pushes share one HTTP/2 connection"
    );
}

/// A change whose transaction started before, but commits after, a device's query must
/// still be in that device's next answer: tags never skip a late commit.
#[tokio::test]
async fn a_change_committed_late_is_not_skipped() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app_with(|_| {}).await;
    let m = app.create_merchant("Late");
    let program = app.create_program(&m.admin_key, "loyalty-default").await;
    let mut serials = Vec::new();
    let mut members = Vec::new();
    let mut pass_type = String::new();
    for name in ["Early", "Later"] {
        let member = app.enroll(&m.pos_key, id_of(&program), name).await;
        let pass = app.pass_json_of(&member).await;
        pass_type = pass["passTypeIdentifier"].as_str().unwrap().to_string();
        let serial = pass["serialNumber"].as_str().unwrap().to_string();
        assert_eq!(app.register_device(&pass, "phone", T1).await, 201);
        serials.push(serial);
        members.push(member);
    }
    let list = |since: String| {
        let url = app.url(&format!(
            "/apple/v1/devices/phone/registrations/{pass_type}?passesUpdatedSince={since}"
        ));
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            if res.status() == 204 {
                return (Vec::new(), since);
            }
            let body: Value = res.json().await.unwrap();
            let serials = body["serialNumbers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect::<Vec<_>>();
            (serials, body["lastUpdated"].as_str().unwrap().to_string())
        }
    };
    let (_, start) = list("0".into()).await;

    // A slow transaction changes the first pass and has not committed yet...
    let mut slow = app.db.connect();
    slow.batch_execute(&format!(
        "BEGIN; UPDATE passes SET update_tag = pg_current_xact_id()::text::bigint, updated_at = now() WHERE serial_number = '{}'",
        serials[0]
    ))
    .unwrap();
    // ...while a purchase on the second commits at once.
    let res = app
        .purchase(&m.pos_key, id_of(&members[1]), "late-1", 500)
        .await;
    assert_eq!(res.status(), 200);
    let (changed, tag) = list(start).await;
    // The committed change is listed. (The first pass may be listed too: a tag is held back
    // by the oldest transaction running anywhere on the server, and other tests' databases
    // share it, so its enrollment can still be "since" the tag.)
    assert!(changed.contains(&serials[1]), "{changed:?}");
    slow.batch_execute("COMMIT").unwrap();
    let (changed, _) = list(tag).await;
    assert!(
        changed.contains(&serials[0]),
        "the late commit was skipped: {changed:?}"
    );
}

/// The delivery worker needs one database connection, however small the pool: with a pool
/// of one, changes still reach the phone.
#[tokio::test]
async fn pushes_go_out_with_a_pool_of_one_connection() {
    let mock = ApnsMock::start().await;
    let (url, ca) = (mock.url.clone(), mock.ca_file.clone());
    let app = spawn_app_with(move |s| {
        s.db_pool_size = 1;
        s.apns = passfold::configuration::ApnsSettings {
            url,
            ca_file: Some(ca),
        };
    })
    .await;
    let (m, _, member) = app.merchant_with_member("Tiny Pool", "Solo").await;
    let pass = app.pass_json_of(&member).await;
    assert_eq!(app.register_device(&pass, "solo-phone", T1).await, 201);
    let res = app
        .purchase(&m.pos_key, id_of(&member), "solo-1", 1000)
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        mock.wait_for(T1, 1, Duration::from_secs(10)).await,
        "no push with a pool of one"
    );
}

/// The member's points as the pass shows them (the loyalty template's first header field).
fn shown_points(pass: &Value) -> i64 {
    pass["storeCard"]["headerFields"][0]["value"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_change_within_the_second_of_the_phones_last_fetch_still_reaches_it() {
    let app = crate::helpers::spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Same Second", "Bo Chen").await;
    let member_id = id_of(&member);
    let pass = app.pass_json_of(&member).await;
    let latest = app.latest_pass_url(&pass);
    let auth = apple_auth(&pass);
    let purchase = |n: u32| {
        let (app, key) = (&app, m.pos_key.clone());
        async move {
            let res = app
                .purchase(&key, member_id, &format!("same-second-{n}"), 1000)
                .await;
            assert_eq!(res.status(), 200);
        }
    };
    // Start both changes early in a second, so they likely share it with the fetch between.
    let into_second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis()
    };
    while into_second() > 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A change, and a phone asking right away with the current second as its time.
    purchase(1).await;
    let now = actix_web::http::header::HttpDate::from(std::time::SystemTime::now()).to_string();
    let res = app
        .get_url_with(
            &latest,
            &[("authorization", &auth), ("if-modified-since", &now)],
        )
        .await;
    assert_eq!(res.status(), 200, "a change of this second answered 304");
    // Any Last-Modified handed out now names a second before the change's.
    let held = res
        .headers()
        .get("last-modified")
        .map(|v| v.to_str().unwrap().to_string());
    let first = check_pkpass(&res.bytes().await.unwrap()).pass_json;
    let after_first = app.member_points(&m.pos_key, member_id).await;
    assert_eq!(shown_points(&first), after_first);

    // Another change within the same second: the phone gets it, never a stale 304.
    purchase(2).await;
    let res = app
        .get_url_with(
            &latest,
            &[
                ("authorization", &auth),
                ("if-modified-since", held.as_deref().unwrap_or(&now)),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "the second change was answered 304");
    let second = check_pkpass(&res.bytes().await.unwrap()).pass_json;
    let after_second = app.member_points(&m.pos_key, member_id).await;
    assert!(after_second > after_first);
    assert_eq!(shown_points(&second), after_second);

    // Once the second is over the pass has a Last-Modified, and that one is honoured.
    let res = settled_fetch(app.client.get(&latest).header("authorization", &auth)).await;
    let last_modified = res.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(
        shown_points(&check_pkpass(&res.bytes().await.unwrap()).pass_json),
        after_second
    );
    let res = app
        .get_url_with(
            &latest,
            &[
                ("authorization", &auth),
                ("if-modified-since", &last_modified),
            ],
        )
        .await;
    assert_eq!(res.status(), 304);
}

/// The folder of PostgreSQL's client programs (pg_dump, pg_restore).
fn pg_bin() -> std::path::PathBuf {
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_dump").is_file() {
            return dir;
        }
    }
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_dump").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("pg_dump is installed")
}

#[tokio::test]
async fn after_a_restore_into_a_new_cluster_devices_get_their_passes_again() {
    use diesel::RunQueryDsl;
    let app = crate::helpers::spawn_app().await;
    let (m, _, member) = app.merchant_with_member("Restored", "Cy Dee").await;
    let member_id = id_of(&member).to_string();
    let pass = app.pass_json_of(&member).await;
    assert_eq!(app.register_device(&pass, "restored-phone", T1).await, 201);

    // Transaction ids in the old cluster well above where a new cluster's restore ends.
    let mut conn = app.db.connect();
    diesel::sql_query("SET synchronous_commit = off")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "DO $$ BEGIN FOR i IN 1..20000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$",
    )
    .execute(&mut conn)
    .unwrap();
    let buy = |app: String, n: u32| {
        let path = format!("/api/v1/members/{member_id}/purchases");
        let key = m.pos_key.clone();
        async move {
            let res = reqwest::Client::new()
                .post(format!("{app}{path}"))
                .bearer_auth(key)
                .header("Idempotency-Key", format!("restore-{n}"))
                .json(&json!({"amount": 1000, "currency": "EUR"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    };
    buy(app.address.clone(), 1).await;
    let changed = |address: String, since: Option<String>| {
        let url = format!(
            "{address}/apple/v1/devices/restored-phone/registrations/{}{}",
            pass["passTypeIdentifier"].as_str().unwrap(),
            since
                .map(|s| format!("?passesUpdatedSince={s}"))
                .unwrap_or_default()
        );
        async move { reqwest::get(url).await.unwrap() }
    };
    // Tags are held back below transactions still open anywhere on the server (other
    // tests run beside this one): wait until the horizon passes the burnt ids.
    let started = std::time::Instant::now();
    let old_tag = loop {
        let res = changed(app.address.clone(), None).await;
        assert_eq!(res.status(), 200);
        let tag = res.json::<Value>().await.unwrap()["lastUpdated"]
            .as_str()
            .unwrap()
            .to_string();
        if tag.parse::<i64>().unwrap() > 20000 {
            break tag;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the tag stayed at {tag}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        changed(app.address.clone(), Some(old_tag.clone()))
            .await
            .status(),
        204
    );

    // Dump, and restore into a freshly initialised cluster.
    let started = std::time::Instant::now();
    let dump = app.db.url.clone();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("restore-{}", uuid::Uuid::new_v4().simple()));
    let bin = pg_bin();
    let dump_file = std::env::temp_dir().join(format!("{}.dump", uuid::Uuid::new_v4().simple()));
    let status = std::process::Command::new(bin.join("pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump_file)
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success(), "pg_dump");
    let cluster = passfold::db::cluster::LocalCluster::start(&dir, None).unwrap();
    let restored_url = cluster.database_url();
    let status = std::process::Command::new(bin.join("pg_restore"))
        .args([
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "-d",
        ])
        .arg(&restored_url)
        .arg(&dump_file)
        .status()
        .unwrap();
    assert!(status.success(), "pg_restore");
    let _ = std::fs::remove_file(&dump_file);
    eprintln!("dump, new cluster and restore: {:?}", started.elapsed());

    // The app on the restored database.
    let mut settings = crate::helpers::test_settings(&app.db);
    settings.database_url = Some(restored_url.clone());
    let pool = passfold::db::build_pool(&restored_url, 4).unwrap();
    let restored = passfold::startup::Application::build(settings, pool).unwrap();
    let address = format!("http://127.0.0.1:{}", restored.port());
    tokio::spawn(restored.run_until_stopped());

    // The phone's tag is above every id the new cluster gave: it gets its pass again,
    // with a tag of the new cluster.
    let res = changed(address.clone(), Some(old_tag.clone())).await;
    assert_eq!(res.status(), 200, "the restored service ignored the phone");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["serialNumbers"], json!([pass["serialNumber"]]));
    let new_tag = body["lastUpdated"].as_str().unwrap().to_string();
    assert!(new_tag.parse::<i64>().unwrap() < old_tag.parse::<i64>().unwrap());
    // Tags grow again from there: once nothing is new (the tag may be held back while a
    // transaction runs), a change shows up.
    let mut tag = new_tag;
    let started = std::time::Instant::now();
    loop {
        let res = changed(address.clone(), Some(tag.clone())).await;
        if res.status() == 204 {
            break;
        }
        assert_eq!(res.status(), 200);
        tag = res.json::<Value>().await.unwrap()["lastUpdated"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "tags never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new_tag = tag;
    buy(address.clone(), 2).await;
    let res = changed(address.clone(), Some(new_tag.clone())).await;
    assert_eq!(res.status(), 200, "a change after the restore did not show");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["serialNumbers"], json!([pass["serialNumber"]]));
    assert!(
        body["lastUpdated"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > new_tag.parse::<i64>().unwrap()
    );
    // And the phone fetches the changed pass from the restored service.
    let res = reqwest::Client::new()
        .get(format!("{address}{}", latest_pass_path(&pass)))
        .header("authorization", apple_auth(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let fetched = check_pkpass(&res.bytes().await.unwrap()).pass_json;
    let mut restored_conn =
        <diesel::PgConnection as diesel::Connection>::establish(&restored_url).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Points {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        points: i64,
    }
    let points: Points = diesel::sql_query("SELECT points::bigint AS points FROM members")
        .get_result(&mut restored_conn)
        .unwrap();
    assert_eq!(shown_points(&fetched), points.points);
    drop(restored_conn);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
