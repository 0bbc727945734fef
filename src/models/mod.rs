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

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use diesel::BoxableExpression;

/// `(time column, id) > (at, id)`: where a keyset page ordered by an instant then id
/// continues, as a row comparison an index on (..., column, id) serves as a range.
pub fn after_instant<QS>(
    columns: &str,
    at: DateTime<Utc>,
    id: uuid::Uuid,
) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>(&format!("({columns}) > ("))
            .bind::<Timestamptz, _>(at)
            .sql(", ")
            .bind::<SqlUuid, _>(id)
            .sql(")"),
    )
}
