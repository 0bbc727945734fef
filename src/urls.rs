//! Every public URL the service hands out, built in one place: pass downloads, referral and
//! join links, template images. Pages, passes, Google objects and API answers all use these.

use crate::models::Pass;
use uuid::Uuid;

/// The unguessable download link of a pass: the token is the only secret.
pub fn pass_url(public_url: &str, pass: &Pass) -> String {
    format!("{public_url}/passes/{}", pass.download_token)
}

/// A card's lasting "Add to Google Wallet" link: it redirects to a save link signed when
/// it is opened, for lists that cannot sign one per card (exports, emails sent later).
pub fn google_save_redirect_url(public_url: &str, pass: &Pass) -> String {
    format!("{public_url}/passes/{}/google", pass.download_token)
}

/// A member's referral link, as members, passes and pages show it.
pub fn referral_url(public_url: &str, code: &str) -> String {
    format!("{public_url}{}", referral_path(code))
}

pub fn referral_path(code: &str) -> String {
    format!("/r/{code}")
}

/// A program's own join link.
pub fn join_url(public_url: &str, code: &str) -> String {
    format!("{public_url}{}", join_path(code))
}

pub fn join_path(code: &str) -> String {
    format!("/join/{code}")
}

/// Where the public pages serve one image of one version of a template.
pub fn template_image_path(merchant: Uuid, template: &str, version: i32, file: &str) -> String {
    format!("/images/{merchant}/{template}/{version}/{file}")
}
