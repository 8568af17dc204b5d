//! HTTP plumbing that knows Rocket: the JSON error type, catchers, the JSON body
//! guard, `Idempotency-Key` handling and path-id parsing.

pub mod docs;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod rate_limit;

pub use error::ApiError;
pub use idempotency::IdempotencyHeader;
pub use json::{JsonBody, RawBody};

use uuid::Uuid;

/// Path ids: anything that is not a UUID names nothing, so it is a 404, not a 422.
pub fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// Handlers take `Services` as a guard: the shared connections, tagged with this
/// request's id so the notifications it causes can be traced back to it.
#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for crate::domain::Services {
    type Error = ();

    async fn from_request(request: &'r rocket::Request<'_>) -> rocket::request::Outcome<Self, ()> {
        use rocket::request::Outcome;
        let Some(services) = request.rocket().state::<crate::domain::Services>() else {
            return Outcome::Error((
                ApiError::internal()
                    .caused_by("Services is not managed state")
                    .stash(request),
                (),
            ));
        };
        let id = match request.guard::<crate::telemetry::RequestId>().await {
            Outcome::Success(id) => id.0,
            _ => uuid::Uuid::now_v7().to_string(),
        };
        Outcome::Success(services.for_request(id))
    }
}
