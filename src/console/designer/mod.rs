//! The pass designer (issue 14): `/console/templates` and `/console/templates/{id}`.

pub mod form;
pub mod handlers;
pub mod list;
pub mod test_pass;
pub mod view;
