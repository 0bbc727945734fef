//! Fresh pass builds per second against the raw RSA-2048 sign rate of the same process
//! (the signature is the floor cost of a pass; everything else must be nearly free).
//!
//! Run: `taskset -c 0 cargo bench --bench pkpass` (one core). Rounds alternate between the
//! two measurements so that frequency drift hits both alike; the medians are compared.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use passfold::apple::assets::TemplateAssets;
use passfold::apple::identity::example;
use passfold::apple::pass_json::{render, PassInput};
use passfold::apple::pkpass::build;
use passfold::apple::SigningIdentity;
use passfold::configuration::{AppleIdentitySource, AppleSettings};
use passfold::domain::{Currency, Money};
use passfold::template::{examples, validate, Context, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn rate(mut f: impl FnMut(u64), window: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < window {
        f(n);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let identity = SigningIdentity::load(&AppleSettings {
        pass_type_id: None,
        team_id: None,
        source: AppleIdentitySource::Example,
        wwdr: None,
    })
    .expect("example identity");
    let key = PKey::private_key_from_pem(example::PASS_KEY).unwrap();
    let example = examples::all()
        .into_iter()
        .find(|e| e.id == "gift-card-default")
        .unwrap();
    let document = validate::parse_document(&example.document, &example.images).unwrap();
    // Hashed once per template version, as the service does.
    let assets = TemplateAssets::new(&example.images);
    let eur = Currency::parse("EUR").unwrap();
    // A manifest-sized message for the raw signature.
    let message = vec![b'x'; 700];

    let window = Duration::from_millis(1500);
    let (mut signs, mut builds) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..5 {
        signs.push(rate(
            |_| {
                let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
                signer.update(&message).unwrap();
                black_box(signer.sign_to_vec().unwrap());
            },
            window,
        ));
        builds.push(rate(
            |i| {
                let mut context = Context::default();
                let gan = format!("{:016}", 4_000_000_000_000_000u64 + i);
                context
                    .set("merchant.name", Value::Text("Кофейня Ромашка".into()))
                    .set("gan", Value::Text(gan.clone()))
                    .set("card_number", Value::Text(gan.clone()))
                    .set("balance", Value::Money(Money::new(1250 + i as i64, eur)))
                    .set("currency", Value::Text("EUR".into()));
                let serial = format!("pmbench{i:016}");
                let rendered = render(&PassInput {
                    template: &document,
                    context: &context,
                    pass_type_id: &identity.pass_type_id,
                    team_id: &identity.team_id,
                    serial_number: &serial,
                    authentication_token: "abcdefghijklmnopqrstuvwxyz012345",
                    web_service_url: "https://cards.example.com/apple",
                    voided: false,
                    card_number: &gan,
                    message: None,
                });
                let bytes = build(&identity, &rendered, &assets).unwrap();
                size = bytes.len();
                black_box(bytes);
            },
            window,
        ));
    }
    let (sign, fresh) = (median(signs), median(builds));
    println!("raw RSA-2048 signatures (SHA-256, openssl crate): {sign:.0}/s");
    println!("fresh signed .pkpass builds (gift-card-default, {size} bytes): {fresh:.0}/s");
    println!("ratio fresh/sign: {:.3} (target >= 0.85)", fresh / sign);
}
