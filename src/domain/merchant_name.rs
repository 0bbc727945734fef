use std::fmt;

/// A merchant's display name: 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantName(String);

impl MerchantName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("a merchant name must not be empty".into());
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!(
                "a merchant name must be at most {} characters",
                Self::MAX_CHARS
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("a merchant name must not contain control characters".into());
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unicode_and_trims() {
        assert_eq!(
            MerchantName::parse("  Кофейня Ромашка ").map(|n| n.as_str().to_string()),
            Ok("Кофейня Ромашка".to_string())
        );
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert!(MerchantName::parse("   ").is_err());
        assert!(MerchantName::parse(&"a".repeat(201)).is_err());
        assert!(MerchantName::parse("a\u{0}b").is_err());
    }
}
