use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// A staff member's new password: at least [`Password::MIN_CHARS`] characters (counted as
/// characters, so a Russian passphrase counts like an English one), at most
/// [`Password::MAX_CHARS`] (a bound on the hashing work one request can ask for), not only
/// spaces. Length is the rule, not character classes: a long passphrase beats a short
/// mixed one (NIST SP 800-63B, 5.1.1).
pub struct Password(String);

fn hasher() -> Argon2<'static> {
    // Argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): sign-ins
    // are rare and human-paced, unlike PIN checks at a till.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 256;

    /// A password someone chooses (creating an account, accepting an invitation, changing
    /// it): the length rules apply.
    pub fn parse_new(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if raw.trim().is_empty() {
            return Err("a password is required".into());
        }
        if chars < Self::MIN_CHARS {
            return Err(format!(
                "a password needs at least {} characters",
                Self::MIN_CHARS
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!(
                "a password has at most {} characters",
                Self::MAX_CHARS
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// A password typed to sign in: only bounded, so that a check costs the same for any
    /// input and an old rule change never locks anyone out.
    pub fn presented(raw: &str) -> Self {
        Self(raw.chars().take(Self::MAX_CHARS).collect())
    }

    /// The Argon2id hash in PHC string form (parameters and salt included).
    pub fn hash(&self) -> String {
        let salt_bytes: [u8; 16] = rand::random();
        let Ok(salt) = SaltString::encode_b64(&salt_bytes) else {
            return String::new();
        };
        hasher()
            .hash_password(self.0.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    }

    /// Whether this is the password of `stored`. The parameters are read from the hash, so
    /// hashes made with other settings keep working.
    pub fn matches(&self, stored: &str) -> bool {
        PasswordHash::new(stored)
            .map(|h| hasher().verify_password(self.0.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn short_and_empty_passwords_are_refused() {
        assert!(Password::parse_new("").is_err());
        assert!(Password::parse_new("          ").is_err());
        assert!(Password::parse_new("short1!").is_err());
        assert!(Password::parse_new("пароль-длинный").is_ok());
        assert!(Password::parse_new(&"x".repeat(257)).is_err());
    }

    #[test]
    fn a_password_matches_only_its_own_hash() {
        let p = Password::parse_new("correct horse battery").unwrap();
        let stored = p.hash();
        assert!(stored.starts_with("$argon2id$"));
        assert!(Password::presented("correct horse battery").matches(&stored));
        assert!(!Password::presented("correct horse batterz").matches(&stored));
        assert!(!Password::presented("x").matches("not a hash"));
        assert_eq!(format!("{p:?}"), "Password(***)");
    }
}
