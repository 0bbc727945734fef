//! Rows of `schema.rs` and the queries on them. Functions on merchant-owned rows take a
//! [`crate::db::Tenant`] and filter by it.

pub mod api_key;
pub mod device;
pub mod gift_card;
pub mod member;
pub mod merchant;
pub mod pass;
pub mod point_activity;
pub mod point_lot;
pub mod program;
pub mod staff;
pub mod template;
pub mod template_version;

pub use api_key::ApiKey;
pub use gift_card::GiftCard;
pub use member::Member;
pub use merchant::Merchant;
pub use pass::Pass;
pub use program::Program;
pub use template::Template;
