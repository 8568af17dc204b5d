//! Error responses shared by many operations, defined once for the API
//! document. A handler's annotation lists its success and what is particular to
//! it, and names the shared groups that apply (`SignedIn`, `JsonBody`, …).

use std::collections::BTreeMap;

use utoipa::{
    IntoResponses,
    openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder},
};

/// An error response: the shared `ErrorBody`, with what this status means here.
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident { $($status:literal => $description:expr),+ $(,)? })*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([$(($status.to_string(), error($description))),+])
            }
        }
    )*};
}

const BAD_TOKEN: &str = "Missing, malformed, expired or forged token";
const NO_EVENT: &str = "No such event (or not a UUID)";

error_responses! {
    /// Any operation that takes a bearer token.
    SignedIn { "401" => BAD_TOKEN }
    /// Customers only.
    AsCustomer { "401" => BAD_TOKEN, "403" => "Not a customer" }
    /// Organizers only.
    AsOrganizer { "401" => BAD_TOKEN, "403" => "Not an organizer" }
    /// The organizer of the event in the path only.
    AsEventOwner {
        "401" => BAD_TOKEN,
        "403" => "Not this event's organizer",
        "404" => NO_EVENT,
    }
    /// The event's organizer or one of its door devices.
    AtTheDoor {
        "401" => "No token, a bad one, or a revoked door device's",
        "403" => "Neither this event's organizer nor one of its door devices",
        "404" => NO_EVENT,
    }
    /// An event id in the path.
    UnknownEvent { "404" => NO_EVENT }
    /// A webhook endpoint id in the path.
    UnknownWebhook { "404" => "No such webhook endpoint of this organizer (or not a UUID)" }
    /// A JSON request body.
    JsonBody {
        "400" => "Malformed JSON",
        "413" => "Body over 64 KiB",
        "422" => "`validation_failed`: wrong types, missing or unknown fields, or invalid values; `details` names each field",
    }
    /// Sign-up and sign-in, limited per client address and per email.
    AuthRateLimited {
        "429" => "`rate_limited`: too many attempts from this address or for this email; see `Retry-After`",
    }
    /// Event writes, limited per organizer.
    OrganizerRateLimited {
        "429" => "`rate_limited`: too many event changes by this organizer; see `Retry-After`",
    }
}
