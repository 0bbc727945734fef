//! What every handler receives: the application state, built once per process by
//! `startup` and handed to actix as app data. It imports the modules whose parts it holds,
//! never the HTTP layer, so handlers can import it without a cycle.

use crate::apple::apns::ApnsClient;
use crate::apple::SigningIdentity;
use crate::auth::KeyCache;
use crate::configuration::Settings;
use crate::db::DbPool;
use crate::google::callbacks::RootKeyCache;
use crate::google::rest::GoogleClient;
use crate::google::GoogleIssuer;
use crate::metrics::Metrics;
use crate::pass_cache::PassCache;
use crate::pass_content::TemplateCache;
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub identity: SigningIdentity,
    pub templates: TemplateCache,
    pub pass_cache: Arc<PassCache>,
    pub api_keys: Arc<KeyCache>,
    pub apns: Arc<ApnsClient>,
    pub google: Arc<GoogleClient>,
    pub google_keys: RootKeyCache,
    pub save_links: crate::google::save_link::SaveLinks,
    /// Key of the public pages' visitor hashes and CSRF tokens (kept in the database).
    pub site_secret: Vec<u8>,
    /// Where pass changes are delivered (Google Wallet only when configured).
    pub channels: crate::pass_events::Channels,
    /// Turns of template image checks (`PASSFOLD_IMAGE_DECODES`).
    pub image_decodes: crate::template::images::Decodes,
    /// What every time decision takes `now` from (real time; tests hold a manual one).
    pub clock: crate::clock::Clock,
}

/// The signing identity and the clients of Apple's and Google's services, loaded and
/// announced once per process (by `serve` here, by `passfold worker` on its own).
pub struct Wallets {
    pub identity: SigningIdentity,
    pub apns: Arc<ApnsClient>,
    pub google: Arc<GoogleClient>,
}

impl Wallets {
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let identity = SigningIdentity::load(&settings.apple)?;
        identity.announce();
        let apns = Arc::new(ApnsClient::new(&identity, &settings.apns)?);
        let issuer = GoogleIssuer::load(&settings.google)?;
        issuer.announce();
        let google = Arc::new(GoogleClient::new(Arc::new(issuer), &settings.google)?);
        Ok(Wallets {
            identity,
            apns,
            google,
        })
    }
}
