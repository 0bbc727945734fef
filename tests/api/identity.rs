//! Passes signed by an identity set through the environment, as PEM and as P12.

use crate::helpers::spawn_app_with;
use crate::pass_check::check_pkpass_with_root;
use passfold::configuration::{AppleIdentitySource, AppleSettings};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A whole other chain (root, WWDR stand-in, Pass Type ID certificate, P12), made with the
/// openssl CLI the way an operator converts what Apple hands out.
fn other_identity(dir: &Path) {
    let script = r#"
set -e
cat > ca.ext <<EOT
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
EOT
cat > pass.ext <<EOT
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EOT
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 -subj "/CN=Other Test Root" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout wwdr.key -out wwdr.csr -subj "/CN=Other WWDR/OU=G4/O=Other/C=US" 2>/dev/null
openssl x509 -req -in wwdr.csr -CA root.pem -CAkey root.key -CAcreateserial -out wwdr.pem -days 30 -extfile ca.ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pass.key -out pass.csr -subj "/UID=pass.test.other/CN=Pass Type ID: pass.test.other/OU=OTHERTEAM1/O=Other/C=US" 2>/dev/null
openssl x509 -req -in pass.csr -CA wwdr.pem -CAkey wwdr.key -CAcreateserial -out pass.pem -days 30 -extfile pass.ext 2>/dev/null
openssl x509 -in wwdr.pem -outform DER -out wwdr.cer
openssl pkcs12 -export -inkey pass.key -in pass.pem -certfile wwdr.pem -out pass.p12 -passout pass:s3cret
"#;
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "openssl could not make the test chain");
}

async fn pass_signed_with(
    source: AppleIdentitySource,
    wwdr: PathBuf,
    root: &Path,
) -> serde_json::Value {
    let app = spawn_app_with(move |s| {
        s.apple = AppleSettings {
            pass_type_id: None,
            team_id: None,
            source,
            wwdr: Some(wwdr),
        };
    })
    .await;
    let m = app.create_merchant("Other");
    let card = app.issue_gift_card(&m.admin_key, "USD", 2000).await;
    let checked = check_pkpass_with_root(
        &app.download_pass(card["apple_pass_url"].as_str().unwrap())
            .await,
        root,
    );
    assert!(
        checked.signer_subject.contains("OTHERTEAM1"),
        "{}",
        checked.signer_subject
    );
    checked.pass_json
}

#[tokio::test]
async fn passes_are_signed_by_the_identity_in_the_environment() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("identity-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    other_identity(&dir);
    let root = dir.join("root.pem");

    let pem = pass_signed_with(
        AppleIdentitySource::Pem {
            cert: dir.join("pass.pem"),
            key: dir.join("pass.key"),
        },
        dir.join("wwdr.pem"),
        &root,
    )
    .await;
    assert_eq!(pem["passTypeIdentifier"], "pass.test.other");
    assert_eq!(pem["teamIdentifier"], "OTHERTEAM1");

    // The WWDR certificate as Apple ships it (DER), with a P12 and its password.
    let p12 = pass_signed_with(
        AppleIdentitySource::P12 {
            path: dir.join("pass.p12"),
            password: "s3cret".into(),
        },
        dir.join("wwdr.cer"),
        &root,
    )
    .await;
    assert_eq!(p12["passTypeIdentifier"], "pass.test.other");
    assert_eq!(p12["teamIdentifier"], "OTHERTEAM1");
    let _ = std::fs::remove_dir_all(&dir);
}
