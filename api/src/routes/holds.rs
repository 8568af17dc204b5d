use rocket::{State, delete, get, http::Status, post, serde::json::Json};

use entity::prelude::HoldStatus;

use super::{HoldStatusName, HoldView, Items, TicketRequest};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::Customer,
    domain::{Services, ValidationErrors, holds},
    http::{
        ApiError, IdempotencyHeader, JsonBody,
        idempotency::{JsonResponse, respond_once},
        parse_id,
        rate_limit::{Bucket, RateLimiter},
    },
};

use super::bookings::render_booking;

/// Hold tickets (customers): they leave sale at once and are yours until
/// `expires_at` (the event's `hold_minutes`); confirm to book them. By
/// quantity, or on a seated event by `seat_ids`; all or nothing. One active
/// hold per event.
#[utoipa::path(post, path = "/api/v1/events/{id}/holds", tag = "holds", request_body = TicketRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 201, description = "The active hold", body = HoldView),
        docs::AsCustomer, docs::UnknownEvent, docs::JsonBody,
        (status = 409, description = "`sold_out`, `seats_unavailable` (`details.seat_ids`: the taken ones), `hold_exists` (`details.hold_id`: your active hold) or `event_cancelled`; nothing was held", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts; see `Retry-After`", body = ErrorBody),
    ))]
#[post("/events/<id>/holds", data = "<body>")]
pub async fn create(
    customer: Customer,
    services: Services,
    id: &str,
    limiter: &State<RateLimiter>,
    body: JsonBody<TicketRequest>,
) -> Result<(Status, Json<HoldView>), ApiError> {
    limiter
        .check(Bucket::Bookings, &customer.0.to_string())
        .await?;
    let event_id = parse_id(id, "event")?;
    let hold = holds::create(&services, customer.0, event_id, body.0.try_into()?).await?;
    Ok((Status::Created, Json(hold.into())))
}

/// My holds, newest first (the latest 100), all or those in one `status`:
/// where a waitlist offer is found without its email.
#[utoipa::path(get, path = "/api/v1/holds", tag = "holds", security(("bearer" = [])),
    params(("status" = Option<HoldStatusName>, Query, description = "Only holds in this status")),
    responses(
        (status = 200, description = "Your holds", body = Items<HoldView>),
        docs::AsCustomer,
        (status = 422, description = "Unknown `status`", body = ErrorBody),
    ))]
#[get("/holds?<status>")]
pub async fn list(
    customer: Customer,
    services: Services,
    status: Option<&str>,
) -> Result<Json<Items<HoldView>>, ApiError> {
    let status = status.map(hold_status).transpose()?;
    let holds = holds::list_own(&services.db, customer.0, status).await?;
    Ok(Json(Items::of(holds)))
}

fn hold_status(raw: &str) -> Result<HoldStatus, ApiError> {
    match raw {
        "active" => Ok(HoldStatus::Active),
        "confirmed" => Ok(HoldStatus::Confirmed),
        "released" => Ok(HoldStatus::Released),
        "expired" => Ok(HoldStatus::Expired),
        _ => Err(ValidationErrors::single(
            "status",
            "must be one of active, confirmed, released, expired",
        )
        .into()),
    }
}

/// One of my holds.
#[utoipa::path(get, path = "/api/v1/holds/{id}", tag = "holds", security(("bearer" = [])),
    params(("id" = String, Path, description = "Hold id")),
    responses(
        (status = 200, description = "The hold", body = HoldView),
        docs::AsCustomer,
        (status = 404, description = "No such hold of yours", body = ErrorBody),
    ))]
#[get("/holds/<id>")]
pub async fn get(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<HoldView>, ApiError> {
    let hold = holds::get(&services.db, customer.0, parse_id(id, "hold")?).await?;
    Ok(Json(hold.into()))
}

/// Confirm my hold: it becomes a booking and the confirmation email goes out.
/// Repeating it returns the same booking; with an `Idempotency-Key`, the same
/// response.
#[utoipa::path(post, path = "/api/v1/holds/{id}/confirm", tag = "holds", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Hold id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; remembered for at least 24 hours"),
    ),
    responses(
        (status = 201, description = "The booking", body = super::BookingView),
        docs::AsCustomer,
        (status = 400, description = "Malformed Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No such hold of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the hold was released (or the same key is still in progress: retry); `idempotency_conflict`", body = ErrorBody),
        (status = 410, description = "`hold_expired`: too late; its tickets went back on sale", body = ErrorBody),
    ))]
#[post("/holds/<id>/confirm")]
pub async fn confirm(
    customer: Customer,
    services: Services,
    id: &str,
    idempotency: IdempotencyHeader,
) -> Result<JsonResponse, ApiError> {
    let hold_id = parse_id(id, "hold")?;
    let request = format!("confirm:{hold_id}");
    respond_once(
        &services,
        customer.0,
        idempotency.0,
        &[&request],
        Status::Created,
        render_booking,
        |remember| holds::confirm(&services, customer.0, hold_id, remember),
    )
    .await
}

/// Release my hold: its tickets go back on sale at once. Repeating it is
/// harmless.
#[utoipa::path(delete, path = "/api/v1/holds/{id}", tag = "holds", security(("bearer" = [])),
    params(("id" = String, Path, description = "Hold id")),
    responses(
        (status = 200, description = "The released hold", body = HoldView),
        docs::AsCustomer,
        (status = 404, description = "No such hold of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: already confirmed (cancel the booking instead)", body = ErrorBody),
        (status = 410, description = "`hold_expired`: it had already expired", body = ErrorBody),
    ))]
#[delete("/holds/<id>")]
pub async fn release(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<HoldView>, ApiError> {
    let hold = holds::release(&services, customer.0, parse_id(id, "hold")?).await?;
    Ok(Json(hold.into()))
}
