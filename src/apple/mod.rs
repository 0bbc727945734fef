//! Apple Wallet: the signing identity, pass.json, and the signed `.pkpass` package.

pub mod apns;
pub mod assets;
pub mod identity;
pub mod pass_json;
pub mod pkpass;
pub mod sample;
pub mod webservice;

pub use identity::SigningIdentity;
