//! What a member search's text is taken for, and the page a list answer continues from.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

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

/// How many items a list answer holds: 50 unless asked, at most 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(i64);

impl PageLimit {
    pub const DEFAULT: i64 = 50;
    pub const MAX: i64 = 200;

    /// Read as text, so that a limit beyond any integer is refused like one beyond 200.
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text else {
            return Ok(Self(Self::DEFAULT));
        };
        match text.trim().parse::<i64>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(format!("an integer from 1 to {}", Self::MAX)),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Where a page ends: the last item's sort key and id. Clients get it as opaque base64url
/// text; anything that does not decode to one is refused, never passed to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub key: String,
    pub id: Uuid,
}

impl PageCursor {
    /// Sort keys are names, emails, phone digits or card numbers: 100 characters at most
    /// as stored, 400 bytes in UTF-8.
    const MAX_KEY_BYTES: usize = 1024;

    pub fn encode(&self) -> String {
        let mut bytes = self.id.as_bytes().to_vec();
        bytes.extend_from_slice(self.key.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let refused = || "not a cursor this service handed out".to_string();
        if text.len() > (Self::MAX_KEY_BYTES + 16) * 4 / 3 + 4 {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| refused())?;
        if bytes.len() < 16 {
            return Err(refused());
        }
        let (id, key) = bytes.split_at(16);
        let id = Uuid::from_slice(id).map_err(|_| refused())?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| refused())?;
        // PostgreSQL text holds no NUL: such a key could only fail in the database.
        if key.contains('\0') {
            return Err(refused());
        }
        Ok(Self { key, id })
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

    #[test]
    fn limits_pages() {
        assert_eq!(PageLimit::parse(None).map(PageLimit::get), Ok(50));
        assert_eq!(PageLimit::parse(Some("200")).map(PageLimit::get), Ok(200));
        for bad in ["0", "201", "-1", "1e3", "99999999999999999999999", ""] {
            assert!(PageLimit::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let cursor = PageCursor {
            key: "иван петров".into(),
            id: Uuid::new_v4(),
        };
        assert_eq!(PageCursor::decode(&cursor.encode()), Ok(cursor.clone()));
        let mut nul = cursor.id.as_bytes().to_vec();
        nul.extend_from_slice(b"a\0b");
        let mut bad_utf8 = cursor.id.as_bytes().to_vec();
        bad_utf8.push(0xff);
        for bad in [
            "".to_string(),
            "not base64!".into(),
            URL_SAFE_NO_PAD.encode([1u8; 15]),
            URL_SAFE_NO_PAD.encode(nul),
            URL_SAFE_NO_PAD.encode(bad_utf8),
            "A".repeat(5000),
        ] {
            assert!(PageCursor::decode(&bad).is_err(), "{bad}");
        }
    }
}
