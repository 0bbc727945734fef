//! Types that parse rather than validate: once you hold one, it is valid.

mod api_key;
mod birth_date;
mod card_number;
mod currency;
pub mod cursor;
mod email;
mod member_search;
mod merchant_name;
mod money;
mod parsed;
mod password;
mod pin;
pub mod ranges;
pub mod states;
mod template_id;
pub mod tokens;

pub use api_key::ApiKeySecret;
pub use birth_date::BirthDate;
pub use card_number::CardNumber;
pub use currency::Currency;
pub use cursor::{PageCursor, PageLimit, Paging};
pub use email::Email;
pub use member_search::SearchTerm;
pub use merchant_name::MerchantName;
pub use money::Money;
pub use parsed::Parsed;
pub use password::Password;
pub use pin::Pin;
pub use states::{
    CardState, Channel, GiftCardActivityType, Language, PointActivityType, ReferralStatus, Role,
    Scope, TemplateKind,
};
pub use template_id::TemplateId;
