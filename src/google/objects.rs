//! From what a card's pass shows (the same template and values the Apple pass is built
//! from) to Google's classes and objects: a program becomes a `LoyaltyClass`, a member a
//! `LoyaltyObject`; a gift-card template a `GiftCardClass`, a card a `GiftCardObject`.
//! Only fields of Google's walletobjects v1 schema are sent.

use super::GoogleIssuer;
use crate::pass_content::PassContent;
use crate::template::{Context, TemplateDocument, Value};
use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use uuid::Uuid;

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

/// The URL of a template image by file name, `None` when the template has none of that name.
pub type ImageUrl<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// What a card's Google class and object are made of: the template and placeholder values
/// its Apple pass is built from too. Real cards get it from their [`PassContent`]; the
/// designer's preview makes one from a draft and sample values, so both go through
/// [`class_of`] and [`object_of`] and cannot show different things.
pub struct GoogleCard<'a> {
    pub document: &'a TemplateDocument,
    pub context: &'a Context,
    /// What the barcode carries by default: the card number or GAN.
    pub card_number: &'a str,
    pub voided: bool,
    /// The loyalty program of a member's card (its class follows the program).
    pub program_id: Option<Uuid>,
    pub merchant_id: Uuid,
    pub template_id: &'a str,
    pub serial_number: &'a str,
    pub updated_at: DateTime<Utc>,
    /// The URL of the template's image of that file name, if it has one.
    pub image_url: ImageUrl<'a>,
}

impl<'a> GoogleCard<'a> {
    /// A real card's: its template's images at their public URLs.
    pub fn of(content: &'a PassContent, public_url: &'a str) -> Self {
        let pass = &content.pass;
        let template = &content.template;
        GoogleCard {
            document: &template.document,
            context: &content.context,
            card_number: &content.card_number,
            voided: content.voided,
            program_id: content.program_id,
            merchant_id: pass.merchant_id,
            template_id: &pass.template_id,
            serial_number: &pass.serial_number,
            updated_at: pass.updated_at,
            image_url: Box::new(move |file| {
                template.assets.has(file).then(|| {
                    let path = crate::urls::template_image_path(
                        pass.merchant_id,
                        &pass.template_id,
                        template.version,
                        file,
                    );
                    format!("{public_url}{path}")
                })
            }),
        }
    }
}

fn text(card: &GoogleCard<'_>, name: &str) -> String {
    card.context
        .get(name)
        .map(|v| v.format(card.document.default_language()))
        .unwrap_or_default()
}

/// A `LocalizedString`: the default language's text and its translations.
fn localized(doc: &TemplateDocument, card: &GoogleCard<'_>, key_or_text: &str) -> Json {
    let default = doc.default_language();
    let value = |lang: &str| card.context.render(doc.localized(key_or_text, lang), lang);
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

fn image(card: &GoogleCard<'_>, file: &str) -> Option<Json> {
    (card.image_url)(file).map(|uri| json!({"sourceUri": {"uri": uri}}))
}

/// The class's logo and hero image: the template's Google images when it has them
/// (`google_logo.png`, square, >= 660 px; `google_hero.png`, 1032x336), else its Apple
/// icon and strip, so templates made before Google's own images look as they did.
fn add_images(body: &mut Json, card: &GoogleCard<'_>) {
    if let Some(logo) = image(card, "google_logo.png")
        .or_else(|| image(card, "icon@3x.png"))
        .or_else(|| image(card, "icon.png"))
    {
        body["programLogo"] = logo;
    }
    if let Some(hero) = image(card, "google_hero.png").or_else(|| image(card, "strip@3x.png")) {
        body["heroImage"] = hero;
    }
}

fn color(doc: &TemplateDocument) -> String {
    crate::template::validate::hex_color(&doc.colors.background).unwrap_or_else(|| "#000000".into())
}

fn barcode(card: &GoogleCard<'_>) -> Option<Json> {
    let doc = &card.document;
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
            .map(|m| card.context.render(m, lang))
            .unwrap_or_else(|| card.card_number.to_string());
        let mut out = json!({"type": kind, "value": value});
        if let Some(alt) = &b.alt_text {
            out["alternateText"] = json!(card.context.render(alt, lang));
        }
        out
    })
}

/// Back fields (and, for members, the tier) as text modules.
fn text_modules(card: &GoogleCard<'_>) -> Vec<Json> {
    let doc = &card.document;
    let mut modules: Vec<Json> = doc
        .fields
        .back
        .iter()
        .map(|f| {
            let mut m = json!({
                "id": f.key,
                "body": card.context.render(doc.localized(&f.value, doc.default_language()), doc.default_language()),
                "localizedBody": localized(doc, card, &f.value),
            });
            if let Some(label) = &f.label {
                m["header"] = json!(card.context.render(doc.localized(label, doc.default_language()), doc.default_language()));
                m["localizedHeader"] = localized(doc, card, label);
            }
            m
        })
        .collect();
    if let Some((header, body)) = crate::messages::expiry_note(card.context, doc.default_language())
    {
        let id = crate::messages::EXPIRY_FIELD_KEY;
        if !modules.iter().any(|m| m["id"] == id) {
            modules.push(json!({"id": id, "header": header, "body": body}));
        }
    }
    if let Some(tier) = doc
        .fields
        .groups()
        .iter()
        .flat_map(|(_, fs)| fs.iter())
        .find(|f| f.value.contains("{{tier}}"))
    {
        let tier_value = text(card, "tier");
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
    class_of(issuer, &GoogleCard::of(content, public_url), public_url)
}

/// The object of one card.
pub fn object_for(issuer: &GoogleIssuer, content: &PassContent, public_url: &str) -> GoogleObject {
    object_of(issuer, &GoogleCard::of(content, public_url), public_url)
}

/// [`class_for`] from its parts (what the designer's preview calls).
pub fn class_of(issuer: &GoogleIssuer, card: &GoogleCard<'_>, public_url: &str) -> GoogleClass {
    let doc = &card.document;
    let merchant = text(card, "merchant.name");
    let callback = json!({"url": format!("{public_url}/google/callbacks")});
    match card.program_id {
        Some(program_id) => {
            let mut body = json!({
                "id": issuer.id(&format!("program_{}", program_id.simple())),
                "issuerName": merchant,
                "programName": text(card, "program.name"),
                "hexBackgroundColor": color(doc),
                "reviewStatus": "UNDER_REVIEW",
                "callbackOptions": callback,
                "localizedIssuerName": {"defaultValue": {"language": doc.default_language(), "value": merchant}},
            });
            add_images(&mut body, card);
            GoogleClass {
                kind: ObjectKind::Loyalty,
                id: body["id"].as_str().unwrap_or_default().to_string(),
                body,
            }
        }
        None => {
            let mut body = json!({
                "id": issuer.id(&format!("giftcard_{}_{}", card.merchant_id.simple(), card.template_id)),
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
            add_images(&mut body, card);
            GoogleClass {
                kind: ObjectKind::GiftCard,
                id: body["id"].as_str().unwrap_or_default().to_string(),
                body,
            }
        }
    }
}

/// [`object_for`] from its parts (what the designer's preview calls).
pub fn object_of(issuer: &GoogleIssuer, card: &GoogleCard<'_>, public_url: &str) -> GoogleObject {
    let class = class_of(issuer, card, public_url);
    let doc = &card.document;
    let id = issuer.id(&format!("pass_{}", card.serial_number));
    // A voided loyalty card is an erased member's: EXPIRED, as Google calls a card that has
    // ended; a voided gift card is deactivated (INACTIVE).
    let state = match (card.voided, card.program_id) {
        (false, _) => "ACTIVE",
        (true, Some(_)) => "EXPIRED",
        (true, None) => "INACTIVE",
    };
    let mut body = match class.kind {
        ObjectKind::Loyalty => {
            let points = match card.context.get("points") {
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
                "accountId": card.card_number,
                "accountName": text(card, "member.name"),
                "loyaltyPoints": {"label": label, "balance": {"int": points.clamp(i32::MIN as i64, i32::MAX as i64)}},
            })
        }
        ObjectKind::GiftCard => {
            let (micros, currency) = match card.context.get("balance") {
                Some(Value::Money(m)) => {
                    let per_major = m.currency.minor_per_major() as i128;
                    (
                        (i128::from(m.minor) * 1_000_000 / per_major).to_string(),
                        m.currency.code().to_string(),
                    )
                }
                _ => ("0".into(), text(card, "currency")),
            };
            json!({
                "id": id,
                "classId": class.id,
                "state": state,
                "cardNumber": card.card_number,
                "balance": {"micros": micros, "currencyCode": currency},
                "balanceUpdateTime": {"date": card.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
            })
        }
    };
    if let Some(b) = barcode(card) {
        body["barcode"] = b;
    }
    // Validated as RFC 3339 with a zone, which Google's DateTime takes as it is.
    if let Some(end) = &doc.expiration_date {
        body["validTimeInterval"] = json!({"end": {"date": end}});
    }
    let modules = text_modules(card);
    if !modules.is_empty() {
        body["textModulesData"] = Json::Array(modules);
    }
    GoogleObject {
        kind: class.kind,
        id,
        body,
    }
}
