//! The OpenAPI document's frame; paths are collected from the handlers as they are mounted
//! (utoipa-actix-web), so a route cannot be served without being documented.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "passfold",
        description = "Apple Wallet and Google Wallet loyalty cards and gift cards, issued and kept live. \
                       Errors are application/problem+json."
    ),
    components(schemas(crate::problem::Problem, crate::problem::FieldProblem)),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
