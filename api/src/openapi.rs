//! The API document, generated from the handlers' annotations, and the docs UI.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{metrics, routes};

/// Declares every route once: the list Rocket mounts and the list the API
/// document describes are the same tokens, so neither can miss one.
macro_rules! routes_and_document {
    (
        api_v1: [$($($api:ident)::+),+ $(,)?],
        operations: [$($($ops:ident)::+),+ $(,)?] $(,)?
    ) => {
        /// The routes mounted under `/api/v1`.
        pub fn api_v1_routes() -> Vec<rocket::Route> {
            rocket::routes![$($($api)::+),+]
        }

        /// The routes mounted at the root (health, readiness, metrics).
        pub fn operation_routes() -> Vec<rocket::Route> {
            rocket::routes![$($($ops)::+),+]
        }

        #[derive(OpenApi)]
        #[openapi(
            info(
                title = "Event booking API",
                description = "Organizers create events; customers book tickets. Every error is \
                    `{\"error\": {\"code\", \"message\", \"details\"}}`."
            ),
            paths($($($api)::+,)+ $($($ops)::+),+),
            // Shared error responses (`http::docs`) refer to it by name.
            components(schemas(crate::http::error::ErrorBody)),
            modifiers(&BearerAuth),
            tags(
                (name = "auth", description = "Accounts and tokens"),
                (name = "events", description = "Events and their organizers"),
                (name = "holds", description = "Checkout: tickets held for a while, then confirmed or released"),
                (name = "waiting room", description = "The on-sale's line: fair order, admission at a set rate"),
                (name = "waitlist", description = "Waiting for a sold-out event"),
                (name = "payments", description = "Paying for a hold: Stripe, its webhook, and manual payments"),
                (name = "door", description = "Tickets with their codes, door devices, check-in online and offline"),
                (name = "bookings", description = "Tickets"),
                (name = "webhooks", description = "Where an organizer's other systems hear of bookings, changes, refunds and check-ins"),
                (name = "operations", description = "Health, readiness, metrics"),
            )
        )]
        pub struct ApiDoc;
    };
}

routes_and_document! {
    api_v1: [
        routes::auth::register,
        routes::auth::login,
        routes::auth::me,
        routes::events::create,
        routes::events::list,
        routes::events::get,
        routes::events::update,
        routes::events::cancel,
        routes::events::attendees,
        routes::events::sales_report,
        routes::events::attendees_csv,
        routes::events::seats,
        routes::events::free_seats,
        routes::events::live,
        routes::ticket_types::list,
        routes::ticket_types::add,
        routes::ticket_types::change,
        routes::ticket_types::remove,
        routes::promo_codes::list,
        routes::promo_codes::create,
        routes::promo_codes::change,
        routes::promo_codes::remove,
        routes::holds::create,
        routes::holds::list,
        routes::holds::get,
        routes::holds::confirm,
        routes::holds::release,
        routes::payments::start,
        routes::payments::stripe_webhook,
        routes::payments::mark_paid,
        routes::door::of_booking,
        routes::door::key,
        routes::door::new_device,
        routes::door::revoke_device,
        routes::door::check_in,
        routes::door::cache,
        routes::door::upload,
        routes::queue::join,
        routes::queue::me,
        routes::queue::statistics,
        routes::waitlist::join,
        routes::waitlist::leave,
        routes::bookings::book,
        routes::bookings::list_own,
        routes::bookings::get,
        routes::bookings::cancel,
        routes::webhooks::list,
        routes::webhooks::create,
        routes::webhooks::read,
        routes::webhooks::change,
        routes::webhooks::remove,
        routes::webhooks::deliveries,
    ],
    operations: [
        routes::health::health,
        routes::health::ready,
        metrics::metrics,
    ],
}

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
