#![allow(dead_code)] // each test uses a different part of the harness
//! A headless browser for integration tests: Debian's Chromium driven through ChromeDriver
//! (W3C WebDriver, via `fantoccini`).
//!
//! Every [`Browser`] runs its own `chromedriver` on a free loopback port with a fresh
//! profile directory, so cookies and storage never leak between tests. Dropping it (also
//! while a test panics) ends the browser session and kills ChromeDriver and every Chromium
//! process it started. Like the rest of this harness, the methods panic with a message
//! naming the selector and the page instead of returning errors.

use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const MISSING: &str = "headless browser tests need Debian's chromium and chromium-driver \
    (apt-get install chromium chromium-driver); .ci/run installs them";
/// How long ChromeDriver may take to answer `/status` and Chromium to open a session.
const STARTUP: Duration = Duration::from_secs(20);

pub struct Browser {
    // Fields drop in this order: the client, then ChromeDriver and its Chromium, and only
    // then the folder they wrote into.
    client: Client,
    session_id: Option<String>,
    driver: Driver,
    /// Holds `profile/` (Chromium's user data), `home/`, `tmp/` and `chromedriver.log`.
    dir: tempfile::TempDir,
}

/// A running ChromeDriver, killed with its whole process group (every Chromium process it
/// started) when dropped, also when `Browser::start` panics halfway.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// A phone-sized (412×915) headless Chromium with an empty profile.
    pub async fn start() -> Browser {
        Browser::start_sized(412, 915).await
    }

    /// A headless Chromium with an empty profile whose viewport is `width`×`height` CSS
    /// pixels (a phone's: device emulation, so it may be narrower than a desktop window).
    pub async fn start_sized(width: u32, height: u32) -> Browser {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            panic!("{MISSING}");
        }
        let dir = tempfile::Builder::new()
            .prefix("passfold-browser-")
            .tempdir()
            .expect("create a temporary folder for the browser profile");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).expect("create the browser profile folder");
        let log = dir.path().join("chromedriver.log");

        // The free port is found by binding and releasing it; should another process take it
        // in between, ChromeDriver exits at once and we try the next one.
        let mut attempts = 0;
        let driver = loop {
            attempts += 1;
            let port = free_port();
            let mut driver = spawn_chromedriver(port, dir.path());
            match wait_until_ready(&mut driver).await {
                Ok(()) => break driver,
                Err(why) => {
                    drop(driver);
                    if attempts == 3 {
                        panic!(
                            "chromedriver did not start on port {port}: {why}\n{}",
                            log_tail(&log)
                        );
                    }
                }
            }
        };

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                // Desktop Chromium will not make a window narrower than 500 px, so the
                // phone-sized viewport comes from device emulation (which also makes the
                // page honour <meta name="viewport">, as a phone does).
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": width,
                        "height": height,
                        "pixelRatio": 1.0,
                        "mobile": true,
                        "touch": true,
                    },
                },
                "args": [
                    "--headless=new",
                    // Chromium will not start as root with its sandbox on, and CI runs as root.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                    // Keep the browser itself quiet on the network: no first-run, component
                    // or safe-browsing traffic while tests measure what pages load.
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                ],
            }),
        );
        let client = connect(driver.port, capabilities, &log).await;
        let mut browser = Browser {
            client,
            session_id: None,
            driver,
            dir,
        };
        browser.session_id = browser.client.session_id().await.ok().flatten();
        browser
    }

    /// The underlying WebDriver client, for anything this harness does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the session cleanly (Chromium quits) and stops ChromeDriver. Dropping the
    /// browser does the same, synchronously.
    pub async fn close(mut self) {
        if self.session_id.take().is_some() {
            let _ = self.client.clone().close().await;
        }
    }

    /// Loads `url` and waits for the page's load event.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("browser could not load {url}: {e}");
        }
    }

    /// The element matching the CSS selector, which must already be on the page.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no element {css:?} {}: {e}", self.whereabouts().await),
        }
    }

    /// Every element matching the CSS selector (possibly none).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        match self.client.find_all(Locator::Css(css)).await {
            Ok(elements) => elements,
            Err(e) => panic!("looking for {css:?} {}: {e}", self.whereabouts().await),
        }
    }

    /// Polls (every 50 ms) until an element matches the CSS selector. Any error while
    /// polling counts as "not yet": a form's submission can abort a lookup mid-navigation
    /// ("aborted by navigation"), which is no answer about the next page.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let started = std::time::Instant::now();
        loop {
            let error = match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) => e,
            };
            if started.elapsed() >= timeout {
                panic!(
                    "no element {css:?} within {timeout:?} {}: {error}",
                    self.whereabouts().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clears the field and types `text` into it, as a user would.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        if let Err(e) = field.clear().await {
            panic!("could not clear {css:?} {}: {e}", self.whereabouts().await);
        }
        if let Err(e) = field.send_keys(text).await {
            panic!(
                "could not type into {css:?} {}: {e}",
                self.whereabouts().await
            );
        }
    }

    /// Clicks the element (a button, link or checkbox). ChromeDriver waits for a page load
    /// the click starts; to wait for something on the next page, use [`Browser::wait_for`].
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(e) = element.click().await {
            panic!("could not click {css:?} {}: {e}", self.whereabouts().await);
        }
    }

    /// The element's rendered text (what a user sees, whitespace collapsed).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(e) => panic!("no text for {css:?} {}: {e}", self.whereabouts().await),
        }
    }

    /// The element's attribute as written in the markup, `None` when it has none.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css).await;
        match element.attr(name).await {
            Ok(value) => value,
            Err(e) => panic!(
                "could not read {name:?} of {css:?} {}: {e}",
                self.whereabouts().await
            ),
        }
    }

    pub async fn current_url(&self) -> url::Url {
        self.client
            .current_url()
            .await
            .expect("browser reports its current URL")
    }

    /// The current DOM serialised as HTML.
    pub async fn page_source(&self) -> String {
        self.client
            .source()
            .await
            .expect("browser returns the page source")
    }

    /// Saves a PNG of the viewport to `target/test-artifacts/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(
            !name.is_empty() && !name.contains(['/', '\\']) && name != "..",
            "screenshot name {name:?} must be a plain file name"
        );
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("could not take screenshot {name:?}: {e}"),
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
        path
    }

    /// Saves a PNG of one element to `target/test-artifacts/<name>.png` and returns its
    /// path. The element is scrolled to the top of the viewport first: Chromium clips an
    /// element's screenshot to what the viewport shows.
    pub async fn screenshot_of(&self, css: &str, name: &str) -> PathBuf {
        assert!(
            !name.is_empty() && !name.contains(['/', '\\']) && name != "..",
            "screenshot name {name:?} must be a plain file name"
        );
        let element = self.find(css).await;
        self.execute(
            "arguments[0].scrollIntoView({ block: 'start' }); return null",
            vec![json!(element)],
        )
        .await;
        let png = match element.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("could not take screenshot of {css:?}: {e}"),
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
        path
    }

    /// Presses and releases a key (`fantoccini::key::Key`) where the focus is, as a
    /// keyboard does: no element is aimed at.
    pub async fn press(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let value = key.chars().next().expect("a key code");
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        if let Err(e) = self.client.perform_actions(actions).await {
            panic!("could not press {key:?} {}: {e}", self.whereabouts().await);
        }
    }

    /// Cookies visible to the current page.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .expect("browser returns its cookies")
    }

    /// Deletes the cookies visible to the current page.
    pub async fn delete_all_cookies(&self) {
        self.client
            .delete_all_cookies()
            .await
            .expect("browser deletes its cookies")
    }

    /// Runs `js` as the body of a function in the page (`arguments[0]`… are `args`) and
    /// returns what it `return`s.
    pub async fn execute(&self, js: &str, args: Vec<Value>) -> Value {
        match self.client.execute(js, args).await {
            Ok(value) => value,
            Err(e) => panic!("script failed {}: {e}\n{js}", self.whereabouts().await),
        }
    }

    /// Every URL the current page loaded: the document itself, then each entry of
    /// `performance.getEntriesByType('resource')` (images, scripts, styles, fonts, fetches),
    /// once the document has finished loading. Resource Timing does not see inside
    /// cross-origin iframes, nor favicon requests.
    pub async fn resource_urls(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = self.execute("return document.readyState", vec![]).await;
            if state == "complete" || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let urls = self
            .execute(
                "return [location.href].concat(\
                    performance.getEntriesByType('navigation').map(e => e.name),\
                    performance.getEntriesByType('resource').map(e => e.name));",
                vec![],
            )
            .await;
        let mut urls: Vec<String> = serde_json::from_value(urls).expect("a list of URLs");
        let mut seen = std::collections::HashSet::new();
        urls.retain(|u| seen.insert(u.clone()));
        urls
    }

    /// The distinct `host:port` of every URL the current page loaded (see
    /// [`Browser::resource_urls`]), sorted; a URL without a host (`data:`, `blob:`,
    /// `about:`) counts as its scheme followed by a colon. A page that loaded nothing from
    /// elsewhere gives exactly its own `host:port`.
    pub async fn resource_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .resource_urls()
            .await
            .iter()
            .map(|u| match url::Url::parse(u) {
                Ok(url) => match (url.host_str(), url.port_or_known_default()) {
                    (Some(host), Some(port)) => format!("{host}:{port}"),
                    (Some(host), None) => host.to_string(),
                    (None, _) => format!("{}:", url.scheme()),
                },
                Err(_) => u.clone(),
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// "on <url>" for panic messages, or nothing when the browser cannot say.
    async fn whereabouts(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => format!("on {url}"),
            Err(_) => String::new(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask ChromeDriver to end the session so Chromium exits cleanly (this may run while a
        // test unwinds, with no runtime to await on, hence a plain blocking request). Dropping
        // `driver` afterwards kills ChromeDriver's process group, with any Chromium left.
        if let Some(session) = self.session_id.take() {
            delete_session(self.driver.port, &session);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

fn spawn_chromedriver(port: u16, dir: &Path) -> Driver {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(dir.join("chromedriver.log")).expect("create chromedriver.log");
    let err = out.try_clone().expect("share chromedriver.log");
    // Chromium's scratch files (singleton socket, shared memory, crash reports under
    // ~/.config) go into the browser's own folder too, not into /tmp or the user's home.
    let home = dir.join("home");
    let tmp = dir.join("tmp");
    for folder in [&home, &tmp] {
        std::fs::create_dir_all(folder).expect("create the browser's scratch folders");
    }
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so that Drop can kill Chromium along with it.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{MISSING}\n(starting {CHROMEDRIVER}: {e})"));
    Driver { child, port }
}

/// Polls ChromeDriver's `/status` until it reports ready.
async fn wait_until_ready(driver: &mut Driver) -> Result<(), String> {
    let port = driver.port;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(Some(status)) = driver.child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        if let Ok(res) = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
        {
            if let Ok(body) = res.json::<Value>().await {
                if body["value"]["ready"] == true {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("/status not ready within {STARTUP:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(port: u16, capabilities: serde_json::Map<String, Value>, log: &Path) -> Client {
    let mut builder = ClientBuilder::native();
    builder.capabilities(capabilities);
    let url = format!("http://127.0.0.1:{port}");
    let connecting = builder.connect(&url);
    match tokio::time::timeout(STARTUP, connecting).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("chromium did not start: {e}\n{}", log_tail(log)),
        Err(_) => panic!(
            "chromium did not start within {STARTUP:?}\n{}",
            log_tail(log)
        ),
    }
}

/// `DELETE /session/<id>` over a plain socket, waiting (briefly) for the answer.
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // ChromeDriver answers once Chromium has quit; the first bytes of the answer are enough
    // (it keeps the connection open, so reading to the end would wait for the timeout).
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read(&mut [0; 512]);
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("--- chromedriver.log (last lines) ---\n{tail}")
}

// The harness's own test: a tiny page server, a form, a same-origin image.

const FORM: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Form</title></head><body>
<h1>Say something</h1>
<img id="logo" src="/pixel.png" width="40" height="40" alt="logo">
<form method="post" action="/">
  <input type="text" id="note" name="note">
  <label><input type="checkbox" id="agree" name="agree" value="yes"> I agree</label>
  <button type="submit" id="send">Send</button>
</form>
</body></html>"#;

#[derive(serde::Deserialize)]
struct Submitted {
    note: String,
    agree: Option<String>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn form() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("set-cookie", "visited=1; Path=/; SameSite=Lax"))
        .body(FORM)
}

async fn submitted(form: web::Form<Submitted>) -> HttpResponse {
    let agreed = if form.agree.as_deref() == Some("yes") {
        "yes"
    } else {
        "no"
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            r#"<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>Submitted</title></head>
<body><img src="/pixel.png" width="40" height="40" alt="logo">
<p id="result">{}</p><p id="agreed">{agreed}</p></body></html>"#,
            escape(&form.note)
        ))
}

async fn pixel() -> HttpResponse {
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, 1, 1);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0x1f, 0x7a, 0x4c, 0xff]).unwrap();
    }
    HttpResponse::Ok().content_type("image/png").body(png)
}

#[tokio::test]
async fn browser_harness_drives_a_local_page() {
    let started = Instant::now();
    let server = HttpServer::new(|| {
        App::new()
            .route("/", web::get().to(form))
            .route("/", web::post().to(submitted))
            .route("/pixel.png", web::get().to(pixel))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind the page server");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    let origin = format!("http://127.0.0.1:{port}");

    let browser = Browser::start().await;
    let ready = started.elapsed();
    browser.goto(&format!("{origin}/")).await;
    assert_eq!(browser.text("h1").await, "Say something");
    assert_eq!(browser.attr("#note", "name").await.as_deref(), Some("note"));
    assert_eq!(browser.attr("#note", "placeholder").await, None);
    let size = browser
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await;
    assert_eq!(size, json!([412, 915]), "a phone-sized viewport");
    let image_width = browser
        .execute(
            "return document.getElementById('logo').naturalWidth",
            vec![],
        )
        .await;
    assert_eq!(image_width, 1, "the same-origin image loaded");
    assert_eq!(
        browser.resource_hosts().await,
        [format!("127.0.0.1:{port}")]
    );
    assert!(
        browser
            .resource_urls()
            .await
            .contains(&format!("{origin}/pixel.png")),
        "the image counts among the loaded URLs"
    );
    let cookies = browser.cookies().await;
    assert!(
        cookies
            .iter()
            .any(|c| c.name() == "visited" && c.value() == "1"),
        "the page's cookie is there: {cookies:?}"
    );

    let typed = r#"<b>Tea & "scones"</b>"#;
    browser.fill("#note", "this gets replaced").await;
    browser.fill("#note", typed).await;
    browser.click("#agree").await;
    assert!(browser.find("#agree").await.is_selected().await.unwrap());
    browser.click("#send").await;
    let result = browser.wait_for("#result", Duration::from_secs(5)).await;
    assert_eq!(result.text().await.unwrap(), typed, "shown back as text");
    assert!(
        browser.find_all("#result b").await.is_empty(),
        "the submitted markup was escaped"
    );
    assert_eq!(browser.text("#agreed").await, "yes");
    assert_eq!(browser.current_url().await.as_str(), format!("{origin}/"));
    assert!(browser.page_source().await.contains("&lt;b&gt;Tea &amp;"));
    assert_eq!(
        browser.resource_hosts().await,
        [format!("127.0.0.1:{port}")]
    );

    let shot = browser
        .screenshot("browser_harness_drives_a_local_page")
        .await;
    let bytes = std::fs::read(&shot).expect("the screenshot file exists");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        shot.display()
    );

    browser.delete_all_cookies().await;
    assert!(browser.cookies().await.is_empty());

    browser.close().await;
    handle.stop(false).await;
    eprintln!(
        "browser self-test: browser ready after {ready:?}, done after {:?}",
        started.elapsed()
    );
}
