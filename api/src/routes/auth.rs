use rocket::{State, get, http::Status, post, serde::json::Json};

use super::{LoginView, UserView};
use crate::{
    auth::{Authenticated, TokenKeys},
    domain::{
        Services,
        users::{self, Credentials, Registration},
    },
    http::{ApiError, JsonBody},
};

#[post("/auth/register", data = "<body>")]
pub async fn register(
    services: Services,
    body: JsonBody<Registration>,
) -> Result<(Status, Json<UserView>), ApiError> {
    let user = users::register(&services.db, body.0).await?;
    Ok((Status::Created, Json(user.into())))
}

#[post("/auth/login", data = "<body>")]
pub async fn login(
    services: Services,
    keys: &State<TokenKeys>,
    body: JsonBody<Credentials>,
) -> Result<Json<LoginView>, ApiError> {
    let user = users::login(&services.db, body.0).await?;
    Ok(Json(LoginView {
        access_token: keys.issue(user.id, user.role),
        token_type: "Bearer",
        expires_in: keys.ttl().as_secs(),
        user: user.into(),
    }))
}

#[get("/me")]
pub async fn me(user: Authenticated, services: Services) -> Result<Json<UserView>, ApiError> {
    let user = users::get(&services.db, user.id)
        .await
        // A valid token for an account that no longer exists.
        .map_err(|_| ApiError::unauthorized("this account no longer exists"))?;
    Ok(Json(user.into()))
}
