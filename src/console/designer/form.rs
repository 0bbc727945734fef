//! The designer's form and the template document: which control edits which part of the
//! document (named fields in, a JSON document out), the id each JSON pointer's control
//! carries (so the validator's problems are placed next to it), and the WCAG contrast of
//! the colours. Pure functions: no database, no HTTP.

use crate::template::validate::parse_color;
use serde_json::{json, Map, Value as Json};

/// The field groups as the document has them, in Apple's order.
pub const GROUPS: [&str; 5] = ["header", "primary", "secondary", "auxiliary", "back"];
/// Apple's store card shows at most four secondary and auxiliary fields together.
pub const STORE_CARD_ROW_MAX: usize = 4;
pub const ALIGNMENTS: [&str; 4] = ["natural", "left", "center", "right"];
pub const BARCODES: [&str; 4] = ["qr", "pdf417", "aztec", "code128"];
/// WCAG AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// A posted form: names and values in order (urlencoded).
pub struct FormInput(pub Vec<(String, String)>);

impl FormInput {
    /// The last value of `name` (a colour's text box and its picker share nothing else).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_string()
    }

    pub fn action(&self) -> &str {
        self.get("action").unwrap_or("save")
    }
}

/// The id of the control that edits what `pointer` points at.
pub fn control_id(pointer: &str) -> String {
    let mut id = String::from("c");
    for ch in pointer.chars() {
        match ch {
            '/' => id.push('-'),
            c if c.is_ascii_alphanumeric() || c == '_' => id.push(c),
            _ => id.push('_'),
        }
    }
    id
}

/// A colour's three inputs: the text box (what is saved), the picker, and the value shown
/// when the page was drawn. Without a script the two inputs do not follow each other: a
/// picker moved while the text box was left alone wins.
fn color(form: &FormInput, name: &str) -> String {
    let text = form.text(&format!("colors.{name}"));
    let picker = form.text(&format!("colors.{name}.picker"));
    let was = form.text(&format!("colors.{name}.was"));
    if text == was && !picker.is_empty() && !picker.eq_ignore_ascii_case(&was) {
        picker
    } else {
        text
    }
}

fn put_text(obj: &mut Map<String, Json>, key: &str, value: String) {
    if value.is_empty() {
        obj.remove(key);
    } else {
        obj.insert(key.to_string(), Json::String(value));
    }
}

/// A number typed as a number, else the text (the validator then says what is wrong).
fn number_or_text(text: String) -> Json {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => json!(n),
        _ => Json::String(text),
    }
}

/// The document the form describes. `original` gives what the form does not edit (the
/// kind, a location's altitude).
pub fn document_from(form: &FormInput, original: &Json) -> Json {
    let mut doc = Map::new();
    doc.insert(
        "kind".into(),
        original.get("kind").cloned().unwrap_or(Json::Null),
    );
    for key in ["name", "description", "organization_name"] {
        doc.insert(key.into(), Json::String(form.text(key)));
    }
    put_text(&mut doc, "logo_text", form.text("logo_text"));

    let mut colors = Map::new();
    colors.insert("background".into(), Json::String(color(form, "background")));
    colors.insert("foreground".into(), Json::String(color(form, "foreground")));
    put_text(&mut colors, "label", color(form, "label"));
    doc.insert("colors".into(), Json::Object(colors));

    let mut groups = Map::new();
    for group in GROUPS {
        let mut list = Vec::new();
        for i in 0.. {
            let at = |p: &str| format!("f.{group}.{i}.{p}");
            if form.get(&at("key")).is_none() {
                break;
            }
            if form.get(&at("remove")).is_some() {
                continue;
            }
            let mut field = Map::new();
            let (key, label, value) = (
                form.text(&at("key")),
                form.text(&at("label")),
                form.get(&at("value")).unwrap_or_default().to_string(),
            );
            if key.is_empty() && label.is_empty() && value.trim().is_empty() {
                continue; // the blank row for a new field, left blank
            }
            field.insert("key".into(), Json::String(key));
            put_text(&mut field, "label", label);
            field.insert("value".into(), Json::String(value));
            put_text(
                &mut field,
                "change_message",
                form.text(&at("change_message")),
            );
            let align = form.text(&at("text_alignment"));
            if align != "natural" {
                put_text(&mut field, "text_alignment", align);
            }
            list.push(Json::Object(field));
        }
        if !list.is_empty() {
            groups.insert(group.into(), Json::Array(list));
        }
    }
    doc.insert("fields".into(), Json::Object(groups));

    let format = form.text("barcode.format");
    if !format.is_empty() {
        let mut barcode = Map::new();
        barcode.insert("format".into(), Json::String(format));
        put_text(&mut barcode, "message", form.text("barcode.message"));
        put_text(&mut barcode, "alt_text", form.text("barcode.alt_text"));
        doc.insert("barcode".into(), Json::Object(barcode));
    }

    // Translations: languages and keys by index; a new language or key is a blank one.
    let mut langs: Vec<String> = (0..)
        .map_while(|j| form.get(&format!("lang.{j}")).map(str::to_string))
        .collect();
    let new_lang = form.text("new_lang");
    if !new_lang.is_empty() && !langs.contains(&new_lang) {
        langs.push(new_lang);
    }
    let mut localizations = Map::new();
    for lang in &langs {
        localizations.insert(lang.clone(), Json::Object(Map::new()));
    }
    for i in 0.. {
        let Some(key) = form.get(&format!("lk.{i}")) else {
            break;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        for lang in &langs {
            let text = form
                .get(&format!("l.{i}.{lang}"))
                .unwrap_or_default()
                .to_string();
            if let (false, Some(Json::Object(strings))) =
                (text.trim().is_empty(), localizations.get_mut(lang))
            {
                strings.insert(key.to_string(), Json::String(text));
            }
        }
    }
    doc.insert("localizations".into(), Json::Object(localizations));

    let mut locations = Vec::new();
    for i in 0.. {
        let at = |p: &str| format!("loc.{i}.{p}");
        if form.get(&at("latitude")).is_none() {
            break;
        }
        let (lat, lon) = (form.text(&at("latitude")), form.text(&at("longitude")));
        if (lat.is_empty() && lon.is_empty()) || form.get(&at("remove")).is_some() {
            continue;
        }
        let mut location = Map::new();
        location.insert("latitude".into(), number_or_text(lat));
        location.insert("longitude".into(), number_or_text(lon));
        if let Some(altitude) = original
            .pointer(&format!("/locations/{i}/altitude"))
            .filter(|a| a.is_number())
        {
            location.insert("altitude".into(), altitude.clone());
        }
        put_text(
            &mut location,
            "relevant_text",
            form.text(&at("relevant_text")),
        );
        locations.push(Json::Object(location));
    }
    if !locations.is_empty() {
        doc.insert("locations".into(), Json::Array(locations));
    }
    put_text(&mut doc, "expiration_date", form.text("expiration_date"));
    put_text(&mut doc, "relevant_date", form.text("relevant_date"));
    Json::Object(doc)
}

/// WCAG 2 relative luminance of `#rrggbb`.
fn luminance(color: &str) -> Option<f64> {
    let (r, g, b) = parse_color(color)?;
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    Some(0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b))
}

/// The WCAG contrast ratio of two colours (1 to 21), when both are colours.
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (a, b) = (luminance(a)?, luminance(b)?);
    let (light, dark) = if a > b { (a, b) } else { (b, a) };
    Some((light + 0.05) / (dark + 0.05))
}

/// The pairs whose contrast is too low: (which, ratio) for the foreground and the label
/// against the background.
pub fn low_contrast(doc: &Json) -> Vec<(&'static str, f64)> {
    let color = |k: &str| doc.pointer(&format!("/colors/{k}")).and_then(Json::as_str);
    let Some(background) = color("background") else {
        return Vec::new();
    };
    ["foreground", "label"]
        .into_iter()
        .filter_map(|k| {
            let ratio = contrast(background, color(k)?)?;
            (ratio < MIN_CONTRAST).then_some((k, ratio))
        })
        .collect()
}

/// How many secondary and auxiliary fields the document has.
pub fn store_card_row(doc: &Json) -> usize {
    ["secondary", "auxiliary"]
        .iter()
        .map(|g| {
            doc.pointer(&format!("/fields/{g}"))
                .and_then(Json::as_array)
                .map_or(0, Vec::len)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag() {
        let black_white = contrast("#000000", "#ffffff").unwrap();
        assert!((black_white - 21.0).abs() < 0.01);
        assert!((contrast("#777777", "#ffffff").unwrap() - 4.48).abs() < 0.01);
        assert_eq!(contrast("nope", "#ffffff"), None);
    }

    #[test]
    fn the_form_makes_the_document() {
        let form = FormInput(
            [
                ("name", "N"),
                ("colors.background", "#112233"),
                ("colors.background.was", "#112233"),
                ("colors.background.picker", "#445566"),
                ("colors.foreground", "#ffffff"),
                ("f.header.0.key", "points"),
                ("f.header.0.value", "{{points}}"),
                ("f.header.0.text_alignment", "natural"),
                ("f.header.1.key", ""),
                ("f.header.1.value", ""),
                ("lang.0", "en"),
                ("lk.0", "k"),
                ("l.0.en", "Key"),
                ("loc.0.latitude", "48.1"),
                ("loc.0.longitude", "east"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec(),
        );
        let doc = document_from(&form, &json!({"kind": "loyalty"}));
        assert_eq!(doc["colors"]["background"], "#445566", "the picker moved");
        assert_eq!(doc["fields"]["header"].as_array().unwrap().len(), 1);
        assert_eq!(doc["localizations"]["en"]["k"], "Key");
        assert_eq!(doc["locations"][0]["latitude"], 48.1);
        assert_eq!(doc["locations"][0]["longitude"], "east");
        assert_eq!(control_id("/fields/header/0/key"), "c-fields-header-0-key");
    }
}
