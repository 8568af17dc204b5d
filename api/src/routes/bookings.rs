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

#[get("/bookings")]
pub async fn list_own(
    customer: Customer,
    services: Services,
) -> Result<Json<Items<BookingView>>, ApiError> {
    Ok(Json(Items::of(
        bookings::list_own(&services.db, customer.0).await?,
    )))
}

#[get("/bookings/<id>")]
pub async fn get(
    user: Authenticated,
    services: Services,
    id: &str,
) -> Result<Json<BookingView>, ApiError> {
    let booking = bookings::get(&services.db, user.id, parse_id(id, "booking")?).await?;
    Ok(Json(booking.into()))
}

#[post("/bookings/<id>/cancel")]
pub async fn cancel(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<BookingView>, ApiError> {
    let booking = bookings::cancel(&services, customer.0, parse_id(id, "booking")?).await?;
    Ok(Json(booking.into()))
}
