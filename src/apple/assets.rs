//! A template version's images as the Apple package carries them, prepared once per
//! version: apart from the package builder so that pass content can hold them without
//! depending on the builder.

use crate::template::images::{is_google, Images};
use sha1::{Digest, Sha1};
use std::io::{Cursor, Write};
use std::sync::Arc;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// A template version's images, prepared once and shared by every pass built from that
/// version: their SHA-1s for the manifest, and a zip of them whose entries (headers, CRCs
/// and data) are copied into each package as they are.
pub struct TemplateAssets {
    pub(super) hashes: Vec<(String, String)>,
    /// Every image of the template, Google's too (those stay out of the package).
    files: Vec<String>,
    pub(super) archive: zip::ZipArchive<Cursor<Arc<[u8]>>>,
    pub(super) total_len: usize,
}

impl TemplateAssets {
    pub fn new(images: &Images) -> Arc<Self> {
        let files = images.keys().cloned().collect();
        let apple = || images.iter().filter(|(name, _)| !is_google(name));
        let hashes = apple()
            .map(|(name, bytes)| (name.clone(), hex::encode(Sha1::digest(bytes))))
            .collect();
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in apple() {
            // Writing to memory cannot fail for these few small entries.
            let _ = zip.start_file(name.as_str(), stored());
            let _ = zip.write_all(bytes);
        }
        let bytes: Arc<[u8]> = zip
            .finish()
            .map(|c| c.into_inner())
            .unwrap_or_default()
            .into();
        let total_len = bytes.len();
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .or_else(|_| zip::ZipArchive::new(Cursor::new(Arc::<[u8]>::from(EMPTY_ZIP))))
            .expect("an empty zip parses");
        Arc::new(Self {
            hashes,
            files,
            archive,
            total_len,
        })
    }
}

impl TemplateAssets {
    /// Whether the template has this image.
    pub fn has(&self, file: &str) -> bool {
        self.files.iter().any(|name| name == file)
    }
}

/// End-of-central-directory record of an empty zip.
const EMPTY_ZIP: &[u8] = &[
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Stored, not deflated: PNGs are compressed already and the rest is small; a fixed
/// timestamp keeps the bytes of an unchanged pass stable apart from the signature.
pub(super) fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
}
