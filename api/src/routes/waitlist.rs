use rocket::{delete, http::Status, post, serde::json::Json};

use super::{WaitlistRequest, WaitlistView};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::Customer,
    domain::{Services, waitlist},
    http::{ApiError, JsonBody, parse_id},
};

/// Join a sold-out event's waitlist (customers). Tickets that come back go to
/// the line in order before general sale: the first entry they fit gets a hold
/// for the event's `offer_minutes`, and an email. Joining again returns your
/// place.
#[utoipa::path(post, path = "/api/v1/events/{id}/waitlist", tag = "waitlist", request_body = WaitlistRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 201, description = "Your new place in the line", body = WaitlistView),
        (status = 200, description = "You were already waiting: your place", body = WaitlistView),
        docs::AsCustomer, docs::UnknownEvent, docs::JsonBody,
        (status = 409, description = "`conflict`: tickets are on sale (hold them instead); `event_cancelled`", body = ErrorBody),
    ))]
#[post("/events/<id>/waitlist", data = "<body>")]
pub async fn join(
    customer: Customer,
    services: Services,
    id: &str,
    body: JsonBody<WaitlistRequest>,
) -> Result<(Status, Json<WaitlistView>), ApiError> {
    let event_id = parse_id(id, "event")?;
    let request = body.0;
    let (place, new) = waitlist::join(
        &services,
        customer.0,
        event_id,
        request.quantity,
        request.ticket_type_id,
    )
    .await?;
    let status = if new { Status::Created } else { Status::Ok };
    Ok((status, Json(place.into())))
}

/// Leave the waitlist.
#[utoipa::path(delete, path = "/api/v1/events/{id}/waitlist", tag = "waitlist", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Your place, now `left`", body = WaitlistView),
        docs::AsCustomer,
        (status = 404, description = "You are not waiting for this event", body = ErrorBody),
    ))]
#[delete("/events/<id>/waitlist")]
pub async fn leave(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<WaitlistView>, ApiError> {
    let place = waitlist::leave(&services, customer.0, parse_id(id, "event")?).await?;
    Ok(Json(place.into()))
}
