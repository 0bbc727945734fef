//! Save links: the object body built and the RS256 JWT signed, per second on one core,
//! against the raw RSA-2048 signature rate of the same key in the same process.
//!
//! Run: `taskset -c 0 cargo bench --bench google`

use passmint::apple::pkpass::TemplateAssets;
use passmint::configuration::Settings;
use passmint::domain::{Currency, Money};
use passmint::google::objects::object_for;
use passmint::google::save_link::save_url;
use passmint::google::GoogleIssuer;
use passmint::models::Pass;
use passmint::pass_content::{LoadedTemplate, PassContent};
use passmint::template::{examples, validate, Context, Value};
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
    let (mut raw, mut links) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        raw.push(rate(
            |_| {
                let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                let claims = serde_json::json!({"m": String::from_utf8_lossy(&message)});
                black_box(jsonwebtoken::encode(&header, &claims, &issuer.key).unwrap());
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
    raw.sort_by(|a, b| a.total_cmp(b));
    links.sort_by(|a, b| a.total_cmp(b));
    let (raw, links) = (raw[1], links[1]);
    println!("raw RS256 JWT signatures (RSA-2048, jsonwebtoken): {raw:.0}/s");
    println!("gift-card object + signed save link: {links:.0}/s (target >= 5000/s); ratio to raw signing {:.2}", links / raw);
}
