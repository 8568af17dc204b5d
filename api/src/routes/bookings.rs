use rocket::{State, get, http::Status, post, serde::json::Json};

use super::{BookingView, Items, TicketRequest};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::{Authenticated, Customer},
    domain::{Services, bookings, sale::BookingDetails},
    http::{
        ApiError, IdempotencyHeader, JsonBody,
        idempotency::{JsonResponse, respond_once},
        parse_id,
        rate_limit::{Bucket, RateLimiter},
    },
};

/// Book tickets (customers): a hold and its confirmation in one step. By
/// quantity, or on a seated event by `seat_ids`; all or nothing. With an
/// `Idempotency-Key`, a repeat of the same request returns the first response
/// and books nothing.
#[utoipa::path(post, path = "/api/v1/events/{id}/bookings", tag = "bookings", request_body = TicketRequest, security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Event id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; remembered for at least 24 hours"),
    ),
    responses(
        (status = 201, description = "The confirmed booking; a confirmation email follows", body = BookingView),
        docs::AsCustomer, docs::UnknownEvent, docs::JsonBody,
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = ErrorBody),
        (status = 409, description = "`sold_out` (nothing was booked), `seats_unavailable` (`details.seat_ids`: the taken ones), `event_cancelled`, `idempotency_conflict` (key used for another request) or `conflict` (same key still in progress: retry)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many booking attempts; see `Retry-After`", body = ErrorBody),
    ))]
#[post("/events/<id>/bookings", data = "<body>")]
pub async fn book(
    customer: Customer,
    services: Services,
    id: &str,
    idempotency: IdempotencyHeader,
    limiter: &State<RateLimiter>,
    body: JsonBody<TicketRequest>,
) -> Result<JsonResponse, ApiError> {
    limiter
        .check(Bucket::Bookings, &customer.0.to_string())
        .await?;
    let event_id = parse_id(id, "event")?;
    // The same key must mean the same request: the same event and tickets.
    let request = [event_id.to_string(), body.0.fingerprint()];
    let selection = body.0.try_into()?;
    respond_once(
        &services,
        customer.0,
        idempotency.0,
        &[&request[0], &request[1]],
        Status::Created,
        render_booking,
        |remember| bookings::book(&services, customer.0, event_id, selection, remember),
    )
    .await
}

/// A booking as the api sends it (and remembers it for a repeated request).
pub fn render_booking(booking: &BookingDetails) -> String {
    serde_json::to_string(&BookingView::from(booking.clone())).unwrap_or_default()
}

/// My bookings, newest first (customers).
#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", security(("bearer" = [])),
    responses(
        (status = 200, description = "Own bookings", body = Items<BookingView>),
        docs::AsCustomer,
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
        docs::SignedIn,
        (status = 404, description = "No such booking, or not yours to see", body = ErrorBody),
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
        docs::AsCustomer,
        (status = 404, description = "No such booking of yours", body = ErrorBody),
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
