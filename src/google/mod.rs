//! Google Wallet: the service account, the mapping of templates and cards to Google's
//! classes and objects, "Add to Google Wallet" save links, and the REST client.

pub mod callbacks;
pub mod credentials;
pub mod objects;
pub mod rest;
pub mod rs256;
pub mod save_link;

pub use credentials::GoogleIssuer;
