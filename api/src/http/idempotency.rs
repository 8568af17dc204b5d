//! `Idempotency-Key` at the edge: the header guard, and [`respond_once`], which
//! runs a handler's work at most once per customer and key: try processing →
//! do the work (which records its own success) → save a refusal, or release the
//! claim after a failure on our side. The stored rows are `domain::idempotency`'s.

use std::future::Future;

use rocket::http::{ContentType, Status};
use uuid::Uuid;

use super::ApiError;
use crate::domain::{
    self, Services,
    idempotency::{self, IdempotencyKey, NextAction, Remember},
};

/// A JSON body with its status, as sent and as replayed: the same bytes.
pub type JsonResponse = (Status, (ContentType, String));

/// The optional `Idempotency-Key` header; present but malformed is a 400.
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for IdempotencyHeader {
    type Error = ();

    async fn from_request(request: &'r rocket::Request<'_>) -> rocket::request::Outcome<Self, ()> {
        use rocket::request::Outcome;
        match request.headers().get_one("Idempotency-Key") {
            None => Outcome::Success(Self(None)),
            Some(raw) => match IdempotencyKey::parse(raw) {
                Ok(key) => Outcome::Success(Self(Some(key))),
                Err(why) => Outcome::Error((ApiError::bad_request(why).stash(request), ())),
            },
        }
    }
}

/// Answers `success` with `render(value)` for the value `work` produces. With a
/// key: a repeat of the same request (`request`, the parts that must match)
/// gets the first answer again and does no work; `work` receives the
/// [`Remember`] to record its response in its own statement.
pub async fn respond_once<T, Fut>(
    services: &Services,
    user_id: Uuid,
    key: Option<IdempotencyKey>,
    request: &[&str],
    success: Status,
    render: fn(&T) -> String,
    work: impl FnOnce(Option<Remember<T>>) -> Fut,
) -> Result<JsonResponse, ApiError>
where
    T: 'static,
    Fut: Future<Output = Result<T, domain::Error>>,
{
    let json = |status: Status, body: String| (status, (ContentType::JSON, body));
    let Some(key) = key else {
        let value = work(None).await?;
        return Ok(json(success, render(&value)));
    };
    let fingerprint = idempotency::fingerprint(request);
    let claim = match idempotency::try_processing(&services.db, user_id, &key, &fingerprint).await?
    {
        NextAction::ReturnSavedResponse { status, body } => {
            return Ok(json(Status::from_code(status).unwrap_or(Status::Ok), body));
        }
        NextAction::StartProcessing(claim) => claim,
    };
    let remember = Remember {
        claim: claim.clone(),
        status: success.code,
        render,
    };
    match work(Some(remember)).await {
        Ok(value) => Ok(json(success, render(&value))),
        Err(error) => {
            let error = ApiError::from(error);
            // A refusal is an answer worth repeating; a failure on our side is not.
            let recorded = if error.status.code < 500 {
                idempotency::save_response(
                    &services.db,
                    &claim,
                    error.status.code,
                    &error.body_json(),
                )
                .await
            } else {
                idempotency::release(&services.db, &claim).await
            };
            if let Err(cause) = recorded {
                tracing::warn!(%cause, "could not record the outcome of an idempotent request");
            }
            Err(error)
        }
    }
}
