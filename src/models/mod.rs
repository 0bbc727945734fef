//! Rows of `schema.rs` and the queries on them. Functions on merchant-owned rows take a
//! [`crate::db::Tenant`] and filter by it.

pub mod api_key;
pub mod merchant;

pub use api_key::ApiKey;
pub use merchant::Merchant;
