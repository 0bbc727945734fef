use std::fmt;

/// An email address as a sign-in name: trimmed, lower-cased (so `Anna@Cafe.example` and
/// `anna@cafe.example` are one account), one `@` with text on both sides, a dot in the
/// domain, no spaces or control characters, at most 254 characters (RFC 5321's path limit).
/// Deliberately loose beyond that: the address is never mailed to, only compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim().to_lowercase();
        if text.is_empty() {
            return Err("an email address is required".into());
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(format!(
                "an email address has at most {} characters",
                Self::MAX_CHARS
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an email address has no spaces".into());
        }
        let Some((local, domain)) = text.split_once('@') else {
            return Err("an email address has an @".into());
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err("this does not look like an email address".into());
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn addresses_are_compared_lower_cased() {
        assert_eq!(
            Email::parse("  Anna@Cafe.Example ").map(|e| e.to_string()),
            Ok("anna@cafe.example".to_string())
        );
        assert_eq!(
            Email::parse("анна@кафе.рф").map(|e| e.to_string()),
            Ok("анна@кафе.рф".to_string())
        );
    }

    #[test]
    fn what_is_no_address_is_refused() {
        for bad in [
            "",
            "anna",
            "@cafe.example",
            "anna@",
            "anna@cafe",
            "a b@cafe.example",
            "anna@@cafe.example",
            "anna@cafe..example",
            "anna@.cafe.example",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@cafe.example", "a".repeat(250))).is_err());
    }
}
