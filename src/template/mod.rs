//! Pass templates: our own format (docs/TEMPLATES.md, `docs/template.schema.json`), from
//! which both the Apple pass and the Google object are built.

pub mod barcode;
pub mod document;
pub mod examples;
pub mod fit;
pub mod images;
pub mod placeholder;
pub mod preview;
pub mod publish;
pub mod reason;
pub mod validate;
pub mod versions;

pub use document::TemplateDocument;
pub use placeholder::{Context, Value};
