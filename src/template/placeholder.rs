//! `{{name}}` placeholders in template text.

use crate::domain::Money;
use crate::domain::TemplateKind;
use std::collections::HashMap;

/// The placeholders a template of each kind may use.
pub fn allowed(kind: TemplateKind) -> &'static [&'static str] {
    match kind {
        TemplateKind::Loyalty => &[
            "merchant.name",
            "program.name",
            "member.name",
            "member.first_name",
            "card_number",
            "points",
            "tier",
            "referral_url",
            "expiring_points",
            "expiry_date",
        ],
        TemplateKind::GiftCard => &["merchant.name", "gan", "balance", "currency", "card_number"],
    }
}

/// One piece of template text: literal text or a placeholder name.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits text into pieces; an opening `{{` without its `}}` is an error.
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a placeholder opened with {{ is not closed with }}".to_string())?;
        pieces.push(Piece::Placeholder(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The placeholders in `text` that `kind` does not know.
pub fn unknown(text: &str, kind: TemplateKind) -> Result<Vec<String>, String> {
    let allowed = allowed(kind);
    Ok(parse(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(name) if !allowed.contains(&name) => Some(name.to_string()),
            _ => None,
        })
        .collect())
}

/// A placeholder's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Number(i64),
    Money(Money),
    /// A day, shown as `12.12` (day and month), the way both of our languages write it.
    Date(chrono::NaiveDate),
}

impl Value {
    pub fn format(&self, language: &str) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Money(m) => m.format(language),
            Value::Date(d) => d.format("%d.%m").to_string(),
        }
    }
}

/// The values of one card's placeholders.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: HashMap<&'static str, Value>,
}

impl Context {
    pub fn set(&mut self, name: &'static str, value: Value) -> &mut Self {
        self.values.insert(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Replaces every placeholder; unknown ones (impossible after validation) become empty.
    pub fn render(&self, text: &str, language: &str) -> String {
        match parse(text) {
            Ok(pieces) => pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => t.to_string(),
                    Piece::Placeholder(name) => self
                        .values
                        .get(name)
                        .map(|v| v.format(language))
                        .unwrap_or_default(),
                })
                .collect(),
            Err(_) => text.to_string(),
        }
    }

    /// The value when `text` is exactly one placeholder, so a pass field can carry a number
    /// (Wallet then formats it, e.g. money in the device's locale).
    pub fn sole_value(&self, text: &str) -> Option<&Value> {
        match parse(text).ok()?.as_slice() {
            [Piece::Placeholder(name)] => self.values.get(*name),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn renders_and_finds_unknown_placeholders() {
        let mut ctx = Context::default();
        ctx.set("points", Value::Number(120))
            .set("member.name", Value::Text("Анна".into()))
            .set(
                "balance",
                Value::Money(Money::new(1250, Currency::parse("EUR").expect("EUR"))),
            );
        assert_eq!(
            ctx.render("{{ member.name }}: {{points}} pts", "en"),
            "Анна: 120 pts"
        );
        assert_eq!(ctx.render("{{balance}}", "ru"), "12,50\u{a0}€");
        assert_eq!(ctx.sole_value("{{points}}"), Some(&Value::Number(120)));
        assert_eq!(ctx.sole_value("x {{points}}"), None);
        assert_eq!(
            unknown("{{points}} {{pointz}}", TemplateKind::Loyalty),
            Ok(vec!["pointz".to_string()])
        );
        assert_eq!(
            unknown("{{balance}}", TemplateKind::Loyalty),
            Ok(vec!["balance".to_string()])
        );
        assert!(unknown("{{points", TemplateKind::Loyalty).is_err());
    }
}
