//! What a member search's text is taken for.

/// The longest search text accepted: longer than any name (100), email or phone.
const MAX_TERM_CHARS: usize = 254;
/// Shorter texts have no trigram to narrow them by: they match the start of a field only.
pub const SUBSTRING_MIN_CHARS: usize = 3;

/// A member search's text, classified once. Texts are kept as typed (trimmed): the database
/// folds case itself, the same way it folded the stored names and emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchTerm {
    /// No text: every member.
    Everyone,
    /// Three characters or more: anywhere in the name, or the start of the email.
    Text(String),
    /// One or two characters: the start of the name or of the email. A one-letter substring
    /// would match most members, and no index narrows it.
    ShortText(String),
    /// Holds an `@`: the start (or the whole) of an email.
    Email(String),
    /// Digits, possibly written as a phone number ("+7 (912) 345-67-89"): the start of the
    /// phone's digits or of the card number. Only the digits are kept.
    Digits(String),
}

impl SearchTerm {
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let text = text.unwrap_or("").trim();
        if text.chars().count() > MAX_TERM_CHARS {
            return Err(format!("at most {MAX_TERM_CHARS} characters"));
        }
        if text.chars().any(char::is_control) {
            return Err("no control characters".into());
        }
        if text.is_empty() {
            return Ok(Self::Everyone);
        }
        let phone_like = text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
        if phone_like && text.chars().any(|c| c.is_ascii_digit()) {
            return Ok(Self::Digits(
                text.chars().filter(char::is_ascii_digit).collect(),
            ));
        }
        if text.contains('@') {
            return Ok(Self::Email(text.to_string()));
        }
        if text.chars().count() < SUBSTRING_MIN_CHARS {
            return Ok(Self::ShortText(text.to_string()));
        }
        Ok(Self::Text(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_was_typed() {
        assert_eq!(SearchTerm::parse(None), Ok(SearchTerm::Everyone));
        assert_eq!(SearchTerm::parse(Some("  ")), Ok(SearchTerm::Everyone));
        assert_eq!(
            SearchTerm::parse(Some("+7 (912) 345-67-89")),
            Ok(SearchTerm::Digits("79123456789".into()))
        );
        assert_eq!(
            SearchTerm::parse(Some("4000 1234")),
            Ok(SearchTerm::Digits("40001234".into()))
        );
        assert_eq!(
            SearchTerm::parse(Some("Ivan@Example")),
            Ok(SearchTerm::Email("Ivan@Example".into()))
        );
        assert_eq!(
            SearchTerm::parse(Some("Ив")),
            Ok(SearchTerm::ShortText("Ив".into()))
        );
        assert_eq!(
            SearchTerm::parse(Some(" Иван ")),
            Ok(SearchTerm::Text("Иван".into()))
        );
        // Phone punctuation alone is text, not an empty number.
        assert_eq!(
            SearchTerm::parse(Some("+")),
            Ok(SearchTerm::ShortText("+".into()))
        );
        assert!(SearchTerm::parse(Some("a\0b")).is_err());
        assert!(SearchTerm::parse(Some(&"x".repeat(255))).is_err());
    }
}
