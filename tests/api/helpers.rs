#![allow(dead_code)] // each test binary uses a different part of the harness
//! Test harness after zero2prod's `tests/api/helpers.rs`: every test gets the real
//! application on a random port and a fresh database of its own, dropped afterwards.
//!
//! The database server is `DATABASE_URL` when set (any database on it serves as the
//! maintenance connection), otherwise a private cluster started exactly as the service
//! starts its own, under the target folder, and stopped when the last test process exits.

use diesel::{Connection, PgConnection, RunQueryDsl};
use passfold::clock::Clock;
use passfold::configuration::Settings;
use passfold::db::cluster::LocalCluster;
use passfold::domain::MerchantName;
use passfold::models::Merchant;
use passfold::startup::Application;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

static CLUSTER: Mutex<Option<LocalCluster>> = Mutex::new(None);
static ADMIN_URL: OnceLock<String> = OnceLock::new();

extern "C" fn stop_test_cluster() {
    if let Ok(mut guard) = CLUSTER.lock() {
        guard.take();
    }
}

/// The connection used to create and drop per-test databases.
pub fn admin_url() -> String {
    ADMIN_URL
        .get_or_init(|| {
            if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
                return url;
            }
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("passfold-test-pg");
            let cluster = LocalCluster::start(&dir, None).expect("start the test cluster");
            let url = cluster.admin_url();
            *CLUSTER.lock().unwrap() = Some(cluster);
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe {
                nix::libc::atexit(stop_test_cluster);
            }
            url
        })
        .clone()
}

fn url_with_database(base: &str, database: &str) -> String {
    let mut url = url::Url::parse(base).expect("admin URL parses");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// A database of its own for one test, dropped (with its connections) when it goes away.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// A migrated database.
    pub fn create() -> Self {
        let db = Self::create_empty();
        passfold::db::migrate(&db.url).expect("migrate the test database");
        db
    }

    /// A database with no tables, as an operator's fresh server would have.
    pub fn create_empty() -> Self {
        Self::create_empty_with("")
    }

    /// A migrated database whose locale is C, as the private cluster's is (`initdb
    /// --no-locale`), whatever the test server's default.
    pub fn create_c_locale() -> Self {
        let db = Self::create_empty_with(
            " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
        );
        passfold::db::migrate(&db.url).expect("migrate the test database");
        db
    }

    fn create_empty_with(options: &str) -> Self {
        let admin_url = admin_url();
        let name = format!("passfold_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&admin_url).expect("connect to the test server");
        diesel::sql_query(format!("CREATE DATABASE {name}{options}"))
            .execute(&mut conn)
            .expect("create the test database");
        let url = url_with_database(&admin_url, &name);
        TestDatabase {
            name,
            url,
            admin_url,
        }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    /// The app that used the database is stopping as this runs; dropping the database at
    /// once would have its pools and workers log failed reconnections. So the drop waits a
    /// moment, and whatever is still waiting when the process exits is dropped then.
    fn drop(&mut self) {
        let mut pending = PENDING_DROPS.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_none() {
            *pending = Some(Vec::new());
            std::thread::spawn(reap_dropped_databases);
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe {
                nix::libc::atexit(drop_pending_databases);
            }
        }
        if let Some(list) = pending.as_mut() {
            list.push((
                self.admin_url.clone(),
                self.name.clone(),
                Instant::now() + DROP_DELAY,
            ));
        }
    }
}

type PendingDrop = (String, String, Instant);
static PENDING_DROPS: Mutex<Option<Vec<PendingDrop>>> = Mutex::new(None);
const DROP_DELAY: Duration = Duration::from_secs(2);

fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut conn) = PgConnection::establish(admin_url) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn);
    }
}

fn take_due(all: bool) -> Vec<PendingDrop> {
    let mut pending = PENDING_DROPS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(list) = pending.as_mut() else {
        return Vec::new();
    };
    let now = Instant::now();
    let (due, wait) = std::mem::take(list)
        .into_iter()
        .partition(|(_, _, at)| all || *at <= now);
    *list = wait;
    due
}

fn reap_dropped_databases() {
    loop {
        std::thread::sleep(Duration::from_millis(250));
        for (admin_url, name, _) in take_due(false) {
            drop_database(&admin_url, &name);
        }
    }
}

extern "C" fn drop_pending_databases() {
    for (admin_url, name, _) in take_due(true) {
        drop_database(&admin_url, &name);
    }
}

pub struct TestMerchant {
    pub id: Uuid,
    pub admin_key: String,
    pub pos_key: String,
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    /// The app's clock (real time unless the test brought its own).
    pub clock: Clock,
    /// Dropping it stops the app's background workers.
    _workers: tokio::sync::watch::Sender<bool>,
    /// The workers' tasks, awaited by [`TestApp::stop_workers`].
    worker_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    server: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop at once; the database is dropped a moment later (TestDatabase).
        drop(self.server.stop(false));
    }
}

fn servers_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the test servers")
    })
}

/// The apps' logs go to `target/tmp/<test binary>.log`, so that a green run reads green;
/// `PASSFOLD_TEST_LOG=stderr` prints them instead.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var("PASSFOLD_TEST_LOG").is_ok_and(|v| v == "stderr") {
            passfold::telemetry::init(passfold::configuration::LogFormat::Text);
            return;
        }
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".into());
        let binary = binary.split('-').next().unwrap_or("tests").to_string();
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{binary}.log"));
        let Ok(file) = std::fs::File::create(&path) else {
            return;
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// Settings for a test app: loopback on a random port, the test database.
pub fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings::from_lookup(|_| None).expect("default settings");
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.database_url = Some(db.url.clone());
    settings.db_pool_size = 8;
    // Never Apple's real host: a closed loopback port unless a test brings an APNs stand-in.
    settings.apns.url = "https://127.0.0.1:9".into();
    settings.google.api_url = "http://127.0.0.1:9".into();
    settings.google.token_url = "http://127.0.0.1:9/token".into();
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(TestDatabase::create(), Clock::system(), configure).await
}

/// The app on a clock the test holds (a manual one, moved instead of sleeping).
pub async fn spawn_app_on(clock: Clock, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(TestDatabase::create(), clock, configure).await
}

/// The app on a database made by the caller, and a clock.
pub async fn spawn_app_in(
    db: TestDatabase,
    clock: Clock,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    init_logs();
    let mut settings = test_settings(&db);
    configure(&mut settings);
    let pool = passfold::db::build_pool(&db.url, settings.db_pool_size).expect("pool");
    let app = Application::build_with_clock(settings, pool, clock.clone()).expect("build the app");
    let port = app.port();
    let (workers, stopped) = tokio::sync::watch::channel(false);
    let worker_tasks = std::sync::Mutex::new(app.start_workers(stopped));
    let server = app.handle();
    // On a runtime that outlives the test's, so the stop sent when the TestApp drops is
    // carried out (pools closed) before its database is dropped.
    servers_runtime().spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The server closes connections idle for 5 s (keep-alive); a pooled connection
            // reused just as it does is reset. Well under that, the client takes a new one.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap(),
        db,
        clock,
        _workers: workers,
        worker_tasks,
        server,
    }
}

/// The app with its APNs client pointed at `mock`.
pub async fn spawn_app_with_apns(mock: &crate::apns_mock::ApnsMock) -> TestApp {
    let (url, ca) = (mock.url.clone(), mock.ca_file.clone());
    spawn_app_with(move |s| {
        s.apns = passfold::configuration::ApnsSettings {
            url,
            ca_file: Some(ca),
        }
    })
    .await
}

impl TestApp {
    /// Stops the app's background workers (outbox loops, jobs) and waits until they have
    /// stopped, so a test can run them another way (e.g. `passfold worker --once`) without a
    /// round already under way changing what the test then reads.
    pub async fn stop_workers(&self) {
        let _ = self._workers.send(true);
        let tasks = std::mem::take(&mut *self.worker_tasks.lock().unwrap());
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Registers a device for a pass (as read from its pass.json) through Apple's web
    /// service, the way Wallet does after adding it; returns the status.
    pub async fn register_device(
        &self,
        pass_json: &serde_json::Value,
        device: &str,
        push_token: &str,
    ) -> u16 {
        self.post_registration(pass_json, device, push_token)
            .await
            .status()
            .as_u16()
    }

    /// The answer to Wallet's registration of `device` for a pass (as read from its
    /// pass.json).
    pub async fn post_registration(
        &self,
        pass_json: &serde_json::Value,
        device: &str,
        push_token: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&registration_path(pass_json, device)))
            .header("authorization", apple_auth(pass_json))
            .json(&serde_json::json!({ "pushToken": push_token }))
            .send()
            .await
            .expect("register")
    }

    /// Apple's "latest version of this pass" URL for a pass (as read from its pass.json).
    pub fn latest_pass_url(&self, pass_json: &serde_json::Value) -> String {
        self.url(&latest_pass_path(pass_json))
    }

    /// A member's current points, as a till reads them.
    pub async fn member_points(&self, key: &str, member_id: &str) -> i64 {
        let member = self.member(key, member_id).await;
        member["points"].as_i64().expect("points")
    }

    /// A member's current state, as a till reads it.
    pub async fn member(&self, key: &str, member_id: &str) -> serde_json::Value {
        self.get_json(&format!("/api/v1/members/{member_id}"), key)
            .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn create_merchant(&self, name: &str) -> TestMerchant {
        let mut conn = self.db.connect();
        let created = Merchant::create(&mut conn, &MerchantName::parse(name).unwrap()).unwrap();
        TestMerchant {
            id: created.merchant_id,
            admin_key: created.admin_key,
            pos_key: created.pos_key,
        }
    }
}

/// The path Wallet registers `device` for a pass (as read from its pass.json) at.
pub fn registration_path(pass_json: &serde_json::Value, device: &str) -> String {
    format!(
        "/apple/v1/devices/{device}/registrations/{}/{}",
        pass_json["passTypeIdentifier"].as_str().unwrap(),
        pass_json["serialNumber"].as_str().unwrap()
    )
}

/// The path of Apple's "latest version of this pass" for a pass (as read from its pass.json).
pub fn latest_pass_path(pass_json: &serde_json::Value) -> String {
    format!(
        "/apple/v1/passes/{}/{}",
        pass_json["passTypeIdentifier"].as_str().unwrap(),
        pass_json["serialNumber"].as_str().unwrap()
    )
}

/// The `Authorization` header Wallet sends for a pass (as read from its pass.json).
pub fn apple_auth(pass_json: &serde_json::Value) -> String {
    format!(
        "ApplePass {}",
        pass_json["authenticationToken"].as_str().unwrap()
    )
}

/// An answer's `id`, as the API names programs, members, keys and activities.
pub fn id_of(v: &serde_json::Value) -> &str {
    v["id"].as_str().expect("an id")
}

/// Whether the answer is the replay of an earlier one with the same idempotency key.
pub fn replayed(res: &reqwest::Response) -> bool {
    res.headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// Asserts a problem+json answer with the given status and `type` suffix; returns the body.
pub async fn assert_problem(
    res: reqwest::Response,
    status: u16,
    type_suffix: &str,
) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status of {}", res.url());
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type:?} for {}",
        res.url()
    );
    let body: serde_json::Value = res.json().await.expect("problem body is JSON");
    let type_ = body["type"].as_str().unwrap_or_default();
    assert!(
        type_.ends_with(&format!("/{type_suffix}")),
        "type {type_:?} should end in {type_suffix:?}: {body}"
    );
    assert_eq!(body["status"].as_u64(), Some(status as u64));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

impl TestApp {
    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::POST, path, key, body).await
    }

    pub async fn put_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::PUT, path, key, body).await
    }

    pub async fn patch_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::PATCH, path, key, body)
            .await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// A GET without a key, as a browser or a phone sends it.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// A GET of a whole URL (a pass link, Apple's latest-pass URL) with the given headers, as
    /// a phone sends it.
    pub async fn get_url_with(&self, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("request")
    }

    /// The body of a GET without a key (`/metrics`, the docs), whatever the status.
    pub async fn text_of(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("a text body")
    }

    /// Expects 200 to a GET with `key` and returns the JSON body.
    pub async fn get_json(&self, path: &str, key: &str) -> serde_json::Value {
        Self::expect_json(self.get_with_key(path, key).await, 200).await
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// Expects `status` and returns the JSON body.
    pub async fn expect_json(res: reqwest::Response, status: u16) -> serde_json::Value {
        let got = res.status().as_u16();
        let url = res.url().to_string();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(got, status, "{url}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    /// A loyalty program on `template` with Bronze/Silver/Gold tiers and 50 welcome points.
    pub async fn create_program(&self, key: &str, template: &str) -> serde_json::Value {
        let res = self
            .post_json(
                "/api/v1/programs",
                key,
                &serde_json::json!({
                    "name": "Coffee Club",
                    "template": template,
                    "currency": "EUR",
                    "points_per_unit": 10,
                    "tiers": [{"name": "Bronze", "min_points": 0}, {"name": "Silver", "min_points": 500}, {"name": "Gold", "min_points": 2000, "multiplier": 1.5}],
                    "welcome_points": 50
                }),
            )
            .await;
        Self::expect_json(res, 201).await
    }

    /// A merchant with the default loyalty program (as `create_program` makes it) and one
    /// member enrolled by the till: `(merchant, program, member)`.
    pub async fn merchant_with_member(
        &self,
        merchant: &str,
        member: &str,
    ) -> (TestMerchant, serde_json::Value, serde_json::Value) {
        let m = self.create_merchant(merchant);
        let program = self.create_program(&m.admin_key, "loyalty-default").await;
        let member = self.enroll(&m.pos_key, id_of(&program), member).await;
        (m, program, member)
    }

    /// Sets a template's background colour (read, change, put back); expects 200 and
    /// returns the answer.
    pub async fn recolor_template(
        &self,
        admin_key: &str,
        template: &str,
        background: &str,
    ) -> serde_json::Value {
        let path = format!("/api/v1/templates/{template}");
        let mut doc = self.get_json(&path, admin_key).await["template"].clone();
        doc["colors"]["background"] = serde_json::json!(background);
        Self::expect_json(
            self.put_json(&path, admin_key, &serde_json::json!({ "template": doc }))
                .await,
            200,
        )
        .await
    }

    pub async fn enroll(&self, key: &str, program_id: &str, name: &str) -> serde_json::Value {
        let res = self
            .post_json(
                &format!("/api/v1/programs/{program_id}/members"),
                key,
                &serde_json::json!({"name": name}),
            )
            .await;
        Self::expect_json(res, 201).await
    }

    /// Downloads a pass by its public link (no key), expecting a pkpass.
    pub async fn download_pass(&self, url: &str) -> Vec<u8> {
        let res = self.client.get(url).send().await.expect("download");
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(
            res.headers()["content-type"],
            "application/vnd.apple.pkpass"
        );
        res.bytes().await.unwrap().to_vec()
    }
}

impl TestApp {
    pub async fn issue_gift_card(
        &self,
        key: &str,
        currency: &str,
        initial_balance: i64,
    ) -> serde_json::Value {
        let res = self
            .post_json(
                "/api/v1/gift-cards",
                key,
                &serde_json::json!({"template": "gift-card-default", "currency": currency, "initial_balance": initial_balance}),
            )
            .await;
        Self::expect_json(res, 201).await
    }

    /// A POS mutation with an idempotency key.
    pub async fn pos(
        &self,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// A POS mutation with an idempotency key, expecting 200; returns the JSON body.
    pub async fn pos_ok(
        &self,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        Self::expect_json(self.pos(path, key, idempotency_key, body).await, 200).await
    }

    /// A purchase of `amount` euro cents by a member, with an idempotency key.
    pub async fn purchase(
        &self,
        key: &str,
        member_id: &str,
        idempotency_key: &str,
        amount: i64,
    ) -> reqwest::Response {
        self.pos(
            &format!("/api/v1/members/{member_id}/purchases"),
            key,
            idempotency_key,
            &serde_json::json!({"amount": amount, "currency": "EUR"}),
        )
        .await
    }

    /// A redemption of `amount` euro cents from a gift card, with an idempotency key.
    pub async fn redeem(
        &self,
        key: &str,
        gan: &str,
        idempotency_key: &str,
        amount: i64,
    ) -> reqwest::Response {
        self.pos(
            &format!("/api/v1/gift-cards/{gan}/redeem"),
            key,
            idempotency_key,
            &serde_json::json!({"amount": amount, "currency": "EUR"}),
        )
        .await
    }

    /// The merchant's ledger check, asserted to find no problems; returns the report.
    pub async fn verify_ledger(&self, admin_key: &str) -> serde_json::Value {
        let report = self.get_json("/api/v1/ledger/verify", admin_key).await;
        assert_eq!(report["problems"], serde_json::json!([]), "{report}");
        report
    }
}
