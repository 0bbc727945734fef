//! The issuer id and the service account's key, as Google issues the JSON key file.

use crate::configuration::GoogleSettings;
use anyhow::{anyhow, Context};
use serde::Deserialize;

const EXAMPLE_KEY: &[u8] = include_bytes!("../../certs-example/google-service-account.json");
const EXAMPLE_ISSUER: &str = include_str!("../../certs-example/google-issuer-id");

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    private_key_id: String,
}

pub struct GoogleIssuer {
    pub issuer_id: String,
    pub client_email: String,
    pub key_id: String,
    pub key: jsonwebtoken::EncodingKey,
    pub is_example: bool,
}

impl GoogleIssuer {
    pub fn load(settings: &GoogleSettings) -> anyhow::Result<Self> {
        super::rs256::install();
        let (bytes, example_key) = match &settings.service_account_key {
            Some(path) => (
                std::fs::read(path).with_context(|| {
                    format!("GOOGLE_SERVICE_ACCOUNT_KEY: cannot read {}", path.display())
                })?,
                false,
            ),
            None => (EXAMPLE_KEY.to_vec(), true),
        };
        let file: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("GOOGLE_SERVICE_ACCOUNT_KEY is not a service-account key file as Google issues it: {e}"))?;
        if file.kind != "service_account" {
            return Err(anyhow!(
                "GOOGLE_SERVICE_ACCOUNT_KEY: type is {:?}, not \"service_account\"",
                file.kind
            ));
        }
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key.as_bytes()).map_err(|e| {
                anyhow!("GOOGLE_SERVICE_ACCOUNT_KEY: the private key cannot sign RS256: {e}")
            })?;
        let issuer_id = settings
            .issuer_id
            .clone()
            .unwrap_or_else(|| EXAMPLE_ISSUER.trim().to_string());
        Ok(GoogleIssuer {
            is_example: example_key || settings.issuer_id.is_none(),
            issuer_id,
            client_email: file.client_email,
            key_id: file.private_key_id,
            key,
        })
    }

    pub fn announce(&self) {
        if self.is_example {
            tracing::warn!(
                issuer_id = %self.issuer_id,
                "GOOGLE WALLET USES THE EXAMPLE ISSUER AND KEY FROM certs-example/: Google will refuse its save links and API calls. \
                 Set GOOGLE_ISSUER_ID and GOOGLE_SERVICE_ACCOUNT_KEY; see README"
            );
        }
    }

    /// `issuerId.suffix`, with only the characters Google allows in ids.
    pub fn id(&self, suffix: &str) -> String {
        let clean: String = suffix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}.{clean}", self.issuer_id)
    }
}
