use rocket::{State, delete, get, http::Status, patch, post, serde::json::Json};

use super::{Items, TicketTypeInput, TicketTypePatch, TicketTypeView};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::Organizer,
    domain::{Services, events},
    http::rate_limit::RateLimiter,
    http::{ApiError, JsonBody, parse_id},
};

/// Every ticket type of an event, hidden ones too (its organizer).
#[utoipa::path(get, path = "/api/v1/events/{id}/ticket_types", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The types, in order", body = Items<TicketTypeView>),
        docs::AsEventOwner,
    ))]
#[get("/events/<id>/ticket_types")]
pub async fn list(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<Items<TicketTypeView>>, ApiError> {
    let types = events::ticket_types(&services, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(Items {
        items: types.into_iter().map(TicketTypeView::from).collect(),
    }))
}

/// Add a ticket type to a general-admission event (its organizer): its
/// tickets add to the event's, and go to the waitlist first.
#[utoipa::path(post, path = "/api/v1/events/{id}/ticket_types", tag = "events", request_body = TicketTypeInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 201, description = "The new type", body = TicketTypeView),
        docs::AsEventOwner, docs::JsonBody, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: a seated or cancelled event", body = ErrorBody),
    ))]
#[post("/events/<id>/ticket_types", data = "<body>")]
pub async fn add(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    body: JsonBody<TicketTypeInput>,
) -> Result<(Status, Json<TicketTypeView>), ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let event_id = parse_id(id, "event")?;
    let added = events::add_type(&services, organizer.0, event_id, body.0.try_into()?).await?;
    Ok((Status::Created, Json(added.into())))
}

/// Change a ticket type (its event's organizer). A new price applies to
/// holds made from now on; the quantity cannot go below what is held and
/// booked, and moves the event's total with it.
#[utoipa::path(patch, path = "/api/v1/events/{id}/ticket_types/{type_id}", tag = "events", request_body = TicketTypePatch, security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Event id"),
        ("type_id" = String, Path, description = "Ticket type id"),
    ),
    responses(
        (status = 200, description = "The changed type", body = TicketTypeView),
        docs::AsEventOwner, docs::JsonBody, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: a quantity below the tickets held and booked, a seated or cancelled event", body = ErrorBody),
    ))]
#[patch("/events/<id>/ticket_types/<type_id>", data = "<body>")]
pub async fn change(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    type_id: &str,
    body: JsonBody<TicketTypePatch>,
) -> Result<Json<TicketTypeView>, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let (event_id, type_id) = (parse_id(id, "event")?, parse_id(type_id, "ticket type")?);
    let changed = events::change_type(
        &services,
        organizer.0,
        event_id,
        type_id,
        body.0.try_into()?,
    )
    .await?;
    Ok(Json(changed.into()))
}

/// Remove a ticket type that was never held or booked (its event's
/// organizer); an event keeps at least one.
#[utoipa::path(delete, path = "/api/v1/events/{id}/ticket_types/{type_id}", tag = "events", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Event id"),
        ("type_id" = String, Path, description = "Ticket type id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        docs::AsEventOwner, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: tickets of it were held or booked, or it is the event's only type", body = ErrorBody),
    ))]
#[delete("/events/<id>/ticket_types/<type_id>")]
pub async fn remove(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    type_id: &str,
) -> Result<Status, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let (event_id, type_id) = (parse_id(id, "event")?, parse_id(type_id, "ticket type")?);
    events::remove_type(&services, organizer.0, event_id, type_id).await?;
    Ok(Status::NoContent)
}
