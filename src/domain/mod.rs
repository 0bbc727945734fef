//! Types that parse rather than validate: once you hold one, it is valid.

mod api_key;
mod merchant_name;

pub use api_key::{ApiKeySecret, Scope};
pub use merchant_name::MerchantName;
