//! Apple Wallet: the signing identity, pass.json, and the signed `.pkpass` package.

pub mod identity;
pub mod pass_json;
pub mod pkpass;
pub mod sample;

pub use identity::SigningIdentity;
