//! The pass designer's live preview: the Apple pass (front and back) and the Google card of
//! a draft template, drawn from the JSON the real builders make for it.
//!
//! Nothing here decides what a card shows. The draft is checked by the validator the
//! template API uses; the Apple side is `apple::pass_json::render`, the function every
//! signed pass goes through, and the Google side `google::objects::{class_of, object_of}`,
//! the functions behind every class, object and save link. The HTML is drawn only from
//! their JSON answers, so a preview cannot show what a phone would not.
//!
//! Colours and CSP: the console's `style-src` is `'self'` (no `unsafe-inline`), so the HTML
//! carries no style attribute and no `<style>`. Its stylesheet ([`STYLESHEET`]) is static
//! and reads every colour from CSS custom properties ([`Preview::colors`]). The page sets
//! them on the preview's root: from its script with `element.style.setProperty` (the CSSOM,
//! which CSP does not restrict), or, for a page drawn on the server (JavaScript off), in its
//! nonce'd `<style>` from [`Preview::colors_css`]. The same values are on the root as
//! `data-*` attributes. Images are `'self'` URLs of stored images or `data:` URIs of images
//! at hand ([`PreviewImages`]), both allowed by `img-src 'self' data:`.

use super::barcode;
use super::images::Images;
use super::reason::TemplateProblem;
use super::{validate, Context, TemplateDocument, Value};
use crate::apple::assets::TemplateAssets;
use crate::apple::pass_json::{render as render_pass_json, PassInput};
use crate::domain::{Currency, Money, TemplateKind};
use crate::google::objects::{class_of, object_of, GoogleCard};
use crate::google::GoogleIssuer;
use base64::Engine;
use maud::{html, Markup, PreEscaped};
use serde_json::Value as Json;
use uuid::Uuid;

/// The preview's stylesheet, to be served by the page that shows it.
pub const STYLESHEET: &str = include_str!("preview.css");

/// Placeholder identifiers of the previewed pass: shown nowhere, but `pass.json` needs them.
const SAMPLE_SERIAL: &str = "preview";
const SAMPLE_PASS_TYPE: &str = "pass.preview";
const SAMPLE_TEAM: &str = "PREVIEW";

/// Where the preview's images come from.
pub enum PreviewImages<'a> {
    /// Images at hand (a draft not stored, a test): drawn as `data:` URIs.
    Inline(&'a Images),
    /// A stored template version's: drawn from their public URLs, which the browser caches.
    Stored {
        assets: &'a TemplateAssets,
        merchant_id: Uuid,
        template_id: &'a str,
        version: i32,
    },
}

impl PreviewImages<'_> {
    fn has(&self, file: &str) -> bool {
        match self {
            PreviewImages::Inline(images) => images.contains_key(file),
            PreviewImages::Stored { assets, .. } => assets.has(file),
        }
    }

    /// The image as a URL, with the public URL in front for stored ones (as Google gets
    /// them).
    fn url(&self, file: &str, public_url: &str) -> Option<String> {
        match self {
            PreviewImages::Inline(images) => images.get(file).map(|bytes| {
                format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                )
            }),
            PreviewImages::Stored {
                assets,
                merchant_id,
                template_id,
                version,
            } => assets.has(file).then(|| {
                let path =
                    crate::urls::template_image_path(*merchant_id, template_id, *version, file);
                format!("{public_url}{path}")
            }),
        }
    }
}

/// The card the preview shows: its placeholder values and default barcode message.
pub struct SampleCard {
    pub context: Context,
    pub card_number: String,
    /// A member's loyalty program, whose Google class the card would belong to.
    pub program_id: Option<Uuid>,
}

impl SampleCard {
    /// Made-up values of every placeholder of the kind, so that each field shows something.
    pub fn sample(kind: TemplateKind, merchant_name: &str, public_url: &str) -> SampleCard {
        let mut context = Context::default();
        context.set("merchant.name", Value::Text(merchant_name.to_string()));
        let card_number = match kind {
            TemplateKind::Loyalty => {
                let number = "2000 1234 5678".to_string();
                context
                    .set("program.name", Value::Text("Coffee Club".into()))
                    .set("member.name", Value::Text("Alex Morgan".into()))
                    .set("member.first_name", Value::Text("Alex".into()))
                    .set("card_number", Value::Text(number.clone()))
                    .set("points", Value::Number(1250))
                    .set("tier", Value::Text("Gold".into()))
                    .set(
                        "referral_url",
                        Value::Text(crate::urls::referral_url(public_url, "SAMPLE")),
                    );
                number
            }
            TemplateKind::GiftCard => {
                let gan = "6000 0000 1234 5678".to_string();
                let eur = Currency::parse("EUR").ok();
                context
                    .set("gan", Value::Text(gan.clone()))
                    .set("card_number", Value::Text(gan.clone()))
                    .set("currency", Value::Text("EUR".into()));
                if let Some(eur) = eur {
                    context.set("balance", Value::Money(Money::new(5000, eur)));
                }
                gan
            }
        };
        SampleCard {
            context,
            card_number,
            program_id: (kind == TemplateKind::Loyalty).then(Uuid::nil),
        }
    }
}

/// Everything a preview is made from.
pub struct PreviewInput<'a> {
    /// The draft as the designer has it (any JSON: it is validated here).
    pub document: &'a Json,
    pub images: PreviewImages<'a>,
    pub card: &'a SampleCard,
    pub merchant_id: Uuid,
    pub template_id: &'a str,
    pub issuer: &'a GoogleIssuer,
    /// `PASSFOLD_PUBLIC_URL`
    pub public_url: &'a str,
    /// The language of the phone to draw for (one of the template's `localizations`);
    /// `None`, or one the template lacks: its default language.
    pub language: Option<&'a str>,
}

/// The preview's colours, as CSS custom properties (name, `#rrggbb`).
pub type Colors = Vec<(&'static str, String)>;

pub struct Preview {
    /// The three faces, in one `div.pf-preview`.
    pub html: String,
    /// What the real builders make of the draft.
    pub apple_pass: Json,
    pub google_class: Json,
    pub google_object: Json,
    pub colors: Colors,
    /// The language drawn.
    pub language: String,
}

impl Preview {
    /// The colours as one CSS rule for `selector`, for a page's nonce'd `<style>`. Every
    /// value is a `#rrggbb` rebuilt from parsed numbers, so nothing typed reaches the CSS.
    pub fn colors_css(&self, selector: &str) -> String {
        let mut css = format!("{selector}{{");
        for (name, value) in &self.colors {
            css.push_str(&format!("{name}:{value};"));
        }
        css.push('}');
        css
    }
}

/// The preview of a draft, or the validator's problems (pointers into the document).
pub fn render(input: &PreviewInput<'_>) -> Result<Preview, Vec<TemplateProblem>> {
    let document = match &input.images {
        PreviewImages::Inline(images) => validate::check_document(input.document, images)?,
        PreviewImages::Stored { .. } => validate::check_document_alone(input.document)?,
    };
    let card = input.card;
    let web_service_url = format!("{}/apple", input.public_url);
    let rendered = render_pass_json(&PassInput {
        template: &document,
        context: &card.context,
        pass_type_id: SAMPLE_PASS_TYPE,
        team_id: SAMPLE_TEAM,
        serial_number: SAMPLE_SERIAL,
        authentication_token: SAMPLE_SERIAL,
        web_service_url: &web_service_url,
        voided: false,
        card_number: &card.card_number,
        message: None,
    });
    let apple_pass: Json = serde_json::from_slice(&rendered.pass_json).unwrap_or(Json::Null);
    let language = input
        .language
        .filter(|l| document.localizations.contains_key(*l))
        .unwrap_or(document.default_language())
        .to_string();
    // What Wallet shows on a phone in `language`: pass.json's texts looked up in that
    // language's pass.strings, as the real package carries it.
    let strings = rendered
        .strings
        .iter()
        .find(|(lang, _)| *lang == language)
        .map(|(_, bytes)| strings_table(bytes))
        .unwrap_or_default();
    let shown_pass = translated_pass(&apple_pass, &strings);
    let (google_class, google_object) = google(input, &document);
    let colors = colors(&apple_pass, &google_class);
    let images = &input.images;
    let html = html! {
        div class="pf-preview" lang=(language)
            data-apple-bg=(color_of(&apple_pass, "backgroundColor", "#ffffff"))
            data-apple-fg=(color_of(&apple_pass, "foregroundColor", "#000000"))
            data-google-bg=(google_background(&google_class)) {
            (apple_front(&shown_pass, images, input.public_url))
            (apple_back(&shown_pass))
            (google_card(&google_class, &google_object, input.public_url, &language))
        }
    }
    .into_string();
    Ok(Preview {
        html,
        apple_pass,
        google_class: google_class.clone(),
        google_object,
        colors,
        language,
    })
}

/// A `pass.strings` file read as Wallet reads it (UTF-16 with its byte-order mark; lines
/// of `"text" = "translation";`): default text -> the language's.
fn strings_table(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    let units: Vec<u16> = match bytes {
        [0xFF, 0xFE, rest @ ..] => rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
        [0xFE, 0xFF, rest @ ..] => rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
        _ => return Default::default(),
    };
    let text = String::from_utf16_lossy(&units);
    // The quoted strings in order: every pair is one entry.
    let mut quoted = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some(other) => s.push(other),
                    None => {}
                },
                c => s.push(c),
            }
        }
        quoted.push(s);
    }
    let mut table = std::collections::HashMap::new();
    let mut pairs = quoted.into_iter();
    while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
        table.insert(k, v);
    }
    table
}

/// pass.json with the texts Wallet localizes (field labels and text values, the logo
/// text) replaced by their translations; texts without one stay as they are, as on a phone.
fn translated_pass(pass: &Json, strings: &std::collections::HashMap<String, String>) -> Json {
    let mut out = pass.clone();
    if strings.is_empty() {
        return out;
    }
    let swap = |v: &mut Json| {
        if let Some(t) = v.as_str().and_then(|s| strings.get(s)) {
            *v = Json::String(t.clone());
        }
    };
    swap(&mut out["logoText"]);
    if let Some(style) = out["storeCard"].as_object_mut() {
        for group in style.values_mut() {
            for f in group.as_array_mut().into_iter().flatten() {
                if let Some(f) = f.as_object_mut() {
                    for key in ["label", "value"] {
                        if let Some(v) = f.get_mut(key) {
                            swap(v);
                        }
                    }
                }
            }
        }
    }
    out
}

/// A Google `LocalizedString` as a phone in `language` shows it: its translation, else
/// its default value; `plain` when there is none.
fn google_localized<'a>(localized: &'a Json, plain: &'a Json, language: &str) -> &'a str {
    localized["translatedValues"]
        .as_array()
        .and_then(|t| t.iter().find(|v| v["language"].as_str() == Some(language)))
        .and_then(|v| v["value"].as_str())
        .or_else(|| localized["defaultValue"]["value"].as_str())
        .or_else(|| plain.as_str())
        .unwrap_or_default()
}

fn google(input: &PreviewInput<'_>, document: &TemplateDocument) -> (Json, Json) {
    let public_url = input.public_url;
    let images = &input.images;
    let card = GoogleCard {
        document,
        context: &input.card.context,
        card_number: &input.card.card_number,
        voided: false,
        program_id: input.card.program_id,
        merchant_id: input.merchant_id,
        template_id: input.template_id,
        serial_number: SAMPLE_SERIAL,
        updated_at: chrono::Utc::now(),
        image_url: Box::new(move |file| images.url(file, public_url)),
    };
    let class = class_of(input.issuer, &card, public_url);
    let object = object_of(input.issuer, &card, public_url);
    (class.body, object.body)
}

/// An `rgb(r, g, b)` of pass.json as `#rrggbb`.
fn color_of(pass: &Json, key: &str, fallback: &str) -> String {
    pass[key]
        .as_str()
        .and_then(validate::hex_color)
        .unwrap_or_else(|| fallback.to_string())
}

fn google_background(class: &Json) -> String {
    class["hexBackgroundColor"]
        .as_str()
        .and_then(validate::hex_color)
        .unwrap_or_else(|| "#000000".into())
}

/// Google picks the card's text colour itself, light on dark backgrounds and dark on
/// light ones; this follows the same rule by relative luminance (WCAG).
fn google_text(background: &str) -> &'static str {
    let Some((r, g, b)) = validate::parse_color(background) else {
        return "#ffffff";
    };
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    if luminance > 0.4 {
        "#1f1f1f"
    } else {
        "#ffffff"
    }
}

fn colors(pass: &Json, class: &Json) -> Colors {
    let foreground = color_of(pass, "foregroundColor", "#000000");
    let google_bg = google_background(class);
    vec![
        (
            "--pf-apple-bg",
            color_of(pass, "backgroundColor", "#ffffff"),
        ),
        ("--pf-apple-fg", foreground.clone()),
        (
            "--pf-apple-label",
            color_of(pass, "labelColor", &foreground),
        ),
        ("--pf-google-fg", google_text(&google_bg).to_string()),
        ("--pf-google-bg", google_bg),
    ]
}

/// A field's value as Wallet shows it in the preview's language (numbers as numbers, money
/// with its currency code).
fn field_value(field: &Json) -> String {
    match &field["value"] {
        Json::String(s) => s.clone(),
        Json::Number(n) => match field["currencyCode"].as_str() {
            Some(code) => format!("{:.2} {code}", n.as_f64().unwrap_or(0.0)),
            None => n.to_string(),
        },
        _ => String::new(),
    }
}

fn align_class(field: &Json) -> &'static str {
    match field["textAlignment"].as_str() {
        Some("PKTextAlignmentLeft") => "pf-align-left",
        Some("PKTextAlignmentCenter") => "pf-align-center",
        Some("PKTextAlignmentRight") => "pf-align-right",
        _ => "pf-align-natural",
    }
}

fn fields<'a>(pass: &'a Json, group: &str) -> &'a [Json] {
    pass["storeCard"][group]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn field(f: &Json, class: &str) -> Markup {
    html! {
        div class={ "pf-field " (class) " " (align_class(f)) } data-key=(f["key"].as_str().unwrap_or_default()) {
            @if let Some(label) = f["label"].as_str() {
                span class="pf-label" { (label) }
            }
            span class="pf-value" { (field_value(f)) }
        }
    }
}

/// The first of `files` the template has, for the HTML.
fn first_image(images: &PreviewImages<'_>, files: &[&str], public_url: &str) -> Option<String> {
    files
        .iter()
        .find(|f| images.has(f))
        .and_then(|f| images.url(f, public_url))
        .map(|url| same_origin(&url, public_url))
}

/// A stored image's URL without the public URL: the console is served by this host, and its
/// `img-src 'self'` may not include the public URL's origin (a proxy, a loopback address).
fn same_origin(url: &str, public_url: &str) -> String {
    url.strip_prefix(public_url)
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(url)
        .to_string()
}

fn apple_front(pass: &Json, images: &PreviewImages<'_>, public_url: &str) -> Markup {
    // @2x first: what most phones show, sharp on the console's own retina screens.
    let logo = first_image(
        images,
        &["logo@2x.png", "logo@3x.png", "logo.png"],
        public_url,
    );
    let strip = first_image(
        images,
        &["strip@2x.png", "strip@3x.png", "strip.png"],
        public_url,
    );
    let barcode = pass["barcodes"]
        .as_array()
        .and_then(|b| b.first())
        .or_else(|| pass.get("barcode"));
    let secondary_and_auxiliary: Vec<&Json> = fields(pass, "secondaryFields")
        .iter()
        .chain(fields(pass, "auxiliaryFields"))
        .collect();
    html! {
        section class="pf-apple pf-apple-front" aria-label="Apple Wallet, front" {
            div class="pf-apple-top" {
                @if let Some(logo) = &logo {
                    img class="pf-apple-logo" src=(logo) alt="";
                }
                @if let Some(text) = pass["logoText"].as_str() {
                    span class="pf-logo-text" { (text) }
                }
                div class="pf-header-fields" {
                    @for f in fields(pass, "headerFields") { (field(f, "pf-header")) }
                }
            }
            div class={ "pf-strip-area" @if strip.is_some() { " pf-has-strip" } } {
                @if let Some(strip) = &strip {
                    img class="pf-strip" src=(strip) alt="";
                }
                div class="pf-primary-fields" {
                    @for f in fields(pass, "primaryFields") { (field(f, "pf-primary")) }
                }
            }
            div class="pf-secondary-fields" {
                @for f in secondary_and_auxiliary { (field(f, "pf-secondary")) }
            }
            @if let Some(b) = barcode {
                (barcode_markup(
                    b["format"].as_str().unwrap_or_default(),
                    b["message"].as_str().unwrap_or_default(),
                    b["altText"].as_str(),
                    "pf-apple-barcode",
                ))
            }
        }
    }
}

fn apple_back(pass: &Json) -> Markup {
    html! {
        section class="pf-apple pf-apple-back" aria-label="Apple Wallet, back" {
            dl class="pf-back-fields" {
                @for f in fields(pass, "backFields") {
                    div class="pf-back-field" data-key=(f["key"].as_str().unwrap_or_default()) {
                        dt class="pf-label" { (f["label"].as_str().unwrap_or_default()) }
                        dd class="pf-value" { (field_value(f)) }
                    }
                }
            }
        }
    }
}

fn google_card(class: &Json, object: &Json, public_url: &str, language: &str) -> Markup {
    let uri = |image: &Json| {
        image["sourceUri"]["uri"]
            .as_str()
            .map(|u| same_origin(u, public_url))
    };
    let logo = uri(&class["programLogo"]);
    let hero = uri(&class["heroImage"]);
    let title = class["programName"]
        .as_str()
        .or_else(|| class["merchantName"].as_str())
        .unwrap_or_default();
    let (subheader, header) = match (object.get("loyaltyPoints"), object.get("balance")) {
        (Some(points), _) => (
            points["label"].as_str().unwrap_or_default().to_string(),
            points["balance"]["int"]
                .as_i64()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        (None, Some(balance)) => ("Balance".to_string(), google_money(balance)),
        _ => (String::new(), String::new()),
    };
    let holder = object["accountName"]
        .as_str()
        .or_else(|| object["cardNumber"].as_str());
    html! {
        section class="pf-google" aria-label="Google Wallet" {
            div class="pf-google-top" {
                @if let Some(logo) = &logo {
                    img class="pf-google-logo" src=(logo) alt="";
                }
                span class="pf-google-issuer" { (class["issuerName"].as_str().unwrap_or_default()) }
            }
            h3 class="pf-google-title" { (title) }
            div class="pf-google-header" {
                @if let Some(holder) = holder {
                    div class="pf-google-row" {
                        span class="pf-google-value" { (holder) }
                    }
                }
                div class="pf-google-row" {
                    span class="pf-label" { (subheader) }
                    span class="pf-google-value" { (header) }
                }
            }
            @if let Some(b) = object.get("barcode") {
                (barcode_markup(
                    b["type"].as_str().unwrap_or_default(),
                    b["value"].as_str().unwrap_or_default(),
                    b["alternateText"].as_str(),
                    "pf-google-barcode",
                ))
            }
            @if let Some(hero) = &hero {
                img class="pf-google-hero" src=(hero) alt="";
            }
            @if let Some(modules) = object["textModulesData"].as_array() {
                dl class="pf-google-details" {
                    @for m in modules {
                        div class="pf-google-module" data-id=(m["id"].as_str().unwrap_or_default()) {
                            dt class="pf-label" { (google_localized(&m["localizedHeader"], &m["header"], language)) }
                            dd class="pf-value" { (google_localized(&m["localizedBody"], &m["body"], language)) }
                        }
                    }
                }
            }
        }
    }
}

/// Google's `Money` (micros as a string) as text.
fn google_money(balance: &Json) -> String {
    let micros: i128 = balance["micros"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let code = balance["currencyCode"].as_str().unwrap_or_default();
    let cents = micros / 10_000;
    format!("{}.{:02} {code}", cents / 100, (cents % 100).abs())
}

/// The barcode, real and scannable: QR through `public_pages::qr` (as the join pages draw
/// it), PDF417, Aztec and Code 128 through [`super::barcode`]. A message the format cannot
/// carry (Code 128 takes ASCII only) is said so instead of drawn.
fn barcode_markup(format: &str, message: &str, alt: Option<&str>, class: &str) -> Markup {
    let (name, svg) = match barcode::Format::of_wallet(format) {
        Some(f) => {
            let name = match f {
                barcode::Format::Pdf417 => "PDF417",
                barcode::Format::Aztec => "Aztec",
                barcode::Format::Code128 => "Code 128",
            };
            let label = format!("{name} barcode");
            (
                name,
                barcode::symbol(f, message).ok().map(|s| s.svg(&label)),
            )
        }
        None => (
            "QR",
            crate::public_pages::qr::svg(message).ok().map(|svg| {
                // The document's XML declaration has no place inside HTML.
                let start = svg.find("<svg").unwrap_or(0);
                svg[start..].to_string()
            }),
        ),
    };
    html! {
        div class={ "pf-barcode " (class) @if matches!(name, "Code 128" | "PDF417") { " pf-barcode-wide" } } data-format=(name) {
            @match svg {
                Some(svg) => (PreEscaped(svg)),
                None => p class="pf-barcode-unreadable" { (name) ": " (message) " (cannot be encoded)" },
            }
            @if let Some(alt) = alt {
                span class="pf-barcode-text" { (alt) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::GoogleSettings;
    use crate::template::examples;

    fn issuer() -> GoogleIssuer {
        GoogleIssuer::load(&GoogleSettings {
            issuer_id: None,
            service_account_key: None,
            api_url: String::new(),
            token_url: String::new(),
            callback_keys_url: String::new(),
            requests_per_second: 1,
        })
        .unwrap()
    }

    fn example(id: &str) -> examples::Example {
        examples::all().into_iter().find(|e| e.id == id).unwrap()
    }

    fn preview_of(document: &Json, images: &Images) -> Result<Preview, Vec<TemplateProblem>> {
        let kind = TemplateKind::parse(document["kind"].as_str().unwrap()).unwrap();
        let card = SampleCard::sample(kind, "Bean There", "https://cards.example");
        render(&PreviewInput {
            document,
            images: PreviewImages::Inline(images),
            card: &card,
            merchant_id: Uuid::nil(),
            template_id: "loyalty-default",
            issuer: &issuer(),
            public_url: "https://cards.example",
            language: None,
        })
    }

    /// Every `(data-key, value text)` of the Apple faces in the HTML, read back from it.
    fn shown_fields(html: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for part in html.split("data-key=\"").skip(1) {
            let key = part.split('"').next().unwrap().to_string();
            let value = part
                .split("class=\"pf-value\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap();
            out.push((key, value.replace("&amp;", "&").replace("&quot;", "\"")));
        }
        out
    }

    #[test]
    fn the_apple_faces_show_exactly_the_fields_of_the_real_pass_json() {
        for id in ["loyalty-default", "gift-card-default"] {
            let e = example(id);
            let preview = preview_of(&e.document, &e.images).unwrap();
            // The real builder, on its own, for the same document and card.
            let document = validate::parse_document(&e.document, &e.images).unwrap();
            let card = SampleCard::sample(document.kind, "Bean There", "https://cards.example");
            let real = render_pass_json(&PassInput {
                template: &document,
                context: &card.context,
                pass_type_id: "pass.real",
                team_id: "TEAM",
                serial_number: "S1",
                authentication_token: "token-token-token",
                web_service_url: "https://cards.example/apple",
                voided: false,
                card_number: &card.card_number,
                message: None,
            });
            let real: Json = serde_json::from_slice(&real.pass_json).unwrap();
            let mut expected = Vec::new();
            for group in [
                "headerFields",
                "primaryFields",
                "secondaryFields",
                "auxiliaryFields",
                "backFields",
            ] {
                for f in real["storeCard"][group].as_array().unwrap() {
                    expected.push((f["key"].as_str().unwrap().to_string(), field_value(f)));
                }
            }
            assert!(!expected.is_empty());
            let apple_html = preview.html.split("class=\"pf-google\"").next().unwrap();
            assert_eq!(shown_fields(apple_html), expected, "{id}");
            assert_eq!(preview.apple_pass["storeCard"], real["storeCard"], "{id}");
            assert_eq!(preview.apple_pass["logoText"], real["logoText"], "{id}");
        }
    }

    #[test]
    fn the_loyalty_preview_draws_the_sample_values_images_and_qr() {
        let e = example("loyalty-default");
        let p = preview_of(&e.document, &e.images).unwrap();
        for shown in [
            "1250",
            "Gold",
            "Alex Morgan",
            "2000 1234 5678",
            "Coffee Club",
        ] {
            assert!(p.html.contains(shown), "{shown} missing");
        }
        assert!(p
            .html
            .contains("<img class=\"pf-apple-logo\" src=\"data:image/png;base64,"));
        assert!(p.html.contains("class=\"pf-strip\""));
        assert!(p.html.contains("class=\"pf-google-hero\""));
        assert!(p.html.contains("<svg"), "QR code drawn");
        assert!(!p.html.contains("style="), "no inline style");
        assert!(!p.html.contains("<?xml"));
        assert_eq!(p.google_object["loyaltyPoints"]["balance"]["int"], 1250);
        assert_eq!(
            p.colors,
            vec![
                ("--pf-apple-bg", "#3b2418".to_string()),
                ("--pf-apple-fg", "#fff8f0".to_string()),
                ("--pf-apple-label", "#f4c28a".to_string()),
                ("--pf-google-fg", "#ffffff".to_string()),
                ("--pf-google-bg", "#3b2418".to_string()),
            ]
        );
        assert_eq!(
            p.colors_css(".pf-preview"),
            ".pf-preview{--pf-apple-bg:#3b2418;--pf-apple-fg:#fff8f0;--pf-apple-label:#f4c28a;\
             --pf-google-fg:#ffffff;--pf-google-bg:#3b2418;}"
        );
    }

    #[test]
    fn a_template_change_changes_the_preview() {
        let e = example("loyalty-default");
        let before = preview_of(&e.document, &e.images).unwrap();
        let mut doc = e.document.clone();
        doc["colors"]["background"] = serde_json::json!("rgb(250, 250, 250)");
        doc["localizations"]["en"]["member_label"] = serde_json::json!("Cardholder");
        doc["localizations"]["ru"]["member_label"] = serde_json::json!("Владелец");
        let after = preview_of(&doc, &e.images).unwrap();
        assert!(!before.html.contains("Cardholder"));
        assert!(after
            .html
            .contains("<span class=\"pf-label\">Cardholder</span>"));
        assert_eq!(after.colors[0], ("--pf-apple-bg", "#fafafa".to_string()));
        // Google's text turns dark on the light background.
        assert_eq!(after.colors[3], ("--pf-google-fg", "#1f1f1f".to_string()));
        assert!(after.html.contains("data-apple-bg=\"#fafafa\""));
    }

    #[test]
    fn an_invalid_draft_answers_the_validators_problems() {
        let e = example("loyalty-default");
        let mut doc = e.document.clone();
        doc["colors"]["foreground"] = serde_json::json!("blue-ish");
        doc["fields"]["primary"][0]["value"] = serde_json::json!("x".repeat(201));
        let problems = preview_of(&doc, &e.images).err().unwrap();
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/colors/foreground", "/fields/primary/0/value"],
            "{problems:?}"
        );
        assert_eq!(
            problems[1].reason,
            crate::template::reason::Reason::TooLong {
                chars: 201,
                max: 200
            }
        );
    }

    fn preview_in(document: &Json, images: &Images, language: Option<&str>) -> Preview {
        let card = SampleCard::sample(TemplateKind::Loyalty, "Bean There", "https://cards.example");
        render(&PreviewInput {
            document,
            images: PreviewImages::Inline(images),
            card: &card,
            merchant_id: Uuid::nil(),
            template_id: "loyalty-default",
            issuer: &issuer(),
            public_url: "https://cards.example",
            language,
        })
        .unwrap()
    }

    #[test]
    fn the_preview_is_drawn_in_the_chosen_language_with_the_phones_fallback() {
        let e = example("loyalty-default");
        let mut doc = e.document.clone();
        // A literal label, not a localization key: every language shows it as it is.
        doc["fields"]["secondary"][0]["label"] = serde_json::json!("Name");
        let en = preview_in(&doc, &e.images, None);
        assert_eq!(en.language, "en");
        let ru = preview_in(&doc, &e.images, Some("ru"));
        assert_eq!(ru.language, "ru");
        assert!(ru.html.contains("lang=\"ru\""));
        for shown in [
            "Баллы",
            "Уровень",
            "Номер карты",
            "Условия программы",
            "Пригласите друга",
        ] {
            assert!(
                ru.html.contains(shown),
                "{shown} missing in the Russian preview"
            );
            assert!(!en.html.contains(shown), "{shown} in the English preview");
        }
        // Apple's back and Google's text modules both in Russian.
        let google = ru.html.split("class=\"pf-google\"").nth(1).unwrap();
        assert!(google.contains("Условия программы"));
        assert!(ru.html.contains("<span class=\"pf-label\">Name</span>"));
        // The real pass.json stays the default language's (the phone's lookup is drawn).
        assert_eq!(ru.apple_pass, en.apple_pass);
        // A language the template lacks draws the default.
        let de = preview_in(&doc, &e.images, Some("de"));
        assert_eq!(de.language, "en");
        assert_eq!(de.html, en.html);
    }

    #[test]
    fn strings_files_read_back_as_written() {
        let e = example("loyalty-default");
        let document = validate::parse_document(&e.document, &e.images).unwrap();
        let card = SampleCard::sample(document.kind, "Bean There", "https://cards.example");
        let mut doc = document.clone();
        doc.localizations
            .get_mut("ru")
            .unwrap()
            .insert("tier_label".into(), "«Уровень» \"x\" \\ y\nz".into());
        let rendered = render_pass_json(&PassInput {
            template: &doc,
            context: &card.context,
            pass_type_id: "p",
            team_id: "t",
            serial_number: "s",
            authentication_token: "token-token-token",
            web_service_url: "",
            voided: false,
            card_number: &card.card_number,
            message: None,
        });
        let (_, ru) = rendered.strings.iter().find(|(l, _)| l == "ru").unwrap();
        let table = strings_table(ru);
        assert_eq!(table["Tier"], "«Уровень» \"x\" \\ y\nz");
        assert_eq!(table["Points"], "Баллы");
    }

    #[test]
    fn other_barcodes_are_drawn_for_real() {
        let e = example("gift-card-default");
        let mut doc = e.document.clone();
        doc["barcode"] = serde_json::json!({"format": "code128", "alt_text": "{{gan}}"});
        let p = preview_of(&doc, &e.images).unwrap();
        assert!(p.html.contains("aria-label=\"Code 128 barcode\""));
        assert!(!p.html.contains("(sample)"));
        assert!(p.html.contains("6000 0000 1234 5678"));
        assert!(
            p.html.contains("50.00 EUR"),
            "gift balance on Google's card"
        );
    }
}
