//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers;

/// The whole REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "eventshop command API",
        description = "The write side of eventshop: every accepted command answers with the aggregate's id, its new `version` (also as `ETag`) and the global `position` of its last event. Errors are `{\"errors\":[{\"message\",\"field\"}]}`."
    ),
    paths(
        handlers::accounts::register,
        handlers::accounts::delete_account,
        handlers::accounts::deposit,
        handlers::sessions::login,
        handlers::sessions::refresh,
        handlers::products::create,
        handlers::products::patch,
        handlers::products::restock,
        handlers::orders::place,
        handlers::orders::cancel,
        handlers::policies::put,
        handlers::policies::delete,
        handlers::healthz,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_bodies_errors_and_bearer_auth() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "RegisterRequest",
            "DepositRequest",
            "PlaceOrderRequest",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(doc["paths"]["/api/v1/orders"]["post"]["responses"]["202"].is_object());
    }
}
