use rocket::{get, http::Status, post, serde::json::Json};

use super::{BookingView, Items};
use crate::{
    auth::{Authenticated, Customer},
    domain::{
        Services,
        bookings::{self, BookingRequest},
    },
    http::{ApiError, JsonBody, parse_id},
};

/// Book tickets (customers). All or nothing.
#[utoipa::path(post, path = "/api/v1/events/{id}/bookings", tag = "bookings", request_body = BookingRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 201, description = "The confirmed booking; a confirmation email follows", body = BookingView),
        (status = 400, description = "Malformed JSON", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing, malformed, expired or forged token", body = crate::http::error::ErrorBody),
        (status = 403, description = "Not a customer", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such event", body = crate::http::error::ErrorBody),
        (status = 409, description = "`sold_out` (nothing was booked) or `event_cancelled`", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::http::error::ErrorBody),
        (status = 422, description = "`quantity` not 1 to 10", body = crate::http::error::ErrorBody),
    ))]
#[post("/events/<id>/bookings", data = "<body>")]
pub async fn book(
    customer: Customer,
    services: Services,
    id: &str,
    body: JsonBody<BookingRequest>,
) -> Result<(Status, Json<BookingView>), ApiError> {
    let booking = bookings::book(&services, customer.0, parse_id(id, "event")?, body.0).await?;
    Ok((Status::Created, Json(booking.into())))
}

/// My bookings, newest first (customers).
#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", security(("bearer" = [])),
    responses(
        (status = 200, description = "Own bookings", body = Items<BookingView>),
        (status = 401, description = "Missing, malformed, expired or forged token", body = crate::http::error::ErrorBody),
        (status = 403, description = "Not a customer", body = crate::http::error::ErrorBody),
    ))]
#[get("/bookings")]
pub async fn list_own(
    customer: Customer,
    services: Services,
) -> Result<Json<Items<BookingView>>, ApiError> {
    Ok(Json(Items::of(
        bookings::list_own(&services.db, customer.0).await?,
    )))
}

/// One booking, for its customer or the event's organizer.
#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id")),
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 401, description = "Missing, malformed, expired or forged token", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such booking, or not yours to see", body = crate::http::error::ErrorBody),
    ))]
#[get("/bookings/<id>")]
pub async fn get(
    user: Authenticated,
    services: Services,
    id: &str,
) -> Result<Json<BookingView>, ApiError> {
    let booking = bookings::get(&services.db, user.id, parse_id(id, "booking")?).await?;
    Ok(Json(booking.into()))
}

/// Cancel my booking; its tickets go back on sale. Repeating it is harmless.
#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id")),
    responses(
        (status = 200, description = "The cancelled booking", body = BookingView),
        (status = 401, description = "Missing, malformed, expired or forged token", body = crate::http::error::ErrorBody),
        (status = 403, description = "Not a customer", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such booking of yours", body = crate::http::error::ErrorBody),
    ))]
#[post("/bookings/<id>/cancel")]
pub async fn cancel(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<BookingView>, ApiError> {
    let booking = bookings::cancel(&services, customer.0, parse_id(id, "booking")?).await?;
    Ok(Json(booking.into()))
}
