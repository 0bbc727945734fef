use std::fmt;

/// A template's id: lowercase letters, digits and dashes, 1 to 63 characters, starting with
/// a letter or digit (the example templates are `loyalty-default` and `gift-card-default`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateId(String);

impl TemplateId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text.len() <= 63
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-');
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err("a template id has 1 to 63 lowercase letters, digits or dashes, not starting with a dash".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
