//! From what a card's pass shows (the same template and values the Apple pass is built
//! from) to Google's classes and objects: a program becomes a `LoyaltyClass`, a member a
//! `LoyaltyObject`; a gift-card template a `GiftCardClass`, a card a `GiftCardObject`.
//! Only fields of Google's walletobjects v1 schema are sent.

use super::GoogleIssuer;
use crate::pass_content::PassContent;
use crate::template::{TemplateDocument, Value};
use serde_json::{json, Value as Json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Loyalty,
    GiftCard,
}

impl ObjectKind {
    /// The REST collection names: (class, object).
    pub fn collections(self) -> (&'static str, &'static str) {
        match self {
            ObjectKind::Loyalty => ("loyaltyClass", "loyaltyObject"),
            ObjectKind::GiftCard => ("giftCardClass", "giftCardObject"),
        }
    }
}

pub struct GoogleClass {
    pub kind: ObjectKind,
    pub id: String,
    pub body: Json,
}

pub struct GoogleObject {
    pub kind: ObjectKind,
    pub id: String,
    pub body: Json,
}

fn text(content: &PassContent, name: &str) -> String {
    content
        .context
        .get(name)
        .map(|v| v.format(content.template.document.default_language()))
        .unwrap_or_default()
}

/// A `LocalizedString`: the default language's text and its translations.
fn localized(doc: &TemplateDocument, content: &PassContent, key_or_text: &str) -> Json {
    let default = doc.default_language();
    let value = |lang: &str| {
        content
            .context
            .render(doc.localized(key_or_text, lang), lang)
    };
    let translated: Vec<Json> = doc
        .localizations
        .keys()
        .filter(|lang| lang.as_str() != default)
        .map(|lang| json!({"language": lang, "value": value(lang)}))
        .collect();
    let mut out = json!({"defaultValue": {"language": default, "value": value(default)}});
    if !translated.is_empty() {
        out["translatedValues"] = Json::Array(translated);
    }
    out
}

fn image(public_url: &str, content: &PassContent, file: &str) -> Option<Json> {
    content.template.assets.has(file).then(|| {
        let path = crate::urls::template_image_path(
            content.pass.merchant_id,
            &content.pass.template_id,
            content.template.version,
            file,
        );
        json!({"sourceUri": {"uri": format!("{public_url}{path}")}})
    })
}

/// The class's logo and hero image: the template's Google images when it has them
/// (`google_logo.png`, square, >= 660 px; `google_hero.png`, 1032x336), else its Apple
/// icon and strip, so templates made before Google's own images look as they did.
fn add_images(body: &mut Json, public_url: &str, content: &PassContent) {
    if let Some(logo) = image(public_url, content, "google_logo.png")
        .or_else(|| image(public_url, content, "icon@3x.png"))
        .or_else(|| image(public_url, content, "icon.png"))
    {
        body["programLogo"] = logo;
    }
    if let Some(hero) = image(public_url, content, "google_hero.png")
        .or_else(|| image(public_url, content, "strip@3x.png"))
    {
        body["heroImage"] = hero;
    }
}

fn color(doc: &TemplateDocument) -> String {
    crate::template::validate::hex_color(&doc.colors.background).unwrap_or_else(|| "#000000".into())
}

fn barcode(content: &PassContent) -> Option<Json> {
    let doc = &content.template.document;
    doc.barcode.as_ref().map(|b| {
        let kind = match b.format.as_str() {
            "pdf417" => "PDF_417",
            "aztec" => "AZTEC",
            "code128" => "CODE_128",
            _ => "QR_CODE",
        };
        let lang = doc.default_language();
        let value = b
            .message
            .as_deref()
            .map(|m| content.context.render(m, lang))
            .unwrap_or_else(|| content.card_number.clone());
        let mut out = json!({"type": kind, "value": value});
        if let Some(alt) = &b.alt_text {
            out["alternateText"] = json!(content.context.render(alt, lang));
        }
        out
    })
}

/// Back fields (and, for members, the tier) as text modules.
fn text_modules(content: &PassContent) -> Vec<Json> {
    let doc = &content.template.document;
    let mut modules: Vec<Json> = doc
        .fields
        .back
        .iter()
        .map(|f| {
            let mut m = json!({
                "id": f.key,
                "body": content.context.render(doc.localized(&f.value, doc.default_language()), doc.default_language()),
                "localizedBody": localized(doc, content, &f.value),
            });
            if let Some(label) = &f.label {
                m["header"] = json!(content.context.render(doc.localized(label, doc.default_language()), doc.default_language()));
                m["localizedHeader"] = localized(doc, content, label);
            }
            m
        })
        .collect();
    if let Some(tier) = doc
        .fields
        .groups()
        .iter()
        .flat_map(|(_, fs)| fs.iter())
        .find(|f| f.value.contains("{{tier}}"))
    {
        let tier_value = text(content, "tier");
        if !tier_value.is_empty() {
            let mut m = json!({"id": "tier", "body": tier_value});
            if let Some(label) = &tier.label {
                m["header"] = json!(doc.localized(label, doc.default_language()));
            }
            modules.insert(0, m);
        }
    }
    modules
}

/// The class a card's object belongs to: one per loyalty program, one per gift-card
/// template.
pub fn class_for(issuer: &GoogleIssuer, content: &PassContent, public_url: &str) -> GoogleClass {
    let doc = &content.template.document;
    let merchant = text(content, "merchant.name");
    let callback = json!({"url": format!("{public_url}/google/callbacks")});
    match content.program_id {
        Some(program_id) => {
            let mut body = json!({
                "id": issuer.id(&format!("program_{}", program_id.simple())),
                "issuerName": merchant,
                "programName": text(content, "program.name"),
                "hexBackgroundColor": color(doc),
                "reviewStatus": "UNDER_REVIEW",
                "callbackOptions": callback,
                "localizedIssuerName": {"defaultValue": {"language": doc.default_language(), "value": merchant}},
            });
            add_images(&mut body, public_url, content);
            GoogleClass {
                kind: ObjectKind::Loyalty,
                id: body["id"].as_str().unwrap_or_default().to_string(),
                body,
            }
        }
        None => {
            let mut body = json!({
                "id": issuer.id(&format!("giftcard_{}_{}", content.pass.merchant_id.simple(), content.pass.template_id)),
                "issuerName": merchant,
                "merchantName": merchant,
                "hexBackgroundColor": color(doc),
                "reviewStatus": "UNDER_REVIEW",
                "callbackOptions": callback,
            });
            // Without it Google shows no barcode on a gift card.
            if doc.barcode.is_some() {
                body["allowBarcodeRedemption"] = json!(true);
            }
            add_images(&mut body, public_url, content);
            GoogleClass {
                kind: ObjectKind::GiftCard,
                id: body["id"].as_str().unwrap_or_default().to_string(),
                body,
            }
        }
    }
}

/// The object of one card.
pub fn object_for(issuer: &GoogleIssuer, content: &PassContent, public_url: &str) -> GoogleObject {
    let class = class_for(issuer, content, public_url);
    let doc = &content.template.document;
    let id = issuer.id(&format!("pass_{}", content.pass.serial_number));
    let state = if content.voided { "INACTIVE" } else { "ACTIVE" };
    let mut body = match class.kind {
        ObjectKind::Loyalty => {
            let points = match content.context.get("points") {
                Some(Value::Number(n)) => *n,
                _ => 0,
            };
            let label = doc
                .fields
                .groups()
                .iter()
                .flat_map(|(_, fs)| fs.iter())
                .find(|f| f.value.contains("{{points}}"))
                .and_then(|f| f.label.as_deref())
                .map(|l| doc.localized(l, doc.default_language()).to_string())
                .unwrap_or_else(|| "Points".into());
            json!({
                "id": id,
                "classId": class.id,
                "state": state,
                "accountId": content.card_number,
                "accountName": text(content, "member.name"),
                "loyaltyPoints": {"label": label, "balance": {"int": points.clamp(i32::MIN as i64, i32::MAX as i64)}},
            })
        }
        ObjectKind::GiftCard => {
            let (micros, currency) = match content.context.get("balance") {
                Some(Value::Money(m)) => {
                    let per_major = m.currency.minor_per_major() as i128;
                    (
                        (i128::from(m.minor) * 1_000_000 / per_major).to_string(),
                        m.currency.code().to_string(),
                    )
                }
                _ => ("0".into(), text(content, "currency")),
            };
            json!({
                "id": id,
                "classId": class.id,
                "state": state,
                "cardNumber": content.card_number,
                "balance": {"micros": micros, "currencyCode": currency},
                "balanceUpdateTime": {"date": content.pass.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
            })
        }
    };
    if let Some(b) = barcode(content) {
        body["barcode"] = b;
    }
    // Validated as RFC 3339 with a zone, which Google's DateTime takes as it is.
    if let Some(end) = &doc.expiration_date {
        body["validTimeInterval"] = json!({"end": {"date": end}});
    }
    let modules = text_modules(content);
    if !modules.is_empty() {
        body["textModulesData"] = Json::Array(modules);
    }
    GoogleObject {
        kind: class.kind,
        id,
        body,
    }
}
