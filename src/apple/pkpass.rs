//! The `.pkpass` package: pass.json, images, localizations, `manifest.json` (SHA-1 of
//! every file) and a detached PKCS#7 signature of the manifest by the Pass Type ID key with
//! the WWDR intermediate included, zipped.

use super::assets::{stored, TemplateAssets};
use super::identity::SigningIdentity;
use super::pass_json::RenderedPass;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use sha1::{Digest, Sha1};
use std::io::{Cursor, Write};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("signing failed: {0}")]
    Sign(#[from] openssl::error::ErrorStack),
    #[error("zip failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the package failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the signed package.
pub fn build(
    identity: &SigningIdentity,
    pass: &RenderedPass,
    assets: &TemplateAssets,
) -> Result<Vec<u8>, BuildError> {
    let mut manifest = String::with_capacity(64 * (assets.hashes.len() + 4));
    manifest.push('{');
    let mut entry = |name: &str, sha1: &str| {
        if manifest.len() > 1 {
            manifest.push(',');
        }
        // File names are ours (template image names and lproj folders): no escaping needed.
        manifest.push('"');
        manifest.push_str(name);
        manifest.push_str("\":\"");
        manifest.push_str(sha1);
        manifest.push('"');
    };
    entry("pass.json", &hex::encode(Sha1::digest(&pass.pass_json)));
    let string_names: Vec<String> = pass
        .strings
        .iter()
        .map(|(lang, _)| format!("{lang}.lproj/pass.strings"))
        .collect();
    for (name, (_, bytes)) in string_names.iter().zip(&pass.strings) {
        entry(name, &hex::encode(Sha1::digest(bytes)));
    }
    for (name, sha1) in &assets.hashes {
        entry(name, sha1);
    }
    manifest.push('}');

    let signature = Pkcs7::sign(
        &identity.certificate,
        &identity.key,
        &identity.chain,
        manifest.as_bytes(),
        // No S/MIME capabilities attribute: Wallet ignores it, and it costs time per pass.
        Pkcs7Flags::BINARY | Pkcs7Flags::DETACHED | Pkcs7Flags::NOSMIMECAP,
    )?
    .to_der()?;

    let capacity =
        assets.total_len + pass.pass_json.len() + manifest.len() + signature.len() + 4096;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(capacity)));
    let options = stored();
    zip.merge_archive(assets.archive.clone())?;
    zip.start_file("pass.json", options)?;
    zip.write_all(&pass.pass_json)?;
    for (name, (_, bytes)) in string_names.iter().zip(&pass.strings) {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    zip.start_file("manifest.json", options)?;
    zip.write_all(manifest.as_bytes())?;
    zip.start_file("signature", options)?;
    zip.write_all(&signature)?;
    Ok(zip.finish()?.into_inner())
}

/// Renders and signs the pass for one card.
pub fn build_pass(
    identity: &SigningIdentity,
    content: &crate::pass_content::PassContent,
    web_service_url: &str,
) -> Result<Vec<u8>, BuildError> {
    let rendered = super::pass_json::render(&super::pass_json::PassInput {
        template: &content.template.document,
        context: &content.context,
        pass_type_id: &identity.pass_type_id,
        team_id: &identity.team_id,
        serial_number: &content.pass.serial_number,
        authentication_token: &content.pass.authentication_token,
        web_service_url,
        voided: content.voided,
        card_number: &content.card_number,
        message: content
            .pass
            .message_header
            .as_deref()
            .zip(content.pass.message_body.as_deref()),
    });
    build(identity, &rendered, &content.template.assets)
}
