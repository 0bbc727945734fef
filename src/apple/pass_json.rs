//! `pass.json` and the `pass.strings` of each language, from a template and one card's
//! placeholder values.
//!
//! Localization: pass.json carries the default language's text, and each
//! `<lang>.lproj/pass.strings` maps that text to the language's own. Wallet looks every
//! label, value and change message up by its text, so a device in a language the template
//! lacks still shows the default text rather than a bare key.

use crate::template::validate::parse_color;
use crate::template::{Context, TemplateDocument, Value};
use serde::Serialize;
use std::collections::BTreeMap;

pub struct PassInput<'a> {
    pub template: &'a TemplateDocument,
    pub context: &'a Context,
    pub pass_type_id: &'a str,
    pub team_id: &'a str,
    pub serial_number: &'a str,
    pub authentication_token: &'a str,
    /// `PASSFOLD_PUBLIC_URL` + `/apple`
    pub web_service_url: &'a str,
    pub voided: bool,
    /// The barcode message when the template names none: the card number or GAN.
    pub card_number: &'a str,
    /// The merchant's latest message to the card: (header, body).
    pub message: Option<(&'a str, &'a str)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PassJson<'a> {
    format_version: u8,
    pass_type_identifier: &'a str,
    team_identifier: &'a str,
    serial_number: &'a str,
    organization_name: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_text: Option<String>,
    background_color: String,
    foreground_color: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_color: Option<String>,
    /// Empty for a designer's test pass: without them a phone never registers it.
    #[serde(rename = "webServiceURL", skip_serializing_if = "str::is_empty")]
    web_service_url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    authentication_token: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    barcodes: Vec<Barcode>,
    /// Pre-iOS 9 devices read only this; Code 128 did not exist then.
    #[serde(skip_serializing_if = "Option::is_none")]
    barcode: Option<Barcode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_date: Option<&'a str>,
    /// Read by iOS 17 and earlier; iOS 18 deprecates it for `relevantDates`.
    #[serde(skip_serializing_if = "Option::is_none")]
    relevant_date: Option<&'a str>,
    /// iOS 18+ (Wallet Passes reference, `Pass.RelevantDates`): intervals (`startDate`,
    /// `endDate`) or moments. A template names one moment: written as `date` (the key of
    /// the current reference) and `relevantDate` (the key iOS 18.0 read in an entry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relevant_dates: Vec<RelevantDate<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    voided: bool,
    store_card: Style,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RelevantDate<'a> {
    date: &'a str,
    relevant_date: &'a str,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Barcode {
    format: &'static str,
    message: String,
    message_encoding: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alt_text: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    latitude: f64,
    longitude: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    altitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relevant_text: Option<String>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Style {
    header_fields: Vec<Field>,
    primary_fields: Vec<Field>,
    secondary_fields: Vec<Field>,
    auxiliary_fields: Vec<Field>,
    back_fields: Vec<Field>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Field {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    value: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number_style: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_alignment: Option<&'static str>,
}

/// The rendered pass: `pass.json` bytes and, per language, its `pass.strings` bytes.
pub struct RenderedPass {
    pub pass_json: Vec<u8>,
    pub strings: Vec<(String, Vec<u8>)>,
}

struct Translator<'a> {
    template: &'a TemplateDocument,
    context: &'a Context,
    default_lang: &'a str,
    /// language -> (default text -> translated text)
    tables: BTreeMap<&'a str, BTreeMap<String, String>>,
}

impl<'a> Translator<'a> {
    /// Renders `text` in the default language and records its translations.
    fn text(&mut self, text: &str) -> String {
        let shown = self.context.render(
            self.template.localized(text, self.default_lang),
            self.default_lang,
        );
        if self
            .template
            .localizations
            .values()
            .any(|strings| strings.contains_key(text))
        {
            for lang in self.template.localizations.keys() {
                if lang == self.default_lang {
                    continue;
                }
                let translated = self
                    .context
                    .render(self.template.localized(text, lang), lang);
                if translated != shown {
                    self.tables
                        .entry(lang.as_str())
                        .or_default()
                        .insert(shown.clone(), translated);
                }
            }
        }
        shown
    }
}

fn rgb(color: &str) -> String {
    let (r, g, b) = parse_color(color).unwrap_or((0, 0, 0));
    format!("rgb({r}, {g}, {b})")
}

fn barcode_format(name: &str) -> &'static str {
    match name {
        "pdf417" => "PKBarcodeFormatPDF417",
        "aztec" => "PKBarcodeFormatAztec",
        "code128" => "PKBarcodeFormatCode128",
        _ => "PKBarcodeFormatQR",
    }
}

fn alignment(name: Option<&str>) -> Option<&'static str> {
    Some(match name? {
        "left" => "PKTextAlignmentLeft",
        "center" => "PKTextAlignmentCenter",
        "right" => "PKTextAlignmentRight",
        _ => "PKTextAlignmentNatural",
    })
}

pub fn render(input: &PassInput<'_>) -> RenderedPass {
    let t = input.template;
    let mut tr = Translator {
        template: t,
        context: input.context,
        default_lang: t.default_language(),
        tables: BTreeMap::new(),
    };
    let mut style = Style::default();
    for (group, fields) in t.fields.groups() {
        let out = match group {
            "header" => &mut style.header_fields,
            "primary" => &mut style.primary_fields,
            "secondary" => &mut style.secondary_fields,
            "auxiliary" => &mut style.auxiliary_fields,
            _ => &mut style.back_fields,
        };
        for f in fields {
            // A field that is exactly one number or amount carries it as a number, so that
            // Wallet formats it for the device (money with its currency code).
            let (value, currency_code, number_style) = match input.context.sole_value(&f.value) {
                Some(Value::Number(n)) => {
                    (serde_json::json!(n), None, Some("PKNumberStyleDecimal"))
                }
                Some(Value::Money(m)) => (
                    serde_json::json!(m.major_f64()),
                    Some(m.currency.code()),
                    None,
                ),
                _ => (serde_json::Value::String(tr.text(&f.value)), None, None),
            };
            out.push(Field {
                key: f.key.clone(),
                label: f.label.as_deref().map(|l| tr.text(l)),
                value,
                currency_code,
                number_style,
                change_message: f.change_message.as_deref().map(|m| tr.text(m)),
                text_alignment: alignment(f.text_alignment.as_deref()),
            });
        }
    }
    if let Some((header, body)) = input.message {
        // A back field whose change message puts the merchant's note on the lock screen
        // (templates stored before the key was reserved may carry one: it gives way).
        let reserved = crate::template::validate::RESERVED_FIELD_KEY;
        for group in [
            &mut style.header_fields,
            &mut style.primary_fields,
            &mut style.secondary_fields,
            &mut style.auxiliary_fields,
            &mut style.back_fields,
        ] {
            group.retain(|f| f.key != reserved);
        }
        style.back_fields.insert(
            0,
            Field {
                key: crate::template::validate::RESERVED_FIELD_KEY.into(),
                label: Some(header.to_string()),
                value: serde_json::Value::String(body.to_string()),
                currency_code: None,
                number_style: None,
                change_message: Some("%@".into()),
                text_alignment: None,
            },
        );
    }
    if let Some((label, text)) = crate::messages::expiry_note(input.context, tr.default_lang) {
        // The next expiry on the back, unless the template has a field of that key.
        let taken = [
            &style.header_fields,
            &style.primary_fields,
            &style.secondary_fields,
            &style.auxiliary_fields,
            &style.back_fields,
        ]
        .iter()
        .any(|g| g.iter().any(|f| f.key == crate::messages::EXPIRY_FIELD_KEY));
        if !taken {
            style.back_fields.push(Field {
                key: crate::messages::EXPIRY_FIELD_KEY.into(),
                label: Some(label),
                value: serde_json::Value::String(text),
                currency_code: None,
                number_style: None,
                change_message: None,
                text_alignment: None,
            });
        }
    }
    let barcodes: Vec<Barcode> = t
        .barcode
        .iter()
        .map(|b| {
            let message = match &b.message {
                Some(m) => input.context.render(m, tr.default_lang),
                None => input.card_number.to_string(),
            };
            Barcode {
                format: barcode_format(&b.format),
                message,
                message_encoding: "iso-8859-1",
                alt_text: b
                    .alt_text
                    .as_deref()
                    .map(|a| input.context.render(a, tr.default_lang)),
            }
        })
        .collect();
    let legacy = barcodes
        .iter()
        .find(|b| b.format != "PKBarcodeFormatCode128")
        .cloned();
    let organization_name = tr.text(&t.organization_name);
    let description = tr.text(&t.description);
    let logo_text = t.logo_text.as_deref().map(|l| tr.text(l));
    let locations = t
        .locations
        .iter()
        .map(|l| Location {
            latitude: l.latitude,
            longitude: l.longitude,
            altitude: l.altitude,
            relevant_text: l.relevant_text.as_deref().map(|r| tr.text(r)),
        })
        .collect();
    let pass = PassJson {
        format_version: 1,
        pass_type_identifier: input.pass_type_id,
        team_identifier: input.team_id,
        serial_number: input.serial_number,
        organization_name,
        description,
        logo_text,
        background_color: rgb(&t.colors.background),
        foreground_color: rgb(&t.colors.foreground),
        label_color: t.colors.label.as_deref().map(rgb),
        web_service_url: input.web_service_url,
        authentication_token: input.authentication_token,
        barcodes,
        barcode: legacy,
        locations,
        expiration_date: t.expiration_date.as_deref(),
        relevant_date: t.relevant_date.as_deref(),
        relevant_dates: t
            .relevant_date
            .as_deref()
            .map(|date| RelevantDate {
                date,
                relevant_date: date,
            })
            .into_iter()
            .collect(),
        voided: input.voided,
        store_card: style,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    let pass_json = serde_json::to_vec(&pass).unwrap_or_default();
    let mut strings = Vec::new();
    for lang in t.localizations.keys() {
        let table = tr.tables.remove(lang.as_str()).unwrap_or_default();
        strings.push((lang.clone(), strings_file(&table)));
    }
    RenderedPass { pass_json, strings }
}

/// A `.strings` file: `"key" = "value";` lines, UTF-16 with a byte-order mark, as Apple's
/// localization tools write them.
fn strings_file(table: &BTreeMap<String, String>) -> Vec<u8> {
    fn quote(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    let mut text = String::new();
    for (k, v) in table {
        text.push_str(&quote(k));
        text.push_str(" = ");
        text.push_str(&quote(v));
        text.push_str(";\n");
    }
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}
