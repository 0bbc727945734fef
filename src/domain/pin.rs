use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// A gift card's PIN: 8 digits, shown once at issue, stored as an Argon2id hash. Eight
/// digits alone are guessable offline from a fast hash, hence the slow one; online
/// guessing is stopped by the rate limit on the balance endpoint.
pub struct Pin(String);

const DIGITS: usize = 8;

fn hasher() -> Argon2<'static> {
    // 1 MiB, 4 passes: about a millisecond per check in release builds, and little memory
    // held by the many threads that may hash at once (issuing cards in bulk).
    let params = Params::new(1024, 4, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Pin {
    pub fn generate() -> Self {
        Self(super::tokens::pin(DIGITS))
    }

    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == DIGITS && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

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

    pub fn matches(&self, stored: &str) -> bool {
        PasswordHash::new(stored)
            .map(|h| hasher().verify_password(self.0.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_matches_only_its_own_hash() {
        let pin = Pin::generate();
        let stored = pin.hash();
        assert!(pin.matches(&stored));
        let other = Pin::parse(if pin.expose() == "00000000" {
            "00000001"
        } else {
            "00000000"
        })
        .expect("eight digits are a PIN");
        assert!(!other.matches(&stored));
        assert!(Pin::parse("1234").is_none());
    }
}
