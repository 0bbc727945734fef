#![allow(dead_code)] // each test binary uses a different part of the checker
//! An independent, strict checker for Apple Wallet `.pkpass` files.
//!
//! It shares no code with the service: the archive is read with the `zip` crate, hashes are
//! recomputed with `sha1`, and the signature is verified with the `openssl` command-line tool
//! against a trust anchor given by the caller (the example root CA by default). The pass.json
//! rules follow Apple's "PassKit Package Format Reference" (top-level `Pass` keys, pass
//! structure and field dictionaries), deliberately stricter than Wallet itself so that typos
//! and wrong types fail the tests instead of being silently ignored on a device.
//!
//! Every problem panics with a message starting with `pkpass check failed:` and naming the
//! file and JSON path involved.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A pass that passed every check.
pub struct CheckedPass {
    /// The parsed `pass.json`.
    pub pass_json: Value,
    /// Every file in the archive (directory entries excluded), by its name in the archive.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Subject of the signing certificate, one line, as `openssl x509 -subject -nameopt RFC2253`
    /// prints it (without the `subject=` prefix).
    pub signer_subject: String,
    /// The `signingTime` signed attribute as `openssl cms -print` prints it, without the ASN.1
    /// type prefix, e.g. `Nov 23 11:03:37 2026 GMT`.
    pub signing_time: String,
}

/// Checks a `.pkpass` archive, verifying its signature against `certs-example/root-ca.pem`.
/// Panics with a precise message on the first problem found.
pub fn check_pkpass(bytes: &[u8]) -> CheckedPass {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-example/root-ca.pem");
    check_pkpass_with_root(bytes, &root)
}

/// Checks a `.pkpass` archive, verifying its signature against the given root CA (PEM).
/// Panics with a precise message on the first problem found.
pub fn check_pkpass_with_root(bytes: &[u8], root_ca_pem: &Path) -> CheckedPass {
    // 1. Archive layout.
    let files = read_archive(bytes);
    // 2. Manifest.
    check_manifest(&files);
    // 3. Signature.
    let signature = check_signature(&files, root_ca_pem);
    // 4. pass.json, and that it belongs to the signing certificate.
    let pass_json = check_pass_json(&files["pass.json"]);
    check_signer_matches_pass(&signature, &pass_json);
    // 5. Localizations.
    for (name, data) in &files {
        if name.ends_with(".lproj/pass.strings") {
            if let Err(e) = parse_strings(data) {
                fail(format!("{name}: {e}"));
            }
        }
    }
    // 6. Images.
    for (name, data) in &files {
        if name.to_ascii_lowercase().ends_with(".png") && !data.starts_with(PNG_SIGNATURE) {
            fail(format!("{name}: does not start with the PNG signature"));
        }
    }
    CheckedPass {
        pass_json,
        files,
        signer_subject: signature.subject,
        signing_time: signature.signing_time,
    }
}

/// Parses `<lang>.lproj/pass.strings` of a checked pass. Panics if it is missing or malformed.
pub fn pass_strings(checked: &CheckedPass, lang: &str) -> BTreeMap<String, String> {
    let name = format!("{lang}.lproj/pass.strings");
    let Some(data) = checked.files.get(&name) else {
        fail(format!(
            "{name} is not in the pass (files: {:?})",
            checked.files.keys().collect::<Vec<_>>()
        ));
    };
    parse_strings(data).unwrap_or_else(|e| fail(format!("{name}: {e}")))
}

fn fail(message: impl fmt::Display) -> ! {
    panic!("pkpass check failed: {message}")
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const REQUIRED_FILES: [&str; 4] = ["pass.json", "manifest.json", "signature", "icon.png"];
/// Top-level files other than images that a pass package may hold.
const TOP_LEVEL_NON_IMAGES: [&str; 4] = [
    "pass.json",
    "manifest.json",
    "signature",
    "personalization.json",
];

// ---------------------------------------------------------------------------------------------
// 1. Archive

fn lproj_language(dir: &str) -> Option<&str> {
    let lang = dir.strip_suffix(".lproj")?;
    let ok = !lang.is_empty()
        && lang
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(lang)
}

fn read_archive(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .unwrap_or_else(|e| fail(format!("not a zip archive: {e}")));
    let mut files = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .unwrap_or_else(|e| fail(format!("zip entry #{index} cannot be read: {e}")));
        let name = entry.name().to_string();
        if name.is_empty() {
            fail(format!("zip entry #{index} has an empty name"));
        }
        if name.starts_with('/') {
            fail(format!("zip entry {name:?} has a leading '/'"));
        }
        if name.contains('\\') || name.contains('\0') {
            fail(format!("zip entry {name:?} contains a backslash or NUL"));
        }
        if name.split('/').any(|part| part == ".." || part == ".") {
            fail(format!(
                "zip entry {name:?} contains a '..' or '.' component"
            ));
        }
        if entry.is_symlink() {
            fail(format!("zip entry {name:?} is a symbolic link"));
        }
        if entry.is_dir() {
            let dir = name.strip_suffix('/').unwrap_or(&name);
            if dir.contains('/') || lproj_language(dir).is_none() {
                fail(format!(
                    "zip entry {name:?} is a directory other than <lang>.lproj/"
                ));
            }
            if !dirs.insert(name.clone()) {
                fail(format!("zip entry {name:?} appears twice"));
            }
            continue;
        }
        let parts: Vec<&str> = name.split('/').collect();
        match parts.as_slice() {
            [file] => {
                if !TOP_LEVEL_NON_IMAGES.contains(file) && !file.ends_with(".png") {
                    fail(format!(
                        "zip entry {name:?} is not a pass package file (expected one of \
                         {TOP_LEVEL_NON_IMAGES:?} or a .png image)"
                    ));
                }
            }
            [dir, file] => {
                if lproj_language(dir).is_none() {
                    fail(format!(
                        "zip entry {name:?} is in a directory other than <lang>.lproj/"
                    ));
                }
                if *file != "pass.strings" && !file.ends_with(".png") {
                    fail(format!(
                        "zip entry {name:?}: a .lproj directory may only hold pass.strings \
                         and .png images"
                    ));
                }
            }
            _ => fail(format!(
                "zip entry {name:?} is nested deeper than <lang>.lproj/<file>"
            )),
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .unwrap_or_else(|e| fail(format!("zip entry {name:?} cannot be extracted: {e}")));
        if files.insert(name.clone(), data).is_some() {
            fail(format!("zip entry {name:?} appears twice"));
        }
    }
    for required in REQUIRED_FILES {
        if !files.contains_key(required) {
            fail(format!(
                "required file {required} is missing (files: {:?})",
                files.keys().collect::<Vec<_>>()
            ));
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// 2. Manifest

fn check_manifest(files: &BTreeMap<String, Vec<u8>>) {
    let manifest = parse_json_object("manifest.json", &files["manifest.json"]);
    for (name, hash) in &manifest {
        let Some(hash) = hash.as_str() else {
            fail(format!(
                "manifest.json: the entry for {name:?} is not a string: {hash}"
            ));
        };
        if hash.len() != 40 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            fail(format!(
                "manifest.json: the entry for {name:?} is not a lowercase hex SHA-1: {hash:?}"
            ));
        }
        if name == "manifest.json" || name == "signature" {
            fail(format!("manifest.json must not list {name}"));
        }
        if !files.contains_key(name) {
            fail(format!(
                "manifest.json lists {name:?}, which is not in the archive"
            ));
        }
    }
    for (name, data) in files {
        if name == "manifest.json" || name == "signature" {
            continue;
        }
        let Some(listed) = manifest.get(name).and_then(Value::as_str) else {
            fail(format!("{name} is in the archive but not in manifest.json"));
        };
        let actual = hex::encode(Sha1::digest(data));
        if listed != actual {
            fail(format!(
                "{name}: SHA-1 mismatch: manifest.json says {listed}, the file hashes to {actual}"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Signature

struct SignatureInfo {
    subject: String,
    signing_time: String,
    signer_pem: Vec<u8>,
}

/// A uniquely named directory under the system temp dir, removed on drop (also when a check
/// panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "passfold-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl <args>` and returns its stdout; panics with `what` and stderr on failure.
fn openssl(args: &[&std::ffi::OsStr], what: &str) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the openssl CLI: {e}"));
    if !output.status.success() {
        fail(format!(
            "{what}: `openssl {}` failed ({}): {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    output.stdout
}

fn check_signature(files: &BTreeMap<String, Vec<u8>>, root_ca_pem: &Path) -> SignatureInfo {
    if !root_ca_pem.is_file() {
        panic!("root CA {} does not exist", root_ca_pem.display());
    }
    let dir = TempDir::new("pass-check");
    let manifest = dir.write("manifest.json", &files["manifest.json"]);
    let signature = dir.write("signature", &files["signature"]);
    let signer = dir.path().join("signer.pem");

    // Detached PKCS#7 over manifest.json, chaining to the root through the certificates
    // carried in the signature (so the WWDR intermediate must be embedded).
    openssl(
        &[
            "smime".as_ref(),
            "-verify".as_ref(),
            "-binary".as_ref(),
            "-inform".as_ref(),
            "DER".as_ref(),
            "-in".as_ref(),
            signature.as_os_str(),
            "-content".as_ref(),
            manifest.as_os_str(),
            "-CAfile".as_ref(),
            root_ca_pem.as_os_str(),
            "-purpose".as_ref(),
            "any".as_ref(),
            "-signer".as_ref(),
            signer.as_os_str(),
            "-out".as_ref(),
            "/dev/null".as_ref(),
        ],
        "signature does not verify",
    );

    let signer_pem = std::fs::read(&signer).unwrap_or_else(|e| panic!("read signer.pem: {e}"));
    let signer_count = count_pem_certificates(&signer_pem);
    if signer_count != 1 {
        fail(format!(
            "signature: expected exactly one signer, found {signer_count}"
        ));
    }

    let certs = openssl(
        &[
            "pkcs7".as_ref(),
            "-inform".as_ref(),
            "DER".as_ref(),
            "-in".as_ref(),
            signature.as_os_str(),
            "-print_certs".as_ref(),
        ],
        "signature certificates cannot be listed",
    );
    let cert_count = count_pem_certificates(&certs);
    if cert_count < 2 {
        fail(format!(
            "signature: carries {cert_count} certificate(s); expected at least 2 \
             (signer + WWDR intermediate)"
        ));
    }

    let printed = openssl(
        &[
            "cms".as_ref(),
            "-cmsout".as_ref(),
            "-print".as_ref(),
            "-inform".as_ref(),
            "DER".as_ref(),
            "-in".as_ref(),
            signature.as_os_str(),
        ],
        "signature cannot be printed",
    );
    let printed = String::from_utf8_lossy(&printed);
    if !printed
        .lines()
        .any(|l| l.trim_start().starts_with("contentType: pkcs7-signedData"))
    {
        fail("signature: not a PKCS#7 signedData structure");
    }
    if !printed.lines().any(|l| l.trim() == "eContent: <ABSENT>") {
        fail("signature: not detached (it embeds content; expected eContent <ABSENT>)");
    }
    let signing_time = signed_attribute_signing_time(&printed)
        .unwrap_or_else(|| fail("signature: no signingTime signed attribute"));

    let subject = openssl(
        &[
            "x509".as_ref(),
            "-in".as_ref(),
            signer.as_os_str(),
            "-noout".as_ref(),
            "-subject".as_ref(),
            "-nameopt".as_ref(),
            "RFC2253".as_ref(),
        ],
        "signer certificate subject cannot be printed",
    );
    let subject = String::from_utf8_lossy(&subject).trim().to_string();
    let subject = subject
        .strip_prefix("subject=")
        .unwrap_or(&subject)
        .trim()
        .to_string();
    if !subject.contains("UID=") {
        fail(format!(
            "signature: the signer {subject:?} is not a Pass Type ID certificate (no UID=)"
        ));
    }
    SignatureInfo {
        subject,
        signing_time,
        signer_pem,
    }
}

fn count_pem_certificates(pem: &[u8]) -> usize {
    String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| l.trim() == "-----BEGIN CERTIFICATE-----")
        .count()
}

/// Finds `signingTime` inside the `signedAttrs:` block of `openssl cms -cmsout -print` output.
fn signed_attribute_signing_time(printed: &str) -> Option<String> {
    let mut in_signed_attrs = false;
    let mut in_signing_time = false;
    for line in printed.lines() {
        let line = line.trim();
        if line.starts_with("signedAttrs:") {
            in_signed_attrs = true;
            continue;
        }
        if !in_signed_attrs {
            continue;
        }
        if line.starts_with("signatureAlgorithm:") || line.starts_with("unsignedAttrs:") {
            in_signed_attrs = false;
            in_signing_time = false;
            continue;
        }
        if line.starts_with("object:") {
            in_signing_time = line.starts_with("object: signingTime");
            continue;
        }
        if in_signing_time {
            for prefix in ["UTCTIME:", "GENERALIZEDTIME:"] {
                if let Some(time) = line.strip_prefix(prefix) {
                    return Some(time.trim().to_string());
                }
            }
        }
    }
    None
}

fn check_signer_matches_pass(signature: &SignatureInfo, pass: &Value) {
    let cert = openssl::x509::X509::from_pem(&signature.signer_pem)
        .unwrap_or_else(|e| panic!("parse signer certificate: {e}"));
    let entry = |nid: openssl::nid::Nid| -> Option<String> {
        cert.subject_name()
            .entries_by_nid(nid)
            .next()
            .and_then(|e| e.data().to_string().ok())
    };
    let uid = entry(openssl::nid::Nid::USERID);
    let team = entry(openssl::nid::Nid::ORGANIZATIONALUNITNAME);
    let pass_type = pass["passTypeIdentifier"].as_str();
    let pass_team = pass["teamIdentifier"].as_str();
    if uid.as_deref() != pass_type {
        fail(format!(
            "pass.json: passTypeIdentifier {pass_type:?} does not match the signing certificate's \
             UID {uid:?}"
        ));
    }
    if team.as_deref() != pass_team {
        fail(format!(
            "pass.json: teamIdentifier {pass_team:?} does not match the signing certificate's \
             OU {team:?}"
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

/// Deserializes any JSON value, failing on an object with a repeated key (which serde_json
/// would otherwise silently collapse to the last value).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

fn parse_json_object(name: &str, data: &[u8]) -> Map<String, Value> {
    let text =
        std::str::from_utf8(data).unwrap_or_else(|e| fail(format!("{name}: not UTF-8: {e}")));
    if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(text) {
        fail(format!("{name}: not valid JSON: {e}"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(other) => fail(format!("{name}: not a JSON object: {other}")),
        Err(e) => fail(format!("{name}: not valid JSON: {e}")),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expect_str<'a>(path: &str, value: &'a Value) -> &'a str {
    value.as_str().unwrap_or_else(|| {
        fail(format!(
            "pass.json: {path} must be a string, found {}: {value}",
            type_name(value)
        ))
    })
}

fn expect_non_empty_str<'a>(path: &str, value: &'a Value) -> &'a str {
    let s = expect_str(path, value);
    if s.trim().is_empty() {
        fail(format!("pass.json: {path} must be a non-empty string"));
    }
    s
}

fn expect_bool(path: &str, value: &Value) {
    if !value.is_boolean() {
        fail(format!(
            "pass.json: {path} must be a boolean, found {}: {value}",
            type_name(value)
        ));
    }
}

fn expect_number(path: &str, value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| {
        fail(format!(
            "pass.json: {path} must be a number, found {}: {value}",
            type_name(value)
        ))
    })
}

fn expect_object<'a>(path: &str, value: &'a Value) -> &'a Map<String, Value> {
    value.as_object().unwrap_or_else(|| {
        fail(format!(
            "pass.json: {path} must be an object, found {}: {value}",
            type_name(value)
        ))
    })
}

fn expect_array<'a>(path: &str, value: &'a Value) -> &'a Vec<Value> {
    value.as_array().unwrap_or_else(|| {
        fail(format!(
            "pass.json: {path} must be an array, found {}: {value}",
            type_name(value)
        ))
    })
}

fn expect_one_of(path: &str, value: &Value, allowed: &[&str]) {
    let s = expect_str(path, value);
    if !allowed.contains(&s) {
        fail(format!(
            "pass.json: {path} is {s:?}, expected one of {allowed:?}"
        ));
    }
}

fn reject_unknown_keys(path: &str, object: &Map<String, Value>, allowed: &[&str]) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            fail(format!(
                "pass.json: unknown key {key:?} in {path} (allowed: {allowed:?})"
            ));
        }
    }
}

fn require<'a>(path: &str, object: &'a Map<String, Value>, key: &str) -> &'a Value {
    object
        .get(key)
        .unwrap_or_else(|| fail(format!("pass.json: {path} lacks the required key {key:?}")))
}

// ---------------------------------------------------------------------------------------------
// 4. pass.json

const STYLE_KEYS: [&str; 5] = [
    "boardingPass",
    "coupon",
    "eventTicket",
    "generic",
    "storeCard",
];

const TOP_LEVEL_KEYS: &[&str] = &[
    // Required.
    "formatVersion",
    "passTypeIdentifier",
    "teamIdentifier",
    "serialNumber",
    "organizationName",
    "description",
    // Style.
    "boardingPass",
    "coupon",
    "eventTicket",
    "generic",
    "storeCard",
    // Optional.
    "backgroundColor",
    "foregroundColor",
    "labelColor",
    "logoText",
    "webServiceURL",
    "authenticationToken",
    "barcodes",
    "barcode",
    "voided",
    "expirationDate",
    "relevantDate",
    "relevantDates",
    "locations",
    "beacons",
    "maxDistance",
    "sharingProhibited",
    "suppressStripShine",
    "userInfo",
    "associatedStoreIdentifiers",
    "appLaunchURL",
    "groupingIdentifier",
    "semantics",
];

const BARCODE_FORMATS: [&str; 4] = [
    "PKBarcodeFormatQR",
    "PKBarcodeFormatPDF417",
    "PKBarcodeFormatAztec",
    "PKBarcodeFormatCode128",
];

const FIELD_ARRAYS: [&str; 5] = [
    "headerFields",
    "primaryFields",
    "secondaryFields",
    "auxiliaryFields",
    "backFields",
];

const FIELD_KEYS: &[&str] = &[
    "key",
    "value",
    "label",
    "changeMessage",
    "textAlignment",
    "currencyCode",
    "numberStyle",
    "dateStyle",
    "timeStyle",
    "isRelative",
    "ignoresTimeZone",
    "attributedValue",
    "dataDetectorTypes",
    "semantics",
    "row",
];

const DATE_STYLES: [&str; 5] = [
    "PKDateStyleNone",
    "PKDateStyleShort",
    "PKDateStyleMedium",
    "PKDateStyleLong",
    "PKDateStyleFull",
];

fn check_pass_json(data: &[u8]) -> Value {
    let pass = parse_json_object("pass.json", data);

    if pass.contains_key("nfc") {
        fail("pass.json: has an \"nfc\" key, which needs an NFC entitlement passfold never has");
    }
    reject_unknown_keys("the top level", &pass, TOP_LEVEL_KEYS);

    let version = require("the top level", &pass, "formatVersion");
    if version.as_u64() != Some(1) {
        fail(format!(
            "pass.json: formatVersion must be the integer 1, found {version}"
        ));
    }
    for key in [
        "passTypeIdentifier",
        "teamIdentifier",
        "serialNumber",
        "organizationName",
        "description",
    ] {
        expect_non_empty_str(key, require("the top level", &pass, key));
    }

    let styles: Vec<&str> = STYLE_KEYS
        .into_iter()
        .filter(|k| pass.contains_key(*k))
        .collect();
    let [style] = styles.as_slice() else {
        fail(format!(
            "pass.json: needs exactly one style key among {STYLE_KEYS:?}, found {styles:?}"
        ));
    };
    check_style(style, &pass[*style]);

    for key in ["backgroundColor", "foregroundColor", "labelColor"] {
        if let Some(v) = pass.get(key) {
            let s = expect_str(key, v);
            if !is_rgb_color(s) {
                fail(format!(
                    "pass.json: {key} is {s:?}, expected rgb(r, g, b) with components 0-255"
                ));
            }
        }
    }
    for key in ["logoText", "groupingIdentifier"] {
        if let Some(v) = pass.get(key) {
            expect_str(key, v);
        }
    }
    for key in ["voided", "sharingProhibited", "suppressStripShine"] {
        if let Some(v) = pass.get(key) {
            expect_bool(key, v);
        }
    }
    for key in ["userInfo", "semantics"] {
        if let Some(v) = pass.get(key) {
            expect_object(key, v);
        }
    }
    for key in ["expirationDate", "relevantDate"] {
        if let Some(v) = pass.get(key) {
            let s = expect_str(key, v);
            if !is_w3c_date_time(s) {
                fail(format!(
                    "pass.json: {key} is {s:?}, expected a W3C date-time with a time zone \
                     (e.g. 2026-01-31T18:00:00+01:00)"
                ));
            }
        }
    }

    // iOS 18+: Pass.RelevantDates entries, each a moment (`date`; iOS 18.0 read
    // `relevantDate`) or an interval (`startDate` with `endDate`), all W3C date-times.
    if let Some(entries) = pass.get("relevantDates") {
        for (i, entry) in expect_array("relevantDates", entries).iter().enumerate() {
            let path = format!("relevantDates[{i}]");
            let entry = expect_object(&path, entry);
            for (key, value) in entry {
                if !["date", "relevantDate", "startDate", "endDate"].contains(&key.as_str()) {
                    fail(format!("pass.json: unknown key {key:?} in {path}"));
                }
                let s = expect_str(&format!("{path}.{key}"), value);
                if !is_w3c_date_time(s) {
                    fail(format!(
                        "pass.json: {path}.{key} is {s:?}, expected a W3C date-time"
                    ));
                }
            }
            let moment = entry.contains_key("date") || entry.contains_key("relevantDate");
            let interval = entry.contains_key("startDate") && entry.contains_key("endDate");
            if moment == interval {
                fail(format!(
                    "pass.json: {path} must be either a date or a startDate/endDate interval"
                ));
            }
        }
    }

    match (pass.get("webServiceURL"), pass.get("authenticationToken")) {
        (None, None) => {}
        (Some(url), Some(token)) => {
            let url = expect_str("webServiceURL", url);
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.len() <= "https://".len()
            {
                fail(format!(
                    "pass.json: webServiceURL is {url:?}, expected an http:// or https:// URL"
                ));
            }
            let token = expect_str("authenticationToken", token);
            if token.chars().count() < 16 {
                fail(format!(
                    "pass.json: authenticationToken must be at least 16 characters, has {}",
                    token.chars().count()
                ));
            }
        }
        (Some(_), None) => fail("pass.json: webServiceURL without authenticationToken"),
        (None, Some(_)) => fail("pass.json: authenticationToken without webServiceURL"),
    }

    if let Some(barcodes) = pass.get("barcodes") {
        for (i, barcode) in expect_array("barcodes", barcodes).iter().enumerate() {
            check_barcode(&format!("barcodes[{i}]"), barcode, &BARCODE_FORMATS);
        }
    }
    if let Some(barcode) = pass.get("barcode") {
        // The legacy key predates Code 128 support.
        check_barcode("barcode", barcode, &BARCODE_FORMATS[..3]);
    }

    if let Some(locations) = pass.get("locations") {
        let locations = expect_array("locations", locations);
        if locations.len() > 10 {
            fail(format!(
                "pass.json: locations has {} entries, at most 10 are allowed",
                locations.len()
            ));
        }
        for (i, location) in locations.iter().enumerate() {
            check_location(&format!("locations[{i}]"), location);
        }
    }
    if let Some(beacons) = pass.get("beacons") {
        let beacons = expect_array("beacons", beacons);
        if beacons.len() > 10 {
            fail(format!(
                "pass.json: beacons has {} entries, at most 10 are allowed",
                beacons.len()
            ));
        }
        for (i, beacon) in beacons.iter().enumerate() {
            check_beacon(&format!("beacons[{i}]"), beacon);
        }
    }
    if let Some(v) = pass.get("maxDistance") {
        if expect_number("maxDistance", v) < 0.0 {
            fail(format!("pass.json: maxDistance must not be negative: {v}"));
        }
    }
    if let Some(ids) = pass.get("associatedStoreIdentifiers") {
        for (i, id) in expect_array("associatedStoreIdentifiers", ids)
            .iter()
            .enumerate()
        {
            if id.as_u64().is_none() {
                fail(format!(
                    "pass.json: associatedStoreIdentifiers[{i}] must be a non-negative integer, \
                     found {id}"
                ));
            }
        }
    }
    if let Some(v) = pass.get("appLaunchURL") {
        expect_str("appLaunchURL", v);
        if !pass.contains_key("associatedStoreIdentifiers") {
            fail("pass.json: appLaunchURL requires associatedStoreIdentifiers");
        }
    }

    Value::Object(pass)
}

fn check_style(style: &str, value: &Value) {
    let dict = expect_object(style, value);
    let mut allowed: Vec<&str> = FIELD_ARRAYS.to_vec();
    if style == "boardingPass" {
        allowed.push("transitType");
        expect_one_of(
            "boardingPass.transitType",
            require(style, dict, "transitType"),
            &[
                "PKTransitTypeAir",
                "PKTransitTypeBoat",
                "PKTransitTypeBus",
                "PKTransitTypeGeneric",
                "PKTransitTypeTrain",
            ],
        );
    }
    reject_unknown_keys(style, dict, &allowed);
    let mut keys = BTreeMap::new();
    for array in FIELD_ARRAYS {
        let Some(fields) = dict.get(array) else {
            continue;
        };
        let array_path = format!("{style}.{array}");
        for (i, field) in expect_array(&array_path, fields).iter().enumerate() {
            let path = format!("{array_path}[{i}]");
            let key = check_field(&path, array, field);
            if let Some(first) = keys.insert(key.to_string(), path.clone()) {
                fail(format!(
                    "pass.json: field key {key:?} of {path} is already used by {first}; \
                     keys must be unique across the pass"
                ));
            }
        }
    }
}

/// Checks one field dictionary and returns its key.
fn check_field<'a>(path: &str, array: &str, value: &'a Value) -> &'a str {
    let field = expect_object(path, value);
    reject_unknown_keys(path, field, FIELD_KEYS);
    let key = expect_non_empty_str(&format!("{path}.key"), require(path, field, "key"));
    let value = require(path, field, "value");
    if !(value.is_string() || value.is_number()) {
        fail(format!(
            "pass.json: {path}.value must be a string or a number, found {}: {value}",
            type_name(value)
        ));
    }
    if let Some(v) = field.get("label") {
        expect_str(&format!("{path}.label"), v);
    }
    if let Some(v) = field.get("changeMessage") {
        let s = expect_str(&format!("{path}.changeMessage"), v);
        if !s.contains("%@") {
            fail(format!(
                "pass.json: {path}.changeMessage {s:?} must contain %@"
            ));
        }
    }
    if let Some(v) = field.get("textAlignment") {
        expect_one_of(
            &format!("{path}.textAlignment"),
            v,
            &[
                "PKTextAlignmentLeft",
                "PKTextAlignmentCenter",
                "PKTextAlignmentRight",
                "PKTextAlignmentNatural",
            ],
        );
    }
    if let Some(v) = field.get("currencyCode") {
        let s = expect_str(&format!("{path}.currencyCode"), v);
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            fail(format!(
                "pass.json: {path}.currencyCode {s:?} must be 3 uppercase letters (ISO 4217)"
            ));
        }
        if !value.is_number() {
            fail(format!(
                "pass.json: {path} has a currencyCode but its value is not a number: {value}"
            ));
        }
    }
    if let Some(v) = field.get("numberStyle") {
        expect_one_of(
            &format!("{path}.numberStyle"),
            v,
            &[
                "PKNumberStyleDecimal",
                "PKNumberStylePercent",
                "PKNumberStyleScientific",
                "PKNumberStyleSpellOut",
            ],
        );
        if !value.is_number() {
            fail(format!(
                "pass.json: {path} has a numberStyle but its value is not a number: {value}"
            ));
        }
    }
    for style in ["dateStyle", "timeStyle"] {
        if let Some(v) = field.get(style) {
            expect_one_of(&format!("{path}.{style}"), v, &DATE_STYLES);
            if !value.as_str().is_some_and(is_w3c_date_time) {
                fail(format!(
                    "pass.json: {path} has a {style} but its value is not a W3C date-time \
                     with a time zone: {value}"
                ));
            }
        }
    }
    for flag in ["isRelative", "ignoresTimeZone"] {
        if let Some(v) = field.get(flag) {
            expect_bool(&format!("{path}.{flag}"), v);
        }
    }
    if let Some(v) = field.get("attributedValue") {
        if !(v.is_string() || v.is_number()) {
            fail(format!(
                "pass.json: {path}.attributedValue must be a string or a number, found {}: {v}",
                type_name(v)
            ));
        }
    }
    if let Some(v) = field.get("dataDetectorTypes") {
        let detectors_path = format!("{path}.dataDetectorTypes");
        for (i, detector) in expect_array(&detectors_path, v).iter().enumerate() {
            expect_one_of(
                &format!("{detectors_path}[{i}]"),
                detector,
                &[
                    "PKDataDetectorTypePhoneNumber",
                    "PKDataDetectorTypeLink",
                    "PKDataDetectorTypeAddress",
                    "PKDataDetectorTypeCalendarEvent",
                ],
            );
        }
    }
    if let Some(v) = field.get("semantics") {
        expect_object(&format!("{path}.semantics"), v);
    }
    if let Some(v) = field.get("row") {
        if array != "auxiliaryFields" {
            fail(format!(
                "pass.json: {path}.row is only allowed in auxiliaryFields"
            ));
        }
        if !matches!(v.as_u64(), Some(0 | 1)) {
            fail(format!("pass.json: {path}.row must be 0 or 1, found {v}"));
        }
    }
    key
}

fn check_barcode(path: &str, value: &Value, formats: &[&str]) {
    let barcode = expect_object(path, value);
    reject_unknown_keys(
        path,
        barcode,
        &["format", "message", "messageEncoding", "altText"],
    );
    expect_one_of(
        &format!("{path}.format"),
        require(path, barcode, "format"),
        formats,
    );
    expect_str(
        &format!("{path}.message"),
        require(path, barcode, "message"),
    );
    expect_non_empty_str(
        &format!("{path}.messageEncoding"),
        require(path, barcode, "messageEncoding"),
    );
    if let Some(v) = barcode.get("altText") {
        expect_str(&format!("{path}.altText"), v);
    }
}

fn check_location(path: &str, value: &Value) {
    let location = expect_object(path, value);
    reject_unknown_keys(
        path,
        location,
        &["latitude", "longitude", "altitude", "relevantText"],
    );
    let latitude = expect_number(
        &format!("{path}.latitude"),
        require(path, location, "latitude"),
    );
    let longitude = expect_number(
        &format!("{path}.longitude"),
        require(path, location, "longitude"),
    );
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        fail(format!(
            "pass.json: {path} has an out-of-range latitude/longitude: {latitude}, {longitude}"
        ));
    }
    if let Some(v) = location.get("altitude") {
        expect_number(&format!("{path}.altitude"), v);
    }
    if let Some(v) = location.get("relevantText") {
        expect_str(&format!("{path}.relevantText"), v);
    }
}

fn check_beacon(path: &str, value: &Value) {
    let beacon = expect_object(path, value);
    reject_unknown_keys(
        path,
        beacon,
        &["proximityUUID", "major", "minor", "relevantText"],
    );
    expect_non_empty_str(
        &format!("{path}.proximityUUID"),
        require(path, beacon, "proximityUUID"),
    );
    for key in ["major", "minor"] {
        if let Some(v) = beacon.get(key) {
            if !matches!(v.as_u64(), Some(0..=65535)) {
                fail(format!(
                    "pass.json: {path}.{key} must be an integer 0-65535, found {v}"
                ));
            }
        }
    }
    if let Some(v) = beacon.get("relevantText") {
        expect_str(&format!("{path}.relevantText"), v);
    }
}

/// `rgb(r, g, b)` with decimal components 0-255; spaces around components are optional.
fn is_rgb_color(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(',').map(|p| p.trim_matches(' ')).collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// W3C date-time (ISO 8601 profile) with at least minutes and a mandatory time zone:
/// `YYYY-MM-DDThh:mm[:ss[.s+]](Z|±hh:mm)`.
fn is_w3c_date_time(s: &str) -> bool {
    fn number(b: &[u8], at: usize, len: usize) -> Option<u32> {
        let digits = b.get(at..at + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    }
    let b = s.as_bytes();
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute)) = (
        number(b, 0, 4),
        number(b, 5, 2),
        number(b, 8, 2),
        number(b, 11, 2),
        number(b, 14, 2),
    ) else {
        return false;
    };
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
    {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 {
        return false;
    }
    let mut at = 16;
    if b.get(at) == Some(&b':') {
        match number(b, at + 1, 2) {
            Some(second) if second <= 60 => at += 3,
            _ => return false,
        }
        if b.get(at) == Some(&b'.') {
            let fraction = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if fraction == 0 {
                return false;
            }
            at += 1 + fraction;
        }
    }
    match b.get(at) {
        Some(b'Z') => at + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.get(at + 3) == Some(&b':')
                && number(b, at + 1, 2).is_some_and(|h| h <= 23)
                && number(b, at + 4, 2).is_some_and(|m| m <= 59)
                && at + 6 == b.len()
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// 5. pass.strings

/// Decodes a `.strings` file (UTF-8 with or without BOM, or UTF-16 with a BOM) and parses its
/// `"key" = "value";` entries. Comments (`/* */`, `//`) are allowed; escapes are `\"`, `\\`,
/// `\n`, `\t` and `\r`. Repeated keys are an error.
fn parse_strings(data: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = decode_strings(data)?;
    let mut parser = StringsParser {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
    };
    let mut entries = BTreeMap::new();
    loop {
        parser.skip_blanks()?;
        if parser.peek().is_none() {
            return Ok(entries);
        }
        let line = parser.line;
        let key = parser.quoted("a quoted key")?;
        parser.skip_blanks()?;
        parser.expect('=')?;
        parser.skip_blanks()?;
        let value = parser.quoted("a quoted value")?;
        parser.skip_blanks()?;
        parser.expect(';')?;
        if entries.insert(key.clone(), value).is_some() {
            return Err(format!("line {line}: key {key:?} is defined twice"));
        }
    }
}

fn decode_strings(data: &[u8]) -> Result<String, String> {
    let utf16 = |body: &[u8], big_endian: bool| -> Result<String, String> {
        if !body.len().is_multiple_of(2) {
            return Err("UTF-16 text with an odd number of bytes".to_string());
        }
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| {
                if big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|e| format!("invalid UTF-16: {e}"))
    };
    if let Some(body) = data.strip_prefix(b"\xFF\xFE") {
        utf16(body, false)
    } else if let Some(body) = data.strip_prefix(b"\xFE\xFF") {
        utf16(body, true)
    } else {
        let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        String::from_utf8(body.to_vec())
            .map_err(|e| format!("neither UTF-8 nor UTF-16 with a BOM: {e}"))
    }
}

struct StringsParser {
    chars: Vec<char>,
    at: usize,
    line: usize,
}

impl StringsParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) -> Result<(), String> {
        loop {
            match (self.peek(), self.chars.get(self.at + 1).copied()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('*')) => {
                    let line = self.line;
                    self.at += 2;
                    loop {
                        match self.bump() {
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return Err(format!("line {line}: unterminated /* comment")),
                        }
                    }
                }
                (Some('/'), Some('/')) => while !matches!(self.bump(), Some('\n') | None) {},
                _ => return Ok(()),
            }
        }
    }

    fn expect(&mut self, wanted: char) -> Result<(), String> {
        match self.peek() {
            Some(c) if c == wanted => {
                self.bump();
                Ok(())
            }
            Some(c) => Err(format!(
                "line {}: expected {wanted:?}, found {c:?}",
                self.line
            )),
            None => Err(format!(
                "line {}: expected {wanted:?}, found the end of the file",
                self.line
            )),
        }
    }

    fn quoted(&mut self, what: &str) -> Result<String, String> {
        if self.peek() != Some('"') {
            return Err(format!(
                "line {}: expected {what}, found {:?}",
                self.line,
                self.peek()
            ));
        }
        let line = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c) => return Err(format!("line {}: unsupported escape \\{c}", self.line)),
                    None => return Err(format!("line {line}: unterminated string")),
                },
                Some(c) => out.push(c),
                None => return Err(format!("line {line}: unterminated string")),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod self_test {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn certs_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-example")
    }

    /// A tiny stand-in image: the PNG signature followed by some bytes.
    fn png(tag: &str) -> Vec<u8> {
        let mut data = PNG_SIGNATURE.to_vec();
        data.extend_from_slice(format!("passfold test image {tag}").as_bytes());
        data
    }

    fn minimal_pass_json() -> Value {
        json!({
            "formatVersion": 1,
            "passTypeIdentifier": "pass.dev.passfold.example",
            "teamIdentifier": "PASSFOLD01",
            "serialNumber": "self-test-0001",
            "organizationName": "passfold example",
            "description": "Self-test loyalty card",
            "logoText": "passfold",
            "backgroundColor": "rgb(12, 34, 56)",
            "foregroundColor": "rgb(255,255,255)",
            "webServiceURL": "https://passes.example.test/apple",
            "authenticationToken": "0123456789abcdef0123",
            "barcodes": [{
                "format": "PKBarcodeFormatQR",
                "message": "self-test-0001",
                "messageEncoding": "iso-8859-1",
                "altText": "0001"
            }],
            "relevantDate": "2026-12-24T18:00+01:00",
            "storeCard": {
                "primaryFields": [{
                    "key": "balance",
                    "label": "balance_label",
                    "value": 12.5,
                    "currencyCode": "EUR",
                    "changeMessage": "Balance is now %@"
                }],
                "backFields": [{
                    "key": "terms",
                    "label": "Terms",
                    "value": "No cash value.",
                    "dataDetectorTypes": []
                }]
            }
        })
    }

    /// Builds a signed .pkpass from `pass_json`, then lets `after_signing` alter the files
    /// before zipping (to simulate tampering).
    fn build_pkpass(
        pass_json: &Value,
        after_signing: impl FnOnce(&mut BTreeMap<String, Vec<u8>>),
    ) -> Vec<u8> {
        build_pkpass_with(pass_json, |_| {}, after_signing)
    }

    /// Like `build_pkpass`, with `before_signing` able to add or change files that then get
    /// listed in the manifest and signed.
    fn build_pkpass_with(
        pass_json: &Value,
        before_signing: impl FnOnce(&mut BTreeMap<String, Vec<u8>>),
        after_signing: impl FnOnce(&mut BTreeMap<String, Vec<u8>>),
    ) -> Vec<u8> {
        let mut files = BTreeMap::new();
        files.insert(
            "pass.json".to_string(),
            serde_json::to_vec_pretty(pass_json).unwrap(),
        );
        files.insert("icon.png".to_string(), png("icon"));
        files.insert("icon@2x.png".to_string(), png("icon@2x"));
        // UTF-16LE with a BOM, as Apple's tools write it.
        let mut en = vec![0xFF, 0xFE];
        for unit in
            "/* English */\n\"balance_label\" = \"Balance\";\n\"quote\" = \"say \\\"hi\\\"\\n\";\n"
                .encode_utf16()
        {
            en.extend_from_slice(&unit.to_le_bytes());
        }
        files.insert("en.lproj/pass.strings".to_string(), en);
        files.insert(
            "de.lproj/pass.strings".to_string(),
            "\"balance_label\" = \"Guthaben\";\n".as_bytes().to_vec(),
        );
        files.insert("de.lproj/logo.png".to_string(), png("logo-de"));
        before_signing(&mut files);

        let manifest: Map<String, Value> = files
            .iter()
            .map(|(name, data)| (name.clone(), Value::from(hex::encode(Sha1::digest(data)))))
            .collect();
        let manifest = serde_json::to_vec(&Value::Object(manifest)).unwrap();

        let dir = TempDir::new("pass-check-build");
        let manifest_path = dir.write("manifest.json", &manifest);
        let signature_path = dir.path().join("signature");
        let certs = certs_dir();
        let status = Command::new("openssl")
            .arg("smime")
            .arg("-sign")
            .arg("-binary")
            .arg("-signer")
            .arg(certs.join("pass.pem"))
            .arg("-inkey")
            .arg(certs.join("pass.key"))
            .arg("-certfile")
            .arg(certs.join("wwdr.pem"))
            .arg("-outform")
            .arg("DER")
            .arg("-in")
            .arg(&manifest_path)
            .arg("-out")
            .arg(&signature_path)
            .status()
            .expect("run openssl smime -sign");
        assert!(status.success(), "openssl smime -sign failed: {status}");
        files.insert("manifest.json".to_string(), manifest);
        files.insert(
            "signature".to_string(),
            std::fs::read(&signature_path).unwrap(),
        );

        after_signing(&mut files);

        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in &files {
            zip.start_file(name.as_str(), options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Runs the checker and returns its panic message; fails the test if it accepts the pass.
    fn rejection(bytes: &[u8]) -> String {
        let result = std::panic::catch_unwind(|| check_pkpass(bytes));
        match result {
            Ok(_) => panic!("check_pkpass accepted a pass it should reject"),
            Err(payload) => payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn accepts_a_valid_minimal_pass() {
        let pass_json = minimal_pass_json();
        let bytes = build_pkpass(&pass_json, |_| {});
        let checked = check_pkpass(&bytes);

        assert_eq!(checked.pass_json, pass_json);
        assert_eq!(
            checked.files.keys().collect::<Vec<_>>(),
            [
                "de.lproj/logo.png",
                "de.lproj/pass.strings",
                "en.lproj/pass.strings",
                "icon.png",
                "icon@2x.png",
                "manifest.json",
                "pass.json",
                "signature",
            ]
        );
        assert!(
            checked
                .signer_subject
                .contains("UID=pass.dev.passfold.example"),
            "{}",
            checked.signer_subject
        );
        assert!(
            checked.signer_subject.contains("OU=PASSFOLD01"),
            "{}",
            checked.signer_subject
        );
        assert!(
            checked.signing_time.ends_with(" GMT"),
            "{}",
            checked.signing_time
        );

        let en = pass_strings(&checked, "en");
        assert_eq!(en["balance_label"], "Balance");
        assert_eq!(en["quote"], "say \"hi\"\n");
        assert_eq!(pass_strings(&checked, "de")["balance_label"], "Guthaben");
    }

    #[test]
    fn rejects_tampered_and_invalid_passes() {
        // One byte of icon.png changed after signing.
        let tampered = build_pkpass(&minimal_pass_json(), |files| {
            let icon = files.get_mut("icon.png").unwrap();
            let last = icon.len() - 1;
            icon[last] ^= 0x01;
        });
        let message = rejection(&tampered);
        assert!(
            message.contains("icon.png") && message.contains("SHA-1 mismatch"),
            "{message}"
        );

        // An nfc dictionary (needs an entitlement we never have).
        let mut with_nfc = minimal_pass_json();
        with_nfc["nfc"] = json!({"message": "x", "encryptionPublicKey": "y"});
        let message = rejection(&build_pkpass(&with_nfc, |_| {}));
        assert!(message.contains("\"nfc\""), "{message}");

        // A few more of the pass.json rules, each on an otherwise valid signed pass.
        type Mutation = fn(&mut Value);
        let cases: [(&str, Mutation); 5] = [
            ("unknown key \"backgroundColour\"", |p| {
                p["backgroundColour"] = json!("rgb(0,0,0)")
            }),
            ("barcode.format", |p| {
                p["barcode"] = json!({
                    "format": "PKBarcodeFormatCode128",
                    "message": "1",
                    "messageEncoding": "iso-8859-1"
                })
            }),
            ("does not match the signing certificate", |p| {
                p["passTypeIdentifier"] = json!("pass.dev.someone.else")
            }),
            ("already used by", |p| {
                p["storeCard"]["backFields"][0]["key"] = json!("balance")
            }),
            ("backgroundColor", |p| {
                p["backgroundColor"] = json!("rgb(256, 0, 0)")
            }),
        ];
        for (expected, mutate) in cases {
            let mut pass_json = minimal_pass_json();
            mutate(&mut pass_json);
            let message = rejection(&build_pkpass(&pass_json, |_| {}));
            assert!(
                message.contains(expected),
                "expected {expected:?} in {message}"
            );
        }

        // Malformed localization (missing ';'), correctly listed in the manifest and signed.
        let bad_strings = build_pkpass_with(
            &minimal_pass_json(),
            |files| {
                files.insert(
                    "fr.lproj/pass.strings".to_string(),
                    b"\"balance_label\" = \"Solde\"\n".to_vec(),
                );
            },
            |_| {},
        );
        let message = rejection(&bad_strings);
        assert!(
            message.contains("fr.lproj/pass.strings") && message.contains("expected ';'"),
            "{message}"
        );
        assert!(parse_strings(b"\"a\" = \"b\"\n").is_err());
        assert!(parse_strings(b"\"a\" = \"b\\q\";").is_err());
        assert_eq!(
            parse_strings(b"// c\n\"a\"=\"b\";").unwrap()["a"],
            "b".to_string()
        );
    }
}
