use rocket::{State, delete, get, http::Status, patch, post, serde::json::Json};

use super::{Items, PromoCodeInput, PromoCodePatch, PromoCodeView};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::Organizer,
    domain::{Services, promo_codes},
    http::rate_limit::RateLimiter,
    http::{ApiError, JsonBody, parse_id},
};

/// An event's promo codes with how often each was used (its organizer).
#[utoipa::path(get, path = "/api/v1/events/{id}/promo_codes", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The codes, newest first", body = Items<PromoCodeView>),
        docs::AsEventOwner,
    ))]
#[get("/events/<id>/promo_codes")]
pub async fn list(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<Items<PromoCodeView>>, ApiError> {
    let codes = promo_codes::list(&services, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(Items {
        items: codes.into_iter().map(PromoCodeView::from).collect(),
    }))
}

/// Make a promo code (the event's organizer): a discount per ticket on the
/// types it lists (all, if none), hidden types it unlocks, and how many
/// tickets it may be used for.
#[utoipa::path(post, path = "/api/v1/events/{id}/promo_codes", tag = "events", request_body = PromoCodeInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 201, description = "The new code", body = PromoCodeView),
        docs::AsEventOwner, docs::JsonBody, docs::OrganizerRateLimited,
    ))]
#[post("/events/<id>/promo_codes", data = "<body>")]
pub async fn create(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    body: JsonBody<PromoCodeInput>,
) -> Result<(Status, Json<PromoCodeView>), ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let event_id = parse_id(id, "event")?;
    let code = promo_codes::create(&services, organizer.0, event_id, body.0.try_into()?).await?;
    Ok((Status::Created, Json(code.into())))
}

/// Change a promo code's limits, or disable it (its event's organizer). A
/// code that was used can only be disabled.
#[utoipa::path(patch, path = "/api/v1/events/{id}/promo_codes/{code_id}", tag = "events", request_body = PromoCodePatch, security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Event id"),
        ("code_id" = String, Path, description = "Promo code id"),
    ),
    responses(
        (status = 200, description = "The changed code", body = PromoCodeView),
        docs::AsEventOwner, docs::JsonBody, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: the code was used (it can only be disabled)", body = ErrorBody),
    ))]
#[patch("/events/<id>/promo_codes/<code_id>", data = "<body>")]
pub async fn change(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    code_id: &str,
    body: JsonBody<PromoCodePatch>,
) -> Result<Json<PromoCodeView>, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let (event_id, code_id) = (parse_id(id, "event")?, parse_id(code_id, "promo code")?);
    let code = promo_codes::change(
        &services,
        organizer.0,
        event_id,
        code_id,
        body.0.try_into()?,
    )
    .await?;
    Ok(Json(code.into()))
}

/// Remove a promo code that was never used (its event's organizer).
#[utoipa::path(delete, path = "/api/v1/events/{id}/promo_codes/{code_id}", tag = "events", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Event id"),
        ("code_id" = String, Path, description = "Promo code id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        docs::AsEventOwner, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: the code was used (disable it instead)", body = ErrorBody),
    ))]
#[delete("/events/<id>/promo_codes/<code_id>")]
pub async fn remove(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    code_id: &str,
) -> Result<Status, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let (event_id, code_id) = (parse_id(id, "event")?, parse_id(code_id, "promo code")?);
    promo_codes::remove(&services, organizer.0, event_id, code_id).await?;
    Ok(Status::NoContent)
}
