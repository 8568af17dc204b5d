use rocket::{State, get, http::Status, post, serde::json::Json};

use super::{Credentials, LoginView, Registration, UserView};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::{Authenticated, TokenKeys},
    domain::{Error, Services, users},
    http::{
        ApiError, JsonBody,
        rate_limit::{ClientIp, RateLimiter},
    },
};

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Registration,
    responses(
        (status = 201, description = "The new user", body = UserView),
        docs::JsonBody, docs::AuthRateLimited,
        (status = 409, description = "`email_taken`: an account with this email (ignoring case) exists", body = ErrorBody),
    ))]
#[post("/auth/register", data = "<body>")]
pub async fn register(
    services: Services,
    limiter: &State<RateLimiter>,
    ip: ClientIp,
    body: JsonBody<Registration>,
) -> Result<(Status, Json<UserView>), ApiError> {
    limiter.check_registration(&ip, &body.0.email).await?;
    let user = users::register(&services.db, body.0.try_into()?).await?;
    Ok((Status::Created, Json(user.into())))
}

/// Exchange email and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "A bearer token and the user", body = LoginView),
        docs::JsonBody, docs::AuthRateLimited,
        (status = 401, description = "Wrong email or password (the same answer for both)", body = ErrorBody),
    ))]
#[post("/auth/login", data = "<body>")]
pub async fn login(
    services: Services,
    keys: &State<TokenKeys>,
    limiter: &State<RateLimiter>,
    ip: ClientIp,
    body: JsonBody<Credentials>,
) -> Result<Json<LoginView>, ApiError> {
    let Credentials { email, password } = body.0;
    limiter.check_login(&ip, &email).await?;
    let user = match users::login(&services.db, &email, password).await {
        Ok(user) => user,
        Err(error) => {
            if matches!(error, Error::InvalidCredentials) {
                limiter.login_failed(&ip, &email).await;
            }
            return Err(error.into());
        }
    };
    Ok(Json(LoginView {
        access_token: keys.issue(user.id, user.role),
        token_type: "Bearer",
        expires_in: keys.ttl().as_secs(),
        user: user.into(),
    }))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        docs::SignedIn,
    ))]
#[get("/me")]
pub async fn me(user: Authenticated, services: Services) -> Result<Json<UserView>, ApiError> {
    let user = users::get(&services.db, user.id)
        .await
        // A valid token for an account that no longer exists.
        .map_err(|_| ApiError::unauthorized("this account no longer exists"))?;
    Ok(Json(user.into()))
}
