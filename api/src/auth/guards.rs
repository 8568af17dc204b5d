//! Request guards as proof of authorization: a handler that takes an `Organizer`
//! cannot run unless the caller presented a valid token of an organizer.

use entity::prelude::Role;
use rocket::{
    Request,
    request::{FromRequest, Outcome},
};
use uuid::Uuid;

use super::TokenKeys;
use crate::http::ApiError;

/// Any signed-in user.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub id: Uuid,
    pub role: Role,
}

#[derive(Debug, Clone, Copy)]
pub struct Organizer(pub Uuid);

#[derive(Debug, Clone, Copy)]
pub struct Customer(pub Uuid);

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Authenticated {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let fail =
            |message: &str| Outcome::Error((ApiError::unauthorized(message).stash(request), ()));
        let Some(keys) = request.rocket().state::<TokenKeys>() else {
            return Outcome::Error((
                ApiError::internal()
                    .caused_by("the token keys are not managed state")
                    .stash(request),
                (),
            ));
        };
        let Some(header) = request.headers().get_one("Authorization") else {
            return fail("missing Authorization header (expected `Bearer <token>`)");
        };
        let Some(token) = bearer_token(header) else {
            return fail("Authorization header must be `Bearer <token>`");
        };
        match keys.verify(token) {
            Ok(claims) => Outcome::Success(Authenticated {
                id: claims.sub,
                role: claims.role,
            }),
            Err(error) => fail(&format!("{error}; sign in again")),
        }
    }
}

async fn with_role(request: &Request<'_>, role: Role) -> Outcome<Uuid, ()> {
    match Authenticated::from_request(request).await {
        Outcome::Success(user) if user.role == role => Outcome::Success(user.id),
        Outcome::Success(_) => Outcome::Error((
            ApiError::forbidden(format!("only a {} may do this", role.as_str())).stash(request),
            (),
        )),
        Outcome::Error(e) => Outcome::Error(e),
        Outcome::Forward(s) => Outcome::Forward(s),
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Organizer {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        with_role(request, Role::Organizer).await.map(Organizer)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Customer {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        with_role(request, Role::Customer).await.map(Customer)
    }
}

/// A scanner at a door: the event's organizer, or a door device presenting
/// its own token (revoked: refused at once). Which event it may scan at is
/// the domain's to check.
#[derive(Debug, Clone, Copy)]
pub struct DoorPass(pub crate::domain::door::Door);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for DoorPass {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        use crate::domain::door::{DEVICE_TOKEN_PREFIX, Door, device_for_token};
        let token = request
            .headers()
            .get_one("Authorization")
            .and_then(bearer_token);
        let Some(token) = token.filter(|t| t.starts_with(DEVICE_TOKEN_PREFIX)) else {
            return with_role(request, Role::Organizer)
                .await
                .map(|id| DoorPass(Door::Organizer(id)));
        };
        let Some(services) = request.rocket().state::<crate::domain::Services>() else {
            return Outcome::Error((
                ApiError::internal()
                    .caused_by("Services is not managed state")
                    .stash(request),
                (),
            ));
        };
        match device_for_token(&services.db, token).await {
            Ok(Some(device)) => Outcome::Success(DoorPass(Door::Device {
                id: device.id,
                event_id: device.event_id,
            })),
            Ok(None) => Outcome::Error((
                ApiError::unauthorized("this door device token is unknown or was revoked")
                    .stash(request),
                (),
            )),
            Err(error) => Outcome::Error((ApiError::from(error).stash(request), ())),
        }
    }
}
