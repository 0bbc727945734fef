//! Webhook throughput: events queued in the database (by the one writer,
//! `passfold_webhook_events`, as the fact triggers and `webhooks::events::emit` queue them)
//! and delivered by the release server's outbox loop to a receiver on loopback, which
//! checks every signature (Standard Webhooks, HMAC-SHA256) and counts. Events/s from the
//! commit to the last delivery, with the server's resident memory; against a reference run
//! in the same script: a plain HTTP client POSTing the same number of signed bodies to the
//! same receiver with the same parallelism (one stream per endpoint, since delivery is in
//! order per endpoint), which is the ceiling of what any in-order sender can do here.
//!
//! Two shapes: one endpoint, and ten endpoints of one merchant each receiving every event.
//!
//! Run: `cargo bench --bench webhooks` (`WEBHOOK_EVENTS`, default 20000 per shape;
//! `WEBHOOK_SERVER_LOG` for the server's `RUST_LOG`).

#[path = "support/members.rs"]
mod support;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use diesel::connection::SimpleConnection;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{loadavg, status_kb, Bench};

/// What the receiver saw: deliveries per endpoint path, bad signatures, the last arrival.
#[derive(Default)]
struct Seen {
    delivered: AtomicU64,
    bad: AtomicU64,
    last: Mutex<Option<Instant>>,
    /// Secret (raw key bytes) per endpoint path.
    keys: Mutex<HashMap<String, Vec<u8>>>,
}

fn hmac(key: &[u8], text: &str) -> String {
    let key = PKey::hmac(key).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
    s.update(text.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(s.sign_to_vec().unwrap())
}

async fn receive(req: HttpRequest, body: web::Bytes, seen: web::Data<Arc<Seen>>) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let key = seen.keys.lock().unwrap().get(req.path()).cloned();
    let ok = key.is_some_and(|key| {
        let signed = format!(
            "{}.{}.{}",
            header("webhook-id"),
            header("webhook-timestamp"),
            String::from_utf8_lossy(&body)
        );
        let want = format!("v1,{}", hmac(&key, &signed));
        header("webhook-signature").split(' ').any(|s| s == want)
    });
    if !ok {
        seen.bad.fetch_add(1, Ordering::Relaxed);
    }
    seen.delivered.fetch_add(1, Ordering::Relaxed);
    *seen.last.lock().unwrap() = Some(Instant::now());
    HttpResponse::NoContent().finish()
}

fn secret_bytes(secret: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a whsec_ secret")
}

/// Waits until the receiver has `want` deliveries (or 10 minutes pass); the time from
/// `since` to the last one.
async fn wait_for(seen: &Seen, want: u64, since: Instant) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen.delivered.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = seen.delivered.load(Ordering::Relaxed);
    assert!(got >= want, "only {got} of {want} delivered in 10 minutes");
    seen.last
        .lock()
        .unwrap()
        .unwrap()
        .duration_since(since)
        .as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::var("WEBHOOK_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!("load average at start: {}", loadavg());
    let seen = Arc::new(Seen::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new({
        let seen = seen.clone();
        move || {
            App::new()
                .app_data(web::Data::new(seen.clone()))
                .default_service(web::post().to(receive))
        }
    })
    .listen(listener)
    .unwrap()
    .workers(2)
    .run();
    let server_handle = server.handle();
    tokio::spawn(server);

    // `WEBHOOK_SERVER_LOG=passfold::outbox=debug` shows each batch's claim, plan, send and
    // settle times.
    let log = std::env::var("WEBHOOK_SERVER_LOG").unwrap_or_else(|_| "warn".into());
    let bench = Bench::start(
        "webhooks",
        &[("PASSFOLD_WEBHOOKS_ALLOW_PRIVATE", "1"), ("RUST_LOG", &log)],
    )
    .await;
    let mut conn = bench.connect();
    let pid = bench.server_pid();

    for endpoints in [1usize, 10] {
        let shape = format!("{endpoints} endpoint(s)");
        // Fresh endpoints for the shape: the old ones are deleted with their queues.
        for _ in 0..endpoints {
            let path = format!("/hook/{}-{}", endpoints, seen.keys.lock().unwrap().len());
            let res: Value = bench
                .client
                .post(format!("{}/api/v1/webhooks", bench.base))
                .bearer_auth(&bench.admin)
                .json(&json!({"url": format!("http://127.0.0.1:{port}{path}"),
                              "events": ["member.updated"]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let secret = res["secret"].as_str().expect("the endpoint's secret");
            seen.keys.lock().unwrap().insert(path, secret_bytes(secret));
        }
        let before = seen.delivered.load(Ordering::Relaxed);
        let want = before + n * endpoints as u64;
        let rss_before = status_kb(pid, "VmRSS");
        // The events, as the one writer queues them (one message, one outbox row per
        // endpoint), committed at once.
        let started = Instant::now();
        conn.batch_execute(&format!(
            "SELECT passfold_webhook_events(
                 array_fill('{m}'::uuid, ARRAY[{n}]), 'member.updated',
                 ARRAY(SELECT jsonb_build_object('member_id', gen_random_uuid(), 'n', g)
                         FROM generate_series(1, {n}) g),
                 array_fill(now(), ARRAY[{n}]))",
            m = bench.merchant_id
        ))
        .unwrap();
        let queued = started.elapsed().as_secs_f64();
        let took = wait_for(&seen, want, started).await;
        let rate = (n * endpoints as u64) as f64 / took;
        println!(
            "passfold, {shape}: {} deliveries in {took:.2} s ({queued:.2} s to queue): {rate:.0} events/s; server VmRSS {} -> {} kB, VmHWM {} kB",
            n * endpoints as u64,
            rss_before,
            status_kb(pid, "VmRSS"),
            status_kb(pid, "VmHWM"),
        );

        // The reference: the same number of signed bodies, one sequential stream per
        // endpoint, from a plain client to the same receiver.
        let keys: Vec<(String, Vec<u8>)> = seen
            .keys
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("/hook/{endpoints}-")))
            .map(|(p, k)| (p.clone(), k.clone()))
            .collect();
        let before = seen.delivered.load(Ordering::Relaxed);
        let client = reqwest::Client::new();
        let started = Instant::now();
        let streams = keys.into_iter().map(|(path, key)| {
            let client = client.clone();
            async move {
                for i in 0..n {
                    let id = format!("msg_ref{i}");
                    let ts = chrono::Utc::now().timestamp().to_string();
                    let body = json!({"type": "member.updated",
                                      "timestamp": chrono::Utc::now().to_rfc3339(),
                                      "data": {"member_id": uuid::Uuid::new_v4(), "n": i}})
                    .to_string();
                    let sig = hmac(&key, &format!("{id}.{ts}.{body}"));
                    let res = client
                        .post(format!("http://127.0.0.1:{port}{path}"))
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", &ts)
                        .header("webhook-signature", format!("v1,{sig}"))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(res.status().is_success());
                }
            }
        });
        futures_util::future::join_all(streams).await;
        let ref_took = wait_for(&seen, before + n * endpoints as u64, started).await;
        let ref_rate = (n * endpoints as u64) as f64 / ref_took;
        println!(
            "reference, {shape}: {} POSTs in {ref_took:.2} s: {ref_rate:.0} events/s; ratio {:.2}",
            n * endpoints as u64,
            rate / ref_rate
        );
        // The next shape's endpoints alone: delete these.
        let list: Value = bench
            .client
            .get(format!("{}/api/v1/webhooks", bench.base))
            .bearer_auth(&bench.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in list["webhooks"].as_array().into_iter().flatten() {
            bench
                .client
                .delete(format!(
                    "{}/api/v1/webhooks/{}",
                    bench.base,
                    e["id"].as_str().unwrap()
                ))
                .bearer_auth(&bench.admin)
                .send()
                .await
                .unwrap();
        }
    }
    let bad = seen.bad.load(Ordering::Relaxed);
    println!("bad signatures: {bad}");
    assert_eq!(bad, 0, "every delivery verifies");
    println!("load average at end: {}", loadavg());
    server_handle.stop(true).await;
}
