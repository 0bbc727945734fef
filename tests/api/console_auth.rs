//! The merchant console's front door (issue 14): staff created on the command line sign in,
//! wrong passwords are limited, forged posts are refused, roles are enforced on the
//! server, sessions end (everywhere, when idle), invitations work once; and an owner signs
//! in through the form in headless Chromium.

use crate::browser::Browser;
use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with, TestApp};
use passfold::clock::Clock;
use passfold::domain::{Email, Password, Role};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// One browser's worth of console: its cookies, kept by hand.
pub(crate) struct Console<'a> {
    app: &'a TestApp,
    cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub(crate) fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }

    pub(crate) fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl<'a> Console<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Console {
            app,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        for set in res.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let res = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    /// A multipart upload of `bytes` as the form's `file`.
    pub(crate) async fn upload(&mut self, path: &str, bytes: &[u8]) -> Page {
        let boundary = "----passfoldtestboundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"logo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    /// A multipart form: the text `fields` first, then `bytes` as the file `file`
    /// (`data.csv`), as a browser sends a form whose file input comes last.
    pub(crate) async fn upload_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        bytes: &[u8],
    ) -> Page {
        let boundary = "----passfoldtestboundary";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    /// Signs in through the form, as a browser does; the answer to the POST.
    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let page = self.get("/console/").await;
        let csrf = page.csrf();
        self.post(
            "/console/sign-in",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    pub(crate) async fn signed_in(app: &'a TestApp, email: &str) -> Console<'a> {
        let mut console = Console::new(app);
        let res = console.sign_in(email, PASSWORD).await;
        assert_eq!(res.status, 303, "{}", res.body);
        assert_eq!(res.location(), "/console/");
        console
    }
}

/// An account made by the same function `passfold staff create` calls.
pub(crate) fn staff(app: &TestApp, merchant: uuid::Uuid, email: &str, role: Role) -> uuid::Uuid {
    let mut conn = app.db.connect();
    passfold::staff::accounts::create(
        &mut conn,
        merchant,
        &Email::parse(email).unwrap(),
        role,
        &Password::parse_new(PASSWORD).unwrap(),
        app.clock.now(),
    )
    .unwrap()
    .id
}

/// Runs the real binary's `staff create` on the app's database.
fn cli_staff_create(
    app: &TestApp,
    merchant: &str,
    email: &str,
    password: &str,
) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_passfold"))
        .args([
            "staff",
            "create",
            "--merchant",
            merchant,
            "--email",
            email,
            "--role",
            "owner",
        ])
        .env("DATABASE_URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run passfold");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn an_owner_created_on_the_command_line_signs_in() {
    let app = spawn_app().await;
    let m = app.create_merchant("Кофейня Ромашка");

    let weak = cli_staff_create(&app, &m.id.to_string(), "owner@cafe.example", "short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 10 characters"));
    let empty = cli_staff_create(&app, &m.id.to_string(), "owner@cafe.example", "");
    assert!(!empty.status.success());
    let unknown = cli_staff_create(
        &app,
        &uuid::Uuid::new_v4().to_string(),
        "owner@cafe.example",
        PASSWORD,
    );
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no merchant"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let made = cli_staff_create(&app, &m.id.to_string(), "Owner@Cafe.example", PASSWORD);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let staff_id = printed["staff_id"].as_str().expect("staff_id");
    assert!(uuid::Uuid::parse_str(staff_id).is_ok());
    let again = cli_staff_create(&app, &m.id.to_string(), "owner@cafe.example", PASSWORD);
    assert!(
        !again.status.success(),
        "one account per email and merchant"
    );

    let mut console = Console::new(&app);
    let bare = console.get("/console").await;
    assert_eq!((bare.status, bare.location()), (303, "/console/"));
    assert_eq!(console.get("/console/nothing-here").await.status, 404);
    let front = console.get("/console/").await;
    assert_eq!(front.status, 200);
    assert!(front.body.contains(r#"name="email""#) && front.body.contains(r#"name="password""#));
    let csp = front.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    let signed = console.sign_in("owner@cafe.example", PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let cookie = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("pf_console="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http public URL: no Secure flag"
    );

    let home = console.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Кофейня Ромашка"));
    assert!(home.body.contains("owner@cafe.example"));
    assert!(home.body.contains(r#"id="nav-staff""#));

    // The sign-in is in the audit log, which owners read.
    let audit = console.get("/console/audit").await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains(r#"data-action="sign_in""#));
    assert!(audit.body.contains(r#"data-action="staff_create""#));
}

#[tokio::test]
async fn the_sixth_wrong_password_in_a_row_is_limited() {
    let app = spawn_app().await;
    let m = app.create_merchant("Limits");
    staff(&app, m.id, "owner@limits.example", Role::Owner);
    let mut console = Console::new(&app);
    for attempt in 1..=5 {
        let res = console
            .sign_in("owner@limits.example", "wrong password!")
            .await;
        assert_eq!(res.status, 401, "attempt {attempt}");
        assert!(res.body.contains("sign-in-error"));
    }
    let sixth = console
        .sign_in("owner@limits.example", "wrong password!")
        .await;
    assert_eq!(sixth.status, 429);
    let retry: u64 = sixth.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 60, "{retry}");
    // Limited means limited: not even the right password is judged now.
    let right = console.sign_in("owner@limits.example", PASSWORD).await;
    assert_eq!(right.status, 429);
    // Unknown emails are counted alike: five answers as wrong, then limited.
    for _ in 0..5 {
        assert_eq!(
            console.sign_in("nobody@limits.example", "x").await.status,
            401
        );
    }
    assert_eq!(
        console.sign_in("nobody@limits.example", "x").await.status,
        429
    );

    // The failures are in the merchant's audit log.
    let mut conn = app.db.connect();
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let failed: N = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_log WHERE action IN ('sign_in_failed', 'sign_in_limited')",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(failed.n, 7);
}

#[tokio::test]
async fn a_forged_post_without_the_csrf_token_is_refused() {
    let app = spawn_app().await;
    let m = app.create_merchant("Forgery");
    staff(&app, m.id, "owner@forgery.example", Role::Owner);

    // The sign-in form needs its double-submit cookie and field.
    let mut stranger = Console::new(&app);
    let res = stranger
        .post(
            "/console/sign-in",
            &[("email", "owner@forgery.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status, 403);

    let mut owner = Console::signed_in(&app, "owner@forgery.example").await;
    let forged = owner
        .post(
            "/console/staff/invitations",
            &[("email", "mallory@evil.example"), ("role", "owner")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("refusal"));
    let wrong = owner
        .post(
            "/console/staff/invitations",
            &[
                ("email", "mallory@evil.example"),
                ("role", "owner"),
                ("csrf", "0".repeat(64).as_str()),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let everywhere = owner
        .post("/console/account/sign-out-everywhere", &[])
        .await;
    assert_eq!(everywhere.status, 403, "no token, no sign-out either");

    // With the session's token the same post works, and nothing was invited before.
    let page = owner.get("/console/staff").await;
    assert!(!page.body.contains("mallory@evil.example"));
    let csrf = page.csrf();
    let ok = owner
        .post(
            "/console/staff/invitations",
            &[
                ("email", "mallory@evil.example"),
                ("role", "cashier"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("invitation-link"));
}

#[tokio::test]
async fn designers_and_cashiers_are_refused_the_staff_page_on_the_server() {
    let app = spawn_app().await;
    let m = app.create_merchant("Roles");
    staff(&app, m.id, "owner@roles.example", Role::Owner);
    staff(&app, m.id, "designer@roles.example", Role::Designer);
    staff(&app, m.id, "cashier@roles.example", Role::Cashier);
    for email in ["designer@roles.example", "cashier@roles.example"] {
        let mut console = Console::signed_in(&app, email).await;
        let home = console.get("/console/").await;
        assert_eq!(home.status, 200);
        assert!(!home.body.contains(r#"id="nav-staff""#), "{email}: no link");
        assert!(!home.body.contains(r#"id="nav-audit""#), "{email}: no link");
        let csrf = home.csrf();
        // ...and no way around the missing link.
        assert_eq!(console.get("/console/staff").await.status, 403, "{email}");
        assert_eq!(console.get("/console/audit").await.status, 403, "{email}");
        let post = console
            .post(
                "/console/staff/invitations",
                &[
                    ("email", "friend@roles.example"),
                    ("role", "owner"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(post.status, 403, "{email}");
        assert_eq!(console.get("/console/account").await.status, 200);
    }
    let mut owner = Console::signed_in(&app, "owner@roles.example").await;
    let page = owner.get("/console/staff").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("friend@roles.example"));
}

#[tokio::test]
async fn signing_out_everywhere_ends_another_session() {
    let app = spawn_app().await;
    let m = app.create_merchant("Everywhere");
    staff(&app, m.id, "owner@everywhere.example", Role::Owner);
    let mut laptop = Console::signed_in(&app, "owner@everywhere.example").await;
    let mut phone = Console::signed_in(&app, "owner@everywhere.example").await;
    assert_eq!(phone.get("/console/staff").await.status, 200);

    let account = laptop.get("/console/account").await;
    let csrf = account.csrf();
    let out = laptop
        .post("/console/account/sign-out-everywhere", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);

    let refused = phone.get("/console/staff").await;
    assert_eq!(refused.status, 303);
    assert_eq!(refused.location(), "/console/");
    assert!(phone
        .get("/console/")
        .await
        .body
        .contains(r#"id="sign-in""#));
    assert_eq!(laptop.get("/console/staff").await.status, 303);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_the_language_is_the_persons() {
    let app = spawn_app_with(|s| {
        s.public_url = "https://cards.example".into();
        s.public_url_from_bind = false;
    })
    .await;
    let m = app.create_merchant("Password");
    staff(&app, m.id, "owner@password.example", Role::Owner);
    let mut laptop = Console::new(&app);
    let signed = laptop.sign_in("owner@password.example", PASSWORD).await;
    assert_eq!(signed.status, 303);
    let cookie = signed.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "https public URL: {cookie}");
    let mut phone = Console::signed_in(&app, "owner@password.example").await;

    let account = laptop.get("/console/account").await;
    let csrf = account.csrf();
    let wrong = laptop
        .post(
            "/console/account/password",
            &[
                ("current", "not my password"),
                ("new", "a brand new passphrase"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    let changed = laptop
        .post(
            "/console/account/password",
            &[
                ("current", PASSWORD),
                ("new", "a brand new passphrase"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(phone
        .get("/console/")
        .await
        .body
        .contains(r#"id="sign-in""#));
    assert_eq!(
        laptop.get("/console/staff").await.status,
        200,
        "this session stays"
    );
    let old = Console::new(&app)
        .sign_in("owner@password.example", PASSWORD)
        .await;
    assert_eq!(old.status, 401);

    // The language is the account's, whatever the browser says.
    let ru = laptop
        .post(
            "/console/account/language",
            &[("language", "ru"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ru.status, 303);
    let home = laptop.get("/console/").await;
    assert!(home.body.contains(r#"<html lang="ru">"#));
    assert!(home.body.contains("Главная"));
}

#[tokio::test]
async fn a_session_ends_when_idle_and_after_its_lifetime_by_the_clock() {
    let clock = Clock::manual(chrono::Utc::now());
    let app = spawn_app_on(clock.clone(), |_| {}).await;
    let m = app.create_merchant("Idle");
    staff(&app, m.id, "owner@idle.example", Role::Owner);

    let mut console = Console::signed_in(&app, "owner@idle.example").await;
    clock.advance(chrono::Duration::minutes(29));
    assert_eq!(
        console.get("/console/staff").await.status,
        200,
        "29 idle minutes"
    );
    clock.advance(chrono::Duration::minutes(29));
    assert_eq!(
        console.get("/console/staff").await.status,
        200,
        "kept alive by use"
    );
    clock.advance(chrono::Duration::minutes(31));
    let idle = console.get("/console/staff").await;
    assert_eq!(idle.status, 303, "31 idle minutes end the session");

    // In use all along, a session still ends 12 hours after sign-in.
    let mut busy = Console::signed_in(&app, "owner@idle.example").await;
    let started = clock.now();
    while clock.now() - started < chrono::Duration::hours(12) - chrono::Duration::minutes(20) {
        clock.advance(chrono::Duration::minutes(20));
        assert_eq!(busy.get("/console/").await.status, 200);
    }
    clock.advance(chrono::Duration::minutes(20));
    assert_eq!(busy.get("/console/staff").await.status, 303);
}

#[tokio::test]
async fn an_invitation_link_works_once() {
    let app = spawn_app().await;
    let m = app.create_merchant("Invitations");
    staff(&app, m.id, "owner@inv.example", Role::Owner);
    let mut owner = Console::signed_in(&app, "owner@inv.example").await;
    let page = owner.get("/console/staff").await;
    let csrf = page.csrf();
    let invited = owner
        .post(
            "/console/staff/invitations",
            &[
                ("email", "Designer@Inv.example"),
                ("role", "designer"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let start = invited.body.find(r#"id="invitation-link" href=""#).unwrap() + 27;
    let end = invited.body[start..].find('"').unwrap() + start;
    let link = invited.body[start..end].to_string();
    let path = link
        .strip_prefix(&app.address)
        .expect("an absolute link")
        .to_string();
    assert!(owner
        .get("/console/staff")
        .await
        .body
        .contains("designer@inv.example"));

    let mut invitee = Console::new(&app);
    let form = invitee.get(&path).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Invitations"));
    let csrf = form.csrf();
    let short = invitee
        .post(
            &path,
            &[
                ("password", "short"),
                ("password_repeat", "short"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    let accepted = invitee
        .post(
            &path,
            &[
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let home = invitee.get("/console/").await;
    assert!(home.body.contains("designer@inv.example"));
    assert!(home.body.contains(r#"id="signed-in-role">Designer"#));

    // Once: the link is dead now, to anyone.
    let mut again = Console::new(&app);
    assert_eq!(again.get(&path).await.status, 404);
    let reuse = invitee
        .post(
            &path,
            &[
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reuse.status, 404);
    // The new account signs in with its password.
    Console::signed_in(&app, "designer@inv.example").await;

    let audit = owner.get("/console/audit").await;
    assert!(audit.body.contains(r#"data-action="invite""#));
    assert!(audit.body.contains(r#"data-action="invitation_accept""#));
}

#[tokio::test]
async fn an_owner_signs_in_through_the_form_in_a_real_browser() {
    let app = spawn_app().await;
    let m = app.create_merchant("Кофейня Ромашка");
    staff(&app, m.id, "owner@browser.example", Role::Owner);

    let browser = Browser::start().await;
    browser.goto(&app.url("/console/")).await;
    browser.wait_for("#sign-in", Duration::from_secs(10)).await;
    browser.fill("#email", "owner@browser.example").await;
    browser.fill("#password", PASSWORD).await;
    browser.screenshot("console-1-sign-in").await;
    browser.click("#sign-in-submit").await;
    browser
        .wait_for("#dashboard", Duration::from_secs(10))
        .await;
    browser.screenshot("console-2-home").await;
    assert_eq!(browser.text("#merchant-name").await, "Кофейня Ромашка");
    assert_eq!(
        browser.text("#signed-in-email").await,
        "owner@browser.example"
    );

    let app_host = app.address.trim_start_matches("http://").to_string();
    assert_eq!(browser.resource_hosts().await, vec![app_host]);
    assert_eq!(
        browser
            .execute("return document.scripts.length", vec![])
            .await,
        serde_json::json!(0)
    );
    // The stylesheet applied (served by passfold under its hashed name).
    let css = browser
        .execute(
            "return [...document.styleSheets].map(s => s.href).join(' ')",
            vec![],
        )
        .await;
    assert!(
        css.as_str().unwrap().contains("/console/assets/console."),
        "{css}"
    );
    // At 375 px nothing sticks out of the page.
    let overflow = browser
        .execute(
            "document.documentElement.style.width = '375px';
             return [...document.querySelectorAll('body *')]
               .filter(e => !e.closest('.table-wrap'))
               .filter(e => e.getBoundingClientRect().right > 375.5)
               .map(e => e.tagName + '#' + e.id);",
            vec![],
        )
        .await;
    assert_eq!(overflow, serde_json::json!([]));
    browser.close().await;
}
