//! HTTP plumbing that knows Rocket: the JSON error type, catchers, the JSON body
//! guard and path-id parsing.

pub mod error;
pub mod json;

pub use error::ApiError;
pub use json::JsonBody;

use uuid::Uuid;

/// Path ids: anything that is not a UUID names nothing, so it is a 404, not a 422.
pub fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}
