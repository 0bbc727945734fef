//! RS256 for `jsonwebtoken` through OpenSSL, installed as its crypto provider.
//!
//! jsonwebtoken's own backends parse and check the RSA key again for every signature, which
//! costs as much as the signature itself; this one parses each key once and keeps it (a
//! service has one or two). Only RS256 is offered: it is all Google Wallet uses.

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use std::sync::{Arc, Mutex, OnceLock};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Makes this the process's jsonwebtoken provider; harmless to call again.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if PROVIDER.install_default().is_err() {
            // Only if jsonwebtoken was used before this call: it then keeps its default.
            tracing::warn!("jsonwebtoken already had a crypto provider; RS256 through OpenSSL is not installed");
        }
    });
}

fn unsupported() -> Error {
    Error::from(ErrorKind::InvalidAlgorithm)
}

/// Parsed private keys by their DER bytes.
type KeyCache = Mutex<Vec<(Vec<u8>, Arc<PKey<Private>>)>>;

fn private_key(der: &[u8]) -> Result<Arc<PKey<Private>>, Error> {
    static KEYS: OnceLock<KeyCache> = OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, key)) = keys.iter().find(|(d, _)| d == der) {
        return Ok(key.clone());
    }
    // jsonwebtoken keeps PKCS#1 or PKCS#8 DER, depending on the PEM it was given.
    let key = Rsa::private_key_from_der(der)
        .ok()
        .and_then(|rsa| PKey::from_rsa(rsa).ok())
        .or_else(|| PKey::private_key_from_der(der).ok())
        .ok_or_else(|| Error::from(ErrorKind::InvalidRsaKey("not an RSA private key".into())))?;
    let key = Arc::new(key);
    keys.push((der.to_vec(), key.clone()));
    Ok(key)
}

struct Rs256Signer(Arc<PKey<Private>>);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &self.0)
            .map_err(signature::Error::from_source)?;
        signer
            .sign_oneshot_to_vec(msg)
            .map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::RS256 {
        return Err(unsupported());
    }
    Ok(Box::new(Rs256Signer(private_key(key.inner())?)))
}

struct Rs256Verifier(PKey<Public>);

impl Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &self.0)
            .map_err(signature::Error::from_source)?;
        match verifier.verify_oneshot(sig, msg) {
            Ok(true) => Ok(()),
            Ok(false) => Err(signature::Error::new()),
            Err(e) => Err(signature::Error::from_source(e)),
        }
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::RS256 {
        return Err(unsupported());
    }
    let bad = |_| Error::from(ErrorKind::InvalidRsaKey("not an RSA public key".into()));
    let rsa = match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => Rsa::public_key_from_der_pkcs1(der)
            .or_else(|_| Rsa::public_key_from_der(der))
            .map_err(bad)?,
        DecodingKeyKind::RsaModulusExponent { n, e } => Rsa::from_public_components(
            BigNum::from_slice(n).map_err(bad)?,
            BigNum::from_slice(e).map_err(bad)?,
        )
        .map_err(bad)?,
    };
    Ok(Box::new(Rs256Verifier(PKey::from_rsa(rsa).map_err(bad)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_rs256_and_refuses_other_algorithms(
    ) -> Result<(), Box<dyn std::error::Error>> {
        install();
        let rsa = Rsa::generate(2048)?;
        let key = EncodingKey::from_rsa_pem(&rsa.private_key_to_pem()?)?;
        let public = DecodingKey::from_rsa_pem(&rsa.public_key_to_pem_pkcs1()?)?;
        let claims = serde_json::json!({"aud": "google", "n": 1});
        let jwt =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::RS256), &claims, &key)?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["google"]);
        validation.required_spec_claims.clear();
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&jwt, &public, &validation)?;
        assert_eq!(decoded.claims, claims);
        // A flipped signature bit fails.
        let mut tampered = jwt.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            std::str::from_utf8(&tampered)?,
            &public,
            &validation
        )
        .is_err());
        assert!(
            jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::RS512), &claims, &key)
                .is_err()
        );
        Ok(())
    }
}
