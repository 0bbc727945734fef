//! Template validation on the raw JSON, so that one answer lists every problem with its
//! JSON pointer instead of stopping at the first.

use super::document::TemplateDocument;
use super::images::{self, Images};
use super::placeholder;
use super::reason::{english, Reason, TemplateProblem};
use crate::domain::TemplateKind;
use crate::problem::FieldProblem;
use serde_json::{Map, Value};
use std::collections::HashSet;

const TOP_KEYS: &[&str] = &[
    "kind",
    "name",
    "description",
    "organization_name",
    "logo_text",
    "colors",
    "fields",
    "barcode",
    "localizations",
    "locations",
    "expiration_date",
    "relevant_date",
];
const GROUP_NAMES: &[&str] = &["header", "primary", "secondary", "auxiliary", "back"];
const COLOR_KEYS: &[&str] = &["background", "foreground", "label"];
const BARCODE_KEYS: &[&str] = &["format", "message", "alt_text"];
const LOCATION_KEYS: &[&str] = &["latitude", "longitude", "altitude", "relevant_text"];
const MAX_LOCATIONS: usize = 10;
const MAX_TRANSLATION: usize = 2000;
const GROUPS: &[(&str, usize)] = &[
    ("header", 3),
    ("primary", 1),
    ("secondary", 4),
    ("auxiliary", 4),
    ("back", 20),
];
/// The key of the back field carrying merchant messages (apple::pass_json): a template's
/// own field of that key would give the pass two fields with one key.
pub const RESERVED_FIELD_KEY: &str = "merchant_message";
const FIELD_KEYS: &[&str] = &["key", "label", "value", "change_message", "text_alignment"];
const BARCODE_FORMATS: &[&str] = &["qr", "pdf417", "aztec", "code128"];
const ALIGNMENTS: &[&str] = &["left", "center", "right", "natural"];

struct Checker {
    problems: Vec<TemplateProblem>,
    kind: Option<TemplateKind>,
}

impl Checker {
    fn problem(&mut self, pointer: impl Into<String>, reason: Reason) {
        self.problems.push(TemplateProblem::new(pointer, reason));
    }

    fn string<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        at: &str,
        required: bool,
        max: usize,
    ) -> Option<&'a str> {
        let pointer = format!("{at}/{key}");
        match obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(pointer, Reason::Required);
                }
                None
            }
            Some(Value::String(s)) => {
                if required && s.trim().is_empty() {
                    self.problem(pointer, Reason::Empty);
                } else if s.chars().count() > max {
                    self.problem(
                        pointer,
                        Reason::TooLong {
                            chars: s.chars().count(),
                            max,
                        },
                    );
                } else if s.chars().any(|c| c.is_control() && c != '\n') {
                    self.problem(pointer, Reason::ControlCharacters);
                } else {
                    self.placeholders(s, &format!("{at}/{key}"));
                    return Some(s);
                }
                None
            }
            Some(_) => {
                self.problem(pointer, Reason::NotString);
                None
            }
        }
    }

    fn placeholders(&mut self, text: &str, pointer: &str) {
        let Some(kind) = self.kind else { return };
        match placeholder::unknown(text, kind) {
            Ok(unknown) => {
                for name in unknown {
                    self.problem(pointer, Reason::UnknownPlaceholder { name, kind });
                }
            }
            // The only way parsing fails.
            Err(_) => self.problem(pointer, Reason::UnclosedPlaceholder),
        }
    }

    fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &'static [&'static str], at: &str) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(
                    format!("{at}/{}", images::pointer_token(key)),
                    Reason::UnknownKey { known },
                );
            }
        }
    }

    fn color(&mut self, obj: &Map<String, Value>, key: &str, at: &str, required: bool) {
        if let Some(text) = self.string(obj, key, at, required, 32) {
            if parse_color(text).is_none() {
                self.problem(
                    format!("{at}/{key}"),
                    Reason::BadColor {
                        text: text.to_string(),
                    },
                );
            }
        }
    }

    fn date(&mut self, obj: &Map<String, Value>, key: &str) {
        if let Some(text) = self.string(obj, key, "", false, 64) {
            if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                self.problem(format!("/{key}"), Reason::NotDateTime);
            }
        }
    }
}

/// A template colour as `#rrggbb` (what Google and CSS take), rebuilt from its parsed
/// components so nothing else of the text passes through.
pub fn hex_color(text: &str) -> Option<String> {
    parse_color(text).map(|(r, g, b)| format!("#{r:02x}{g:02x}{b:02x}"))
}

/// Parses `#rrggbb` or `rgb(r, g, b)` into its components.
pub fn parse_color(text: &str) -> Option<(u8, u8, u8)> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix('#') {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some((c(0)?, c(2)?, c(4)?));
    }
    let inner = text.strip_prefix("rgb(")?.strip_suffix(')')?;
    let parts: Vec<u8> = inner
        .split(',')
        .map(|p| p.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    match parts.as_slice() {
        [r, g, b] => Some((*r, *g, *b)),
        _ => None,
    }
}

/// Validates a template document and its images; on success the typed document.
pub fn parse_document(raw: &Value, images: &Images) -> Result<TemplateDocument, Vec<FieldProblem>> {
    check_document(raw, images).map_err(english)
}

/// [`parse_document`] with each problem's reason as data, for a rendering in another
/// language than the API's English.
pub fn check_document(
    raw: &Value,
    images: &Images,
) -> Result<TemplateDocument, Vec<TemplateProblem>> {
    parse_checked(raw, images::check(images, "/images"))
}

/// Validates a document whose images are stored, so were checked when they were: the
/// designer's preview, on every keystroke, need not decode them again.
pub fn check_document_alone(raw: &Value) -> Result<TemplateDocument, Vec<TemplateProblem>> {
    parse_checked(raw, Vec::new())
}

fn parse_checked(
    raw: &Value,
    image_problems: Vec<TemplateProblem>,
) -> Result<TemplateDocument, Vec<TemplateProblem>> {
    let mut c = Checker {
        problems: Vec::new(),
        kind: None,
    };
    let Some(obj) = raw.as_object() else {
        return Err(vec![TemplateProblem::new("", Reason::NotObject)]);
    };
    c.unknown_keys(obj, TOP_KEYS, "");
    c.kind = match obj.get("kind") {
        Some(Value::String(k)) => TemplateKind::parse(k).or_else(|| {
            c.problem("/kind", Reason::BadKind);
            None
        }),
        _ => {
            c.problem("/kind", Reason::KindRequired);
            None
        }
    };
    c.string(obj, "name", "", true, 100);
    c.string(obj, "description", "", true, 200);
    c.string(obj, "organization_name", "", true, 100);
    c.string(obj, "logo_text", "", false, 40);
    c.date(obj, "expiration_date");
    c.date(obj, "relevant_date");

    match obj.get("colors") {
        Some(Value::Object(colors)) => {
            c.unknown_keys(colors, COLOR_KEYS, "/colors");
            c.color(colors, "background", "/colors", true);
            c.color(colors, "foreground", "/colors", true);
            c.color(colors, "label", "/colors", false);
        }
        _ => c.problem("/colors", Reason::ColorsRequired),
    }

    let localizations = check_localizations(&mut c, obj.get("localizations"));
    let mut used_keys: Vec<(String, String, bool)> = Vec::new(); // (pointer, text, needs %@)
    let mut seen = HashSet::new();
    match obj.get("fields") {
        None => {}
        Some(Value::Object(groups)) => {
            c.unknown_keys(groups, GROUP_NAMES, "/fields");
            for (group, max) in GROUPS {
                let at = format!("/fields/{group}");
                let Some(value) = groups.get(*group) else {
                    continue;
                };
                let Some(list) = value.as_array() else {
                    c.problem(at, Reason::NotFieldList);
                    continue;
                };
                if list.len() > *max {
                    c.problem(&at, Reason::TooManyFields { group, max: *max });
                }
                let value_max = if *group == "back" { 2000 } else { 200 };
                for (i, field) in list.iter().enumerate() {
                    let at = format!("{at}/{i}");
                    let Some(f) = field.as_object() else {
                        c.problem(at, Reason::NotField);
                        continue;
                    };
                    c.unknown_keys(f, FIELD_KEYS, &at);
                    if let Some(key) = c.string(f, "key", &at, true, 64) {
                        if key == RESERVED_FIELD_KEY {
                            c.problem(
                                format!("{at}/key"),
                                Reason::ReservedKey {
                                    key: key.to_string(),
                                },
                            );
                        } else if !seen.insert(key.to_string()) {
                            c.problem(
                                format!("{at}/key"),
                                Reason::DuplicateKey {
                                    key: key.to_string(),
                                },
                            );
                        }
                    }
                    if let Some(label) = c.string(f, "label", &at, false, 60) {
                        used_keys.push((format!("{at}/label"), label.to_string(), false));
                    }
                    if let Some(value) = c.string(f, "value", &at, true, value_max) {
                        used_keys.push((format!("{at}/value"), value.to_string(), false));
                    }
                    if let Some(msg) = c.string(f, "change_message", &at, false, 120) {
                        used_keys.push((format!("{at}/change_message"), msg.to_string(), true));
                    }
                    if let Some(align) = c.string(f, "text_alignment", &at, false, 16) {
                        if !ALIGNMENTS.contains(&align) {
                            c.problem(
                                format!("{at}/text_alignment"),
                                Reason::BadAlignment {
                                    allowed: ALIGNMENTS,
                                },
                            );
                        }
                    }
                }
            }
        }
        Some(_) => c.problem("/fields", Reason::NotFieldGroups),
    }
    // Change messages and localized texts: a key must exist in every language, and a change
    // message must keep the %@ where Wallet puts the new value.
    for (pointer, text, needs_value) in used_keys {
        let translations: Vec<(&String, Option<&str>)> = localizations
            .iter()
            .map(|(lang, strings)| (lang, strings.get(&text).and_then(Value::as_str)))
            .collect();
        let found = translations.iter().any(|(_, s)| s.is_some());
        if found {
            for (lang, s) in &translations {
                match s {
                    None => c.problem(
                        &pointer,
                        Reason::MissingTranslation {
                            key: text.clone(),
                            language: lang.to_string(),
                        },
                    ),
                    Some(s) if needs_value && !s.contains("%@") => c.problem(
                        format!("/localizations/{lang}/{}", images::pointer_token(&text)),
                        Reason::NoValueMarker,
                    ),
                    Some(s) => c.placeholders(
                        s,
                        &format!("/localizations/{lang}/{}", images::pointer_token(&text)),
                    ),
                }
            }
        } else if needs_value && !text.contains("%@") {
            c.problem(pointer, Reason::NoValueMarker);
        }
    }

    match obj.get("barcode") {
        None | Some(Value::Null) => {}
        Some(Value::Object(b)) => {
            c.unknown_keys(b, BARCODE_KEYS, "/barcode");
            if let Some(format) = c.string(b, "format", "/barcode", true, 16) {
                if !BARCODE_FORMATS.contains(&format) {
                    c.problem(
                        "/barcode/format",
                        Reason::BadBarcodeFormat {
                            format: format.to_string(),
                            allowed: BARCODE_FORMATS,
                        },
                    );
                }
            }
            c.string(b, "message", "/barcode", false, 500);
            c.string(b, "alt_text", "/barcode", false, 100);
        }
        Some(_) => c.problem("/barcode", Reason::NotBarcode),
    }

    match obj.get("locations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > MAX_LOCATIONS {
                c.problem(
                    "/locations",
                    Reason::TooManyLocations { max: MAX_LOCATIONS },
                );
            }
            for (i, loc) in list.iter().enumerate() {
                let at = format!("/locations/{i}");
                let Some(l) = loc.as_object() else {
                    c.problem(at, Reason::NotLocation);
                    continue;
                };
                c.unknown_keys(l, LOCATION_KEYS, &at);
                for (key, limit) in [("latitude", 90u32), ("longitude", 180)] {
                    match l.get(key).and_then(Value::as_f64) {
                        Some(v) if v.abs() <= f64::from(limit) => {}
                        _ => c.problem(format!("{at}/{key}"), Reason::CoordinateRequired { limit }),
                    }
                }
                if l.get("altitude")
                    .is_some_and(|a| !a.is_null() && !a.is_number())
                {
                    c.problem(format!("{at}/altitude"), Reason::AltitudeNotNumber);
                }
                c.string(l, "relevant_text", &at, false, 200);
            }
        }
        Some(_) => c.problem("/locations", Reason::NotLocationList),
    }

    c.problems.extend(image_problems);
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    // Optional keys given as null mean "absent".
    let mut cleaned = raw.clone();
    if let Some(obj) = cleaned.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(cleaned).map_err(|e| {
        vec![TemplateProblem::new(
            "",
            Reason::Unreadable {
                error: e.to_string(),
            },
        )]
    })
}

fn check_localizations(
    c: &mut Checker,
    value: Option<&Value>,
) -> Vec<(String, Map<String, Value>)> {
    let mut out = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(langs)) => {
            for (lang, strings) in langs {
                let at = format!("/localizations/{}", images::pointer_token(lang));
                let valid_lang = lang.len() <= 12
                    && lang.split('-').enumerate().all(|(i, part)| {
                        if i == 0 {
                            (2..=3).contains(&part.len())
                                && part.bytes().all(|b| b.is_ascii_lowercase())
                        } else {
                            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric())
                        }
                    });
                if !valid_lang {
                    c.problem(&at, Reason::BadLanguage);
                    continue;
                }
                let Some(map) = strings.as_object() else {
                    c.problem(at, Reason::NotTranslations);
                    continue;
                };
                for (key, text) in map {
                    let at = format!("{at}/{}", images::pointer_token(key));
                    match text.as_str() {
                        Some(t) if t.chars().count() <= MAX_TRANSLATION => {}
                        Some(_) => c.problem(
                            at,
                            Reason::TranslationTooLong {
                                max: MAX_TRANSLATION,
                            },
                        ),
                        None => c.problem(at, Reason::NotString),
                    }
                }
                out.push((lang.clone(), map.clone()));
            }
        }
        Some(_) => c.problem("/localizations", Reason::NotLocalizations),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn colors_parse_in_both_notations() {
        assert_eq!(parse_color("#3b2418"), Some((0x3b, 0x24, 0x18)));
        assert_eq!(parse_color("rgb(1, 2,3)"), Some((1, 2, 3)));
        for bad in ["#3b241", "rgb(1,2)", "rgb(256,0,0)", "red", "#gggggg"] {
            assert_eq!(parse_color(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_problem_is_listed_with_its_pointer() {
        let doc = json!({
            "kind": "loyalty",
            "name": "x",
            "description": "d",
            "organization_name": "o",
            "colors": {"background": "#zzzzzz", "foreground": "#ffffff"},
            "fields": {
                "header": [{"key": "a", "value": "{{pointz}}"}],
                "primary": [{"key": "a", "value": "{{points}}", "change_message": "no marker"}]
            },
            "barcode": {"format": "ean13"},
            "bogus": 1
        });
        let problems = parse_document(&doc, &Images::new()).unwrap_err();
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        for expected in [
            "/bogus",
            "/colors/background",
            "/fields/header/0/value",
            "/fields/primary/0/key",
            "/fields/primary/0/change_message",
            "/barcode/format",
            "/images/icon.png",
        ] {
            assert!(
                pointers.contains(&expected),
                "{expected} missing in {pointers:?}"
            );
        }
    }
}
