//! Save links: the object body built and the RS256 JWT signed, per second on one core,
//! against the raw RSA-2048 signature rate of the same key in the same process.
//!
//! Run: `taskset -c 0 cargo bench --bench google`

use passfold::apple::assets::TemplateAssets;
use passfold::configuration::Settings;
use passfold::domain::{Currency, Money};
use passfold::google::objects::object_for;
use passfold::google::save_link::save_url;
use passfold::google::GoogleIssuer;
use passfold::models::Pass;
use passfold::pass_content::{LoadedTemplate, PassContent};
use passfold::template::{examples, validate, Context, Value};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rate(mut f: impl FnMut(u64), window: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < window {
        f(n);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let settings = Settings::from_lookup(|_| None).unwrap();
    let issuer = GoogleIssuer::load(&settings.google).unwrap();
    let example = examples::all()
        .into_iter()
        .find(|e| e.id == "gift-card-default")
        .unwrap();
    let template = Arc::new(LoadedTemplate {
        version: 1,
        updated_at: chrono::Utc::now(),
        document: validate::parse_document(&example.document, &example.images).unwrap(),
        assets: TemplateAssets::new(&example.images),
    });
    let eur = Currency::parse("EUR").unwrap();
    let content = |i: u64| {
        let gan = format!("{:016}", 4_000_000_000_000_000u64 + i);
        let mut context = Context::default();
        context
            .set("merchant.name", Value::Text("Кофейня Ромашка".into()))
            .set("gan", Value::Text(gan.clone()))
            .set("card_number", Value::Text(gan.clone()))
            .set("balance", Value::Money(Money::new(1250 + i as i64, eur)))
            .set("currency", Value::Text("EUR".into()));
        PassContent {
            pass: Pass {
                id: uuid::Uuid::new_v4(),
                merchant_id: uuid::Uuid::nil(),
                serial_number: format!("pmbench{i:016}"),
                member_id: None,
                gift_card_id: Some(uuid::Uuid::nil()),
                template_id: "gift-card-default".into(),
                authentication_token: "x".repeat(32),
                download_token: "y".repeat(32),
                update_tag: i as i64,
                updated_at: chrono::Utc::now(),
                created_at: chrono::Utc::now(),
                message_header: None,
                message_body: None,
                message_at: None,
            },
            template: template.clone(),
            context,
            card_number: gan,
            voided: false,
            program_id: None,
        }
    };
    let window = Duration::from_millis(2000);
    let message = vec![b'x'; 900];
    // The reference: one RSA-2048 PKCS#1 v1.5 SHA-256 signature by OpenSSL with the same key.
    let account: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/certs-example/google-service-account.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let pkey = openssl::pkey::PKey::private_key_from_pem(
        account["private_key"].as_str().unwrap().as_bytes(),
    )
    .unwrap();
    let cached = passfold::google::save_link::SaveLinks::new(10_000);
    let ids: Vec<uuid::Uuid> = (0..1000).map(|_| uuid::Uuid::new_v4()).collect();
    let (mut raw, mut links) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        raw.push(rate(
            |_| {
                let mut signer =
                    openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)
                        .unwrap();
                black_box(signer.sign_oneshot_to_vec(&message).unwrap());
            },
            window,
        ));
        links.push(rate(
            |i| {
                let c = content(i);
                let object = object_for(&issuer, &c, "https://cards.example.com");
                black_box(save_url(&issuer, &object, "https://cards.example.com").unwrap());
            },
            window,
        ));
    }
    // An unchanged card's link, as a member answer gets it: from the per-version cache.
    let hits = rate(
        |i| {
            let id = ids[(i % 1000) as usize];
            match cached.get(id, 1) {
                Some(url) => {
                    black_box(url);
                }
                None => {
                    let object = object_for(&issuer, &content(i), "https://cards.example.com");
                    let url = save_url(&issuer, &object, "https://cards.example.com").unwrap();
                    cached.put(id, 1, url.as_str().into());
                }
            }
        },
        window,
    );
    raw.sort_by(|a, b| a.total_cmp(b));
    links.sort_by(|a, b| a.total_cmp(b));
    let (raw, links) = (raw[1], links[1]);
    println!("raw RSA-2048 SHA-256 signatures (OpenSSL, same key): {raw:.0}/s");
    println!("gift-card object + signed save link: {links:.0}/s (target >= 5000/s); ratio to raw signing {:.2}", links / raw);
    println!("save link of an unchanged card (per-version cache, 1,000 cards): {hits:.0}/s");
}
