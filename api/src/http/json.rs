//! A JSON body guard whose failures are the api's JSON errors with a message that
//! says what is wrong (Rocket's own `Json` only yields a bare status).

use rocket::{
    Request,
    data::{self, Data, FromData, ToByteUnit},
};
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;

use super::{ApiError, error::ErrorCode};

/// Request bodies are small; anything larger is refused with 413.
pub const BODY_LIMIT_BYTES: u64 = 64 * 1024;

/// How much of an oversized body is read and thrown away so that the client, still
/// sending, reads the 413 instead of a reset (nginx's "lingering close"). Past
/// this the connection is simply closed.
pub const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How long a client may take to send a body: one that stalls part-way is
/// answered and let go instead of holding a connection and a task.
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct JsonBody<T>(pub T);

/// A body as it came, for what must be checked byte for byte (a provider's
/// signed webhook); limited, deadlined and drained like [`JsonBody`].
pub struct RawBody(pub Vec<u8>);

#[rocket::async_trait]
impl<'r> FromData<'r> for RawBody {
    type Error = ();

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        match read_body(data).await {
            Ok(bytes) => data::Outcome::Success(RawBody(bytes)),
            Err(error) => data::Outcome::Error((error.stash(request), ())),
        }
    }
}

/// Reads the whole body, up to [`BODY_LIMIT_BYTES`] within [`BODY_DEADLINE`].
async fn read_body(data: Data<'_>) -> Result<Vec<u8>, ApiError> {
    let mut stream = data.open(DRAIN_LIMIT_BYTES.bytes());
    let mut bytes = Vec::new();
    let mut limited = (&mut stream).take(BODY_LIMIT_BYTES + 1);
    match tokio::time::timeout(BODY_DEADLINE, limited.read_to_end(&mut bytes)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            return Err(ApiError::bad_request(format!(
                "could not read body: {error}"
            )));
        }
        Err(_) => {
            return Err(ApiError::bad_request(format!(
                "the request body did not arrive within {} s",
                BODY_DEADLINE.as_secs()
            )));
        }
    }
    if bytes.len() as u64 > BODY_LIMIT_BYTES {
        // Best effort: a client that stops sending just gets the close.
        let mut sink = tokio::io::sink();
        let _ = tokio::time::timeout(BODY_DEADLINE, tokio::io::copy(&mut stream, &mut sink)).await;
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {BODY_LIMIT_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned> FromData<'r> for JsonBody<T> {
    type Error = ();

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let fail = |error: ApiError| data::Outcome::Error((error.stash(request), ()));
        let bytes = match read_body(data).await {
            Ok(bytes) => bytes,
            Err(error) => return fail(error),
        };
        // An empty body means "no fields", so endpoints whose fields all have
        // defaults can be called without one.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // Syntax first, then shape: broken JSON is a 400, well-formed JSON of the
        // wrong shape a 422.
        let value: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(value) => value,
            Err(error) => return fail(ApiError::bad_request(format!("malformed JSON: {error}"))),
        };
        match serde_json::from_value(value) {
            Ok(value) => data::Outcome::Success(JsonBody(value)),
            Err(error) => fail(ApiError::new(
                ErrorCode::ValidationFailed,
                format!("invalid request body: {error}"),
            )),
        }
    }
}
