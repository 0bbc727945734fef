use super::states::Scope;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use std::fmt;

/// A freshly issued or presented API key. It is shown once and stored only as a SHA-256
/// hash: the key carries 190 bits of randomness, so a fast hash is enough (no password
/// stretching is needed against guessing) and lookups stay a single indexed query.
pub struct ApiKeySecret(String);

const RANDOM_CHARS: usize = 32;

impl ApiKeySecret {
    pub fn generate(scope: Scope) -> Self {
        let random = Alphanumeric.sample_string(&mut rand::rng(), RANDOM_CHARS);
        Self(format!("pf_{}_{}", scope.as_str(), random))
    }

    /// Parses a presented key; anything that cannot be one of ours is refused before any
    /// database lookup.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text
            .strip_prefix("pf_admin_")
            .or_else(|| text.strip_prefix("pf_pos_"))?;
        (rest.len() == RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }

    /// The part safe to show in listings, so staff can tell keys apart.
    pub fn display_prefix(&self) -> String {
        let cut = self.0.len() - RANDOM_CHARS + 4;
        format!("{}…", &self.0[..cut])
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({})", self.display_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_hash_stably() {
        for scope in [Scope::Admin, Scope::Pos] {
            let key = ApiKeySecret::generate(scope);
            let again = ApiKeySecret::parse(key.expose()).expect("own key parses");
            assert_eq!(key.hash(), again.hash());
            assert!(!format!("{key:?}").contains(&key.expose()[12..]));
        }
    }

    #[test]
    fn foreign_strings_are_not_keys() {
        for s in [
            "",
            "pf_admin_",
            "pf_root_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "pf_pos_ßßß",
        ] {
            assert!(ApiKeySecret::parse(s).is_none(), "{s}");
        }
    }
}
