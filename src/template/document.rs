use crate::domain::TemplateKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A validated template document (see `validate::parse_document`, the only way to get one
/// from untrusted input).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDocument {
    #[schema(value_type = String)]
    pub kind: TemplateKind,
    pub name: String,
    pub description: String,
    pub organization_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_text: Option<String>,
    pub colors: Colors,
    #[serde(default)]
    pub fields: Fields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<Barcode>,
    /// language -> (key -> text)
    #[serde(default)]
    pub localizations: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant_date: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Colors {
    pub background: String,
    pub foreground: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    #[serde(default)]
    pub header: Vec<Field>,
    #[serde(default)]
    pub primary: Vec<Field>,
    #[serde(default)]
    pub secondary: Vec<Field>,
    #[serde(default)]
    pub auxiliary: Vec<Field>,
    #[serde(default)]
    pub back: Vec<Field>,
}

impl Fields {
    /// Every group with its name, in the order Apple lays them out.
    pub fn groups(&self) -> [(&'static str, &[Field]); 5] {
        [
            ("header", &self.header),
            ("primary", &self.primary),
            ("secondary", &self.secondary),
            ("auxiliary", &self.auxiliary),
            ("back", &self.back),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_alignment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Barcode {
    /// `qr`, `pdf417`, `aztec` or `code128`
    pub format: String,
    /// Defaults to the card number (the GAN for gift cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant_text: Option<String>,
}

impl TemplateDocument {
    /// The language used where a device's language has no strings: `en` when present.
    pub fn default_language(&self) -> &str {
        if self.localizations.contains_key("en") {
            "en"
        } else {
            self.localizations
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or("en")
        }
    }

    /// The text for `key_or_text` in `language`: a localization key is looked up (falling
    /// back to the default language), anything else is literal text.
    pub fn localized<'a>(&'a self, key_or_text: &'a str, language: &str) -> &'a str {
        self.localizations
            .get(language)
            .and_then(|strings| strings.get(key_or_text))
            .or_else(|| {
                self.localizations
                    .get(self.default_language())
                    .and_then(|strings| strings.get(key_or_text))
            })
            .map(String::as_str)
            .unwrap_or(key_or_text)
    }
}
