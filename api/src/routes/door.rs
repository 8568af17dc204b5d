//! Tickets and the door (SPEC §15): a booking's tickets with their codes,
//! the key a scanner verifies codes with, door devices, and check-in online
//! and offline.

use rocket::{delete, get, http::Status, post, serde::json::Json};

use super::{
    CheckInInput, CheckedInView, DoorDeviceView, Items, NewDeviceInput, ScanResultView,
    SigningKeyView, TicketCachePage, TicketView, UploadInput, UploadView,
};
use crate::{
    auth::{Authenticated, DoorPass, Organizer},
    domain::{Services, door},
    http::{ApiError, JsonBody, docs, error::ErrorBody, parse_id},
};

/// A booking's tickets, each with its code (its customer or the event's
/// organizer).
#[utoipa::path(get, path = "/api/v1/bookings/{id}/tickets", tag = "door", security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id")),
    responses(
        (status = 200, description = "One ticket per unit (per seat)", body = Items<TicketView>),
        (status = 401, description = "No or a bad token", body = ErrorBody),
        (status = 404, description = "No such booking of yours or of your events", body = ErrorBody),
    ))]
#[get("/bookings/<id>/tickets")]
pub async fn of_booking(
    user: Authenticated,
    services: Services,
    id: &str,
) -> Result<Json<Items<TicketView>>, ApiError> {
    let tickets = door::of_booking(&services, user.id, parse_id(id, "booking")?).await?;
    Ok(Json(Items::of(tickets)))
}

/// The public key that verifies this event's ticket codes offline (the
/// organizer or a door device of the event). The code format is in the
/// README ("Ticket codes").
#[utoipa::path(get, path = "/api/v1/events/{id}/checkin/key", tag = "door", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The key", body = SigningKeyView),
        docs::AtTheDoor,
    ))]
#[get("/events/<id>/checkin/key")]
pub async fn key(
    door: DoorPass,
    services: Services,
    id: &str,
) -> Result<Json<SigningKeyView>, ApiError> {
    let public_key = door::public_key(&services, door.0, parse_id(id, "event")?).await?;
    Ok(Json(SigningKeyView {
        algorithm: "ed25519",
        public_key,
    }))
}

/// A door device for the event (its organizer): its `token` is shown here
/// only, and checks tickets in at this event and nowhere else.
#[utoipa::path(post, path = "/api/v1/events/{id}/checkin/devices", tag = "door", request_body = NewDeviceInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 201, description = "The device and its token", body = DoorDeviceView),
        docs::AsEventOwner, docs::JsonBody,
    ))]
#[post("/events/<id>/checkin/devices", data = "<body>")]
pub async fn new_device(
    organizer: Organizer,
    services: Services,
    id: &str,
    body: JsonBody<NewDeviceInput>,
) -> Result<(Status, Json<DoorDeviceView>), ApiError> {
    let event_id = parse_id(id, "event")?;
    let name = body.0.name()?;
    let (device, token) = door::new_device(&services, organizer.0, event_id, name).await?;
    Ok((
        Status::Created,
        Json(DoorDeviceView::with_token(device, token)),
    ))
}

/// Revoke a door device (its event's organizer): its token stops working at
/// once.
#[utoipa::path(delete, path = "/api/v1/events/{id}/checkin/devices/{device_id}", tag = "door", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ("device_id" = String, Path, description = "Device id")),
    responses(
        (status = 200, description = "The revoked device", body = DoorDeviceView),
        docs::AsEventOwner,
        (status = 404, description = "No such device at this event", body = ErrorBody),
    ))]
#[delete("/events/<id>/checkin/devices/<device_id>")]
pub async fn revoke_device(
    organizer: Organizer,
    services: Services,
    id: &str,
    device_id: &str,
) -> Result<Json<DoorDeviceView>, ApiError> {
    let event_id = parse_id(id, "event")?;
    let device_id = parse_id(device_id, "door device")?;
    let device = door::revoke_device(&services, organizer.0, event_id, device_id).await?;
    Ok(Json(DoorDeviceView::from(device)))
}

/// Scan a ticket at the door: admitted once; a second scan anywhere is 409
/// `already_checked_in` (with when and by which device), a cancelled ticket
/// 409 `ticket_cancelled`, a code that is not this event's 404
/// `unknown_ticket`.
#[utoipa::path(post, path = "/api/v1/events/{id}/checkin", tag = "door", request_body = CheckInInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Admitted", body = CheckedInView),
        docs::AtTheDoor, docs::JsonBody,
        (status = 404, description = "`unknown_ticket` (or no such event)", body = ErrorBody),
        (status = 409, description = "`already_checked_in` (`details.checked_in_at`, `details.device`) or `ticket_cancelled`", body = ErrorBody),
    ))]
#[post("/events/<id>/checkin", data = "<body>")]
pub async fn check_in(
    door: DoorPass,
    services: Services,
    id: &str,
    body: JsonBody<CheckInInput>,
) -> Result<Json<CheckedInView>, ApiError> {
    let admitted = door::check_in(&services, door.0, parse_id(id, "event")?, &body.0.code).await?;
    Ok(Json(admitted.into()))
}

/// A scanner's offline cache: every ticket of the event, a page (up to
/// 1,000, by id) at a time.
#[utoipa::path(get, path = "/api/v1/events/{id}/checkin/tickets", tag = "door", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before")),
    responses(
        (status = 200, description = "A page of tickets", body = TicketCachePage),
        docs::AtTheDoor,
    ))]
#[get("/events/<id>/checkin/tickets?<cursor>")]
pub async fn cache(
    door: DoorPass,
    services: Services,
    id: &str,
    cursor: Option<&str>,
) -> Result<Json<TicketCachePage>, ApiError> {
    let after = cursor.map(|c| parse_id(c, "cursor")).transpose()?;
    let (tickets, next) =
        door::cache_page(&services, door.0, parse_id(id, "event")?, after).await?;
    Ok(Json(TicketCachePage::new(tickets, next)))
}

/// Upload a scanner's offline scans: one result per scan, in order, as a
/// scan would answer; a ticket's entry is its earliest scan; uploading the
/// same scans again changes nothing. All of an upload is applied, or none.
#[utoipa::path(post, path = "/api/v1/events/{id}/checkin/upload", tag = "door", request_body = UploadInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "One result per scan", body = UploadView),
        docs::AtTheDoor, docs::JsonBody,
    ))]
#[post("/events/<id>/checkin/upload", data = "<body>")]
pub async fn upload(
    door: DoorPass,
    services: Services,
    id: &str,
    body: JsonBody<UploadInput>,
) -> Result<Json<UploadView>, ApiError> {
    let event_id = parse_id(id, "event")?;
    let scans = body.0.scans()?;
    let results = door::upload(&services, door.0, event_id, scans).await?;
    Ok(Json(UploadView {
        results: results.into_iter().map(ScanResultView::from).collect(),
    }))
}
