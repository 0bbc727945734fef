//! The Pass Type ID signing identity: certificate, private key and Apple's WWDR
//! intermediate, loaded and checked once at start.

use crate::configuration::{AppleIdentitySource, AppleSettings};
use anyhow::{anyhow, bail, Context};
use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::{X509NameRef, X509VerifyResult, X509};
use std::sync::OnceLock;

/// The example chain of `certs-example/`, built into the binary so that a first run works
/// from any folder. Never real secrets.
pub mod example {
    pub const ROOT_CA: &[u8] = include_bytes!("../../certs-example/root-ca.pem");
    pub const WWDR: &[u8] = include_bytes!("../../certs-example/wwdr.pem");
    pub const PASS_CERT: &[u8] = include_bytes!("../../certs-example/pass.pem");
    pub const PASS_KEY: &[u8] = include_bytes!("../../certs-example/pass.key");
}

pub struct SigningIdentity {
    pub pass_type_id: String,
    pub team_id: String,
    pub certificate: X509,
    pub key: PKey<Private>,
    /// The WWDR intermediate, included in every signature.
    pub chain: Stack<X509>,
    /// True when signing with `certs-example/`.
    pub is_example: bool,
}

impl SigningIdentity {
    pub fn load(settings: &AppleSettings) -> anyhow::Result<Self> {
        let (certificate, key, is_example) = match &settings.source {
            AppleIdentitySource::Example => (
                X509::from_pem(example::PASS_CERT)?,
                PKey::private_key_from_pem(example::PASS_KEY)?,
                true,
            ),
            AppleIdentitySource::Pem { cert, key } => {
                let cert_bytes = std::fs::read(cert)
                    .with_context(|| format!("APPLE_PASS_CERT: cannot read {}", cert.display()))?;
                let key_bytes = std::fs::read(key)
                    .with_context(|| format!("APPLE_PASS_KEY: cannot read {}", key.display()))?;
                (
                    parse_certificate(&cert_bytes)
                        .context("APPLE_PASS_CERT is not a PEM or DER certificate")?,
                    PKey::private_key_from_pem(&key_bytes)
                        .or_else(|_| PKey::private_key_from_der(&key_bytes))
                        .map_err(|_| {
                            anyhow!("APPLE_PASS_KEY is not an unencrypted PEM or DER private key")
                        })?,
                    false,
                )
            }
            AppleIdentitySource::P12 { path, password } => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("APPLE_PASS_P12: cannot read {}", path.display()))?;
                let (cert, key) = parse_p12(&bytes, password)?;
                (cert, key, false)
            }
        };
        let wwdr = match &settings.wwdr {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("APPLE_WWDR_CERT: cannot read {}", path.display()))?;
                parse_certificate(&bytes)
                    .context("APPLE_WWDR_CERT is not a PEM or DER certificate")?
            }
            None => X509::from_pem(example::WWDR)?,
        };
        Self::assemble(certificate, key, wwdr, settings, is_example)
    }

    fn assemble(
        certificate: X509,
        key: PKey<Private>,
        wwdr: X509,
        settings: &AppleSettings,
        is_example: bool,
    ) -> anyhow::Result<Self> {
        let subject = certificate.subject_name();
        if !certificate.public_key()?.public_eq(&key) {
            bail!("the Pass Type ID private key does not belong to its certificate (APPLE_PASS_KEY / APPLE_PASS_P12)");
        }
        let now = Asn1Time::days_from_now(0)?;
        if certificate.not_after() < now {
            bail!(
                "the Pass Type ID certificate expired on {}; renew it in Apple's developer portal",
                certificate.not_after()
            );
        }
        if certificate.not_before() > now {
            bail!(
                "the Pass Type ID certificate is not valid before {}",
                certificate.not_before()
            );
        }
        if wwdr.issued(&certificate) != X509VerifyResult::OK {
            bail!("the Pass Type ID certificate was not issued by the WWDR certificate given (APPLE_WWDR_CERT); Apple's current passes need the WWDR G4 intermediate");
        }
        if wwdr.not_after() < now {
            bail!(
                "the WWDR certificate expired on {} (APPLE_WWDR_CERT)",
                wwdr.not_after()
            );
        }
        let pass_type_id = match &settings.pass_type_id {
            Some(id) => id.clone(),
            None => entry(subject, Nid::USERID).ok_or_else(|| {
                anyhow!("APPLE_PASS_TYPE_ID is not set and the certificate's subject has no UID")
            })?,
        };
        let team_id = match &settings.team_id {
            Some(id) => id.clone(),
            None => entry(subject, Nid::ORGANIZATIONALUNITNAME).ok_or_else(|| {
                anyhow!("APPLE_TEAM_ID is not set and the certificate's subject has no OU")
            })?,
        };
        let mut chain = Stack::new()?;
        chain.push(wwdr)?;
        Ok(SigningIdentity {
            pass_type_id,
            team_id,
            certificate,
            key,
            chain,
            is_example,
        })
    }

    /// Logs which identity signs, and loudly when it is the example one.
    pub fn announce(&self) {
        if self.is_example {
            tracing::warn!(
                pass_type_id = %self.pass_type_id,
                "SIGNING PASSES WITH THE EXAMPLE IDENTITY FROM certs-example/: they will NOT open on a real iPhone. \
                 Set APPLE_PASS_CERT + APPLE_PASS_KEY (or APPLE_PASS_P12) and APPLE_WWDR_CERT; see README"
            );
        } else {
            tracing::info!(pass_type_id = %self.pass_type_id, team_id = %self.team_id, "Apple signing identity loaded");
        }
    }
}

fn entry(name: &X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

fn parse_certificate(bytes: &[u8]) -> anyhow::Result<X509> {
    X509::from_pem(bytes)
        .or_else(|_| X509::from_der(bytes))
        .map_err(|e| anyhow!("{e}"))
}

/// Keychain exports P12 files encrypted with RC2-40, which OpenSSL 3 only reads with its
/// legacy provider; it is loaded on first need and kept for the life of the process.
fn parse_p12(bytes: &[u8], password: &str) -> anyhow::Result<(X509, PKey<Private>)> {
    static LEGACY: OnceLock<Option<(openssl::provider::Provider, openssl::provider::Provider)>> =
        OnceLock::new();
    let p12 =
        Pkcs12::from_der(bytes).map_err(|_| anyhow!("APPLE_PASS_P12 is not a PKCS#12 file"))?;
    let parsed = match p12.parse2(password) {
        Ok(parsed) => parsed,
        Err(first) => {
            let loaded = LEGACY.get_or_init(|| {
                let legacy = openssl::provider::Provider::try_load(None, "legacy", true).ok()?;
                let default = openssl::provider::Provider::try_load(None, "default", true).ok()?;
                Some((legacy, default))
            });
            p12.parse2(password).map_err(|_| {
                if loaded.is_none() {
                    anyhow!("APPLE_PASS_P12 cannot be read ({first}); it may use legacy RC2 encryption and OpenSSL's legacy provider is not installed")
                } else {
                    anyhow!("APPLE_PASS_P12 cannot be opened: wrong APPLE_PASS_P12_PASSWORD?")
                }
            })?
        }
    };
    let cert = parsed
        .cert
        .ok_or_else(|| anyhow!("APPLE_PASS_P12 holds no certificate"))?;
    let key = parsed
        .pkey
        .ok_or_else(|| anyhow!("APPLE_PASS_P12 holds no private key"))?;
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::AppleSettings;
    use std::path::PathBuf;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn certs(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("certs-example")
            .join(name)
    }

    fn settings(source: AppleIdentitySource) -> AppleSettings {
        AppleSettings {
            pass_type_id: None,
            team_id: None,
            source,
            wwdr: Some(certs("wwdr.pem")),
        }
    }

    #[test]
    fn the_example_identity_names_its_pass_type_and_team() -> TestResult {
        let id = SigningIdentity::load(&settings(AppleIdentitySource::Example))?;
        assert_eq!(id.pass_type_id, "pass.dev.passfold.example");
        assert_eq!(id.team_id, "PASSFOLD01");
        assert!(id.is_example);
        Ok(())
    }

    #[test]
    fn pem_modern_p12_and_legacy_p12_load_the_same_identity() -> TestResult {
        let pem = SigningIdentity::load(&settings(AppleIdentitySource::Pem {
            cert: certs("pass.pem"),
            key: certs("pass.key"),
        }))?;
        for file in ["pass.p12", "pass-legacy.p12"] {
            let p12 = SigningIdentity::load(&settings(AppleIdentitySource::P12 {
                path: certs(file),
                password: "passfold".into(),
            }))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(p12.certificate.to_der()?, pem.certificate.to_der()?);
            assert!(!p12.is_example);
        }
        let wrong = SigningIdentity::load(&settings(AppleIdentitySource::P12 {
            path: certs("pass.p12"),
            password: "nope".into(),
        }));
        let err = wrong.err().ok_or("a wrong password must be refused")?;
        assert!(err.to_string().contains("APPLE_PASS_P12"));
        Ok(())
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() -> TestResult {
        let err = SigningIdentity::load(&settings(AppleIdentitySource::Pem {
            cert: certs("pass.pem"),
            key: certs("apns-server.key"),
        }))
        .err()
        .ok_or("a key of another certificate must be refused")?;
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = SigningIdentity::load(&AppleSettings {
            wwdr: Some(certs("root-ca.pem")),
            ..settings(AppleIdentitySource::Example)
        })
        .err()
        .ok_or("a wrong WWDR must be refused")?;
        assert!(err.to_string().contains("WWDR"), "{err}");
        Ok(())
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;
    use crate::configuration::AppleSettings;
    use openssl::hash::MessageDigest;
    use openssl::x509::X509Builder;

    #[test]
    fn an_expired_certificate_stops_the_start() -> Result<(), Box<dyn std::error::Error>> {
        let wwdr_key = PKey::private_key_from_pem(include_bytes!("../../certs-example/wwdr.key"))?;
        let wwdr = X509::from_pem(example::WWDR)?;
        let key = PKey::private_key_from_pem(example::PASS_KEY)?;
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_subject_name(X509::from_pem(example::PASS_CERT)?.subject_name())?;
        b.set_issuer_name(wwdr.subject_name())?;
        b.set_pubkey(&key)?;
        let (not_before, not_after) = (
            Asn1Time::from_unix(1_600_000_000)?,
            Asn1Time::from_unix(1_700_000_000)?,
        );
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.sign(&wwdr_key, MessageDigest::sha256())?;
        let settings = AppleSettings {
            pass_type_id: None,
            team_id: None,
            source: AppleIdentitySource::Example,
            wwdr: None,
        };
        let err = SigningIdentity::assemble(b.build(), key, wwdr, &settings, false)
            .err()
            .ok_or("an expired certificate must be refused")?;
        assert!(err.to_string().contains("expired"), "{err}");
        Ok(())
    }
}
