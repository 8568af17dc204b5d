use rocket::{get, http::Status, patch, post, serde::json::Json};

use super::{AttendeeView, EventPageView, EventView, Items};
use crate::{
    auth::Organizer,
    domain::{
        Services,
        events::{self, EventPatch, NewEventInput},
    },
    http::{ApiError, JsonBody, parse_id},
};

#[post("/events", data = "<body>")]
pub async fn create(
    organizer: Organizer,
    services: Services,
    body: JsonBody<NewEventInput>,
) -> Result<(Status, Json<EventView>), ApiError> {
    let event = events::create(&services.db, organizer.0, body.0).await?;
    Ok((Status::Created, Json(event.into())))
}

#[get("/events?<limit>&<cursor>")]
pub async fn list(
    services: Services,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Json<EventPageView>, ApiError> {
    let page = events::list(&services.db, limit, cursor).await?;
    Ok(Json(EventPageView {
        items: page.items.into_iter().map(EventView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[get("/events/<id>")]
pub async fn get(services: Services, id: &str) -> Result<Json<EventView>, ApiError> {
    let event = events::get(&services.db, parse_id(id, "event")?).await?;
    Ok(Json(event.into()))
}

#[patch("/events/<id>", data = "<body>")]
pub async fn update(
    organizer: Organizer,
    services: Services,
    id: &str,
    body: JsonBody<EventPatch>,
) -> Result<Json<EventView>, ApiError> {
    let event = events::update(&services, organizer.0, parse_id(id, "event")?, body.0).await?;
    Ok(Json(event.into()))
}

#[get("/events/<id>/bookings")]
pub async fn attendees(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<Items<AttendeeView>>, ApiError> {
    let rows = events::attendees(&services.db, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(Items {
        items: rows
            .into_iter()
            .map(|(booking, customer)| AttendeeView {
                booking: booking.into(),
                customer_name: customer.name,
                customer_email: customer.email,
            })
            .collect(),
    }))
}
