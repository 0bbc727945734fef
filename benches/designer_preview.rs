//! The pass designer's live preview over HTTP (issue 14: p95 within 50 ms): `POST
//! /api/v1/templates/{id}/preview` for each example template, a different colour and label
//! on every request as when someone types, one request at a time; against, in the same
//! run, the plain `GET` of the template over the same connection and the real pass.json
//! built in-process for the same document. Also: a 3000x2000 JPEG fitted into the logo
//! slot, in-process and as the `PUT .../images/logo` upload.
//!
//! Run: `cargo bench --bench designer_preview` (`PREVIEW_N` requests per template, 500
//! by default). A release `passfold serve` on its own private cluster in a temporary folder.

use passfold::apple::pass_json::{render, PassInput};
use passfold::template::preview::SampleCard;
use passfold::template::{examples, fit, validate};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_passfold");

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0),
        samples.len()
    )
}

fn photo(width: u32, height: u32) -> Vec<u8> {
    let img = image::ImageBuffer::from_fn(width, height, |x, y| {
        image::Rgb([
            (x / 12 % 256) as u8,
            (y / 8 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88)
        .encode_image(&img)
        .unwrap();
    out
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("PREVIEW_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = std::env::temp_dir().join(format!("passfold-preview-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = |cmd: &mut Command| {
        cmd.env_remove("DATABASE_URL")
            .env("PASSFOLD_DATA_DIR", dir.join("data"))
            .env("PASSFOLD_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn");
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").stderr(Stdio::inherit());
    env(&mut cmd);
    let mut server = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["merchant", "create", "--name", "Preview Bench"]);
    env(&mut cmd);
    let merchant: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    let admin = merchant["admin_key"].as_str().unwrap().to_string();

    for example in examples::all() {
        let id = example.id;
        let get_url = format!("{base}/api/v1/templates/{id}");
        let preview_url = format!("{get_url}/preview");
        // Warm-up: connection, template cache, code paths.
        for _ in 0..20 {
            let res = client
                .post(&preview_url)
                .bearer_auth(&admin)
                .json(&json!({"template": example.document}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.bytes().await.unwrap();
        }
        let mut previews = Vec::with_capacity(n);
        let mut bytes = 0;
        for i in 0..n {
            // What typing does: each request a slightly different draft.
            let mut draft = example.document.clone();
            draft["colors"]["background"] =
                json!(format!("#{:02x}{:02x}40", i % 256, (i * 7) % 256));
            draft["name"] = json!(format!("Draft {i}"));
            let started = Instant::now();
            let res = client
                .post(&preview_url)
                .bearer_auth(&admin)
                .json(&json!({"template": draft}))
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap();
            previews.push(started.elapsed());
            assert!(body["html"].is_string(), "{body}");
            bytes = body["html"].as_str().unwrap().len();
        }
        let mut gets = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            let res = client
                .get(&get_url)
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            res.bytes().await.unwrap();
            gets.push(started.elapsed());
        }
        // The real builder alone, in-process, on the same document.
        let document = validate::parse_document(&example.document, &example.images).unwrap();
        let card = SampleCard::sample(document.kind, "Preview Bench", &base);
        let mut builds = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            let parsed = validate::check_document_alone(&example.document).unwrap();
            let pass = render(&PassInput {
                template: &parsed,
                context: &card.context,
                pass_type_id: "pass.bench",
                team_id: "TEAM",
                serial_number: "bench",
                authentication_token: "bench-token-bench-token",
                web_service_url: "http://127.0.0.1/apple",
                voided: false,
                card_number: &card.card_number,
                message: None,
            });
            std::hint::black_box(pass);
            builds.push(started.elapsed());
        }
        println!("{id}:");
        println!(
            "  POST preview over HTTP        {} ({bytes} bytes of HTML)",
            percentiles(previews)
        );
        println!("  GET template over HTTP        {}", percentiles(gets));
        println!("  validate + pass.json in-proc  {}", percentiles(builds));
    }

    // A large JPEG logo: the fit alone, then the upload (fit + publish) over HTTP.
    let jpeg = photo(3000, 2000);
    let mut fits = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let fitted = fit::fit(&jpeg, fit::Slot::Logo).unwrap();
        std::hint::black_box(fitted);
        fits.push(started.elapsed());
    }
    let mut uploads = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let res = client
            .put(format!(
                "{base}/api/v1/templates/loyalty-default/images/logo"
            ))
            .bearer_auth(&admin)
            .header("content-type", "image/jpeg")
            .body(jpeg.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
        uploads.push(started.elapsed());
    }
    println!(
        "3000x2000 JPEG ({} kB) into the logo slot:",
        jpeg.len() / 1024
    );
    println!("  fit in-process                {}", percentiles(fits));
    println!("  PUT images/logo over HTTP     {}", percentiles(uploads));

    // SIGTERM, so the server stops its private cluster on the way out.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
