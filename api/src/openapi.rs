//! The API document, generated from the handlers' annotations, and the docs UI.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{metrics, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Event booking API",
        description = "Organizers create events; customers book tickets. Every error is \
            `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::me,
        routes::events::create,
        routes::events::list,
        routes::events::get,
        routes::events::update,
        routes::events::cancel,
        routes::events::attendees,
        routes::bookings::book,
        routes::bookings::list_own,
        routes::bookings::get,
        routes::bookings::cancel,
        routes::health::health,
        routes::health::ready,
        metrics::metrics,
    ),
    // Shared error responses (`http::docs`) refer to it by name.
    components(schemas(crate::http::error::ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "events", description = "Events and their organizers"),
        (name = "bookings", description = "Tickets"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `/openapi.json` and the browsable UI at `/docs`, its assets compiled in.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/docs/<_..>").url("/openapi.json", ApiDoc::openapi())
}
