use rocket::{get, post, serde::json::Json};

use super::{QueueStatisticsView, QueueView};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::{Customer, Organizer},
    domain::{Services, waiting_room},
    http::{ApiError, parse_id},
};

/// Join the event's waiting room (customers). Everyone who joins before the
/// on-sale is put in a random order at `on_sale_at`; later arrivals queue
/// behind them. Joining again keeps your place.
#[utoipa::path(post, path = "/api/v1/events/{id}/queue", tag = "waiting room", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Where you stand", body = QueueView),
        docs::AsCustomer, docs::UnknownEvent,
        (status = 409, description = "`conflict`: the event has no waiting room; `event_cancelled`", body = ErrorBody),
    ))]
#[post("/events/<id>/queue")]
pub async fn join(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<QueueView>, ApiError> {
    let standing = waiting_room::join(&services, customer.0, parse_id(id, "event")?).await?;
    Ok(Json(standing.into()))
}

/// Where I stand in the event's waiting room.
#[utoipa::path(get, path = "/api/v1/events/{id}/queue/me", tag = "waiting room", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Where you stand", body = QueueView),
        docs::AsCustomer,
        (status = 404, description = "No such event, or you have not joined its waiting room", body = ErrorBody),
        (status = 409, description = "`conflict`: the event has no waiting room; `event_cancelled`", body = ErrorBody),
    ))]
#[get("/events/<id>/queue/me")]
pub async fn me(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<Json<QueueView>, ApiError> {
    let standing = waiting_room::me(&services.db, customer.0, parse_id(id, "event")?).await?;
    Ok(Json(standing.into()))
}

/// The waiting room as its organizer sees it.
#[utoipa::path(get, path = "/api/v1/events/{id}/queue", tag = "waiting room", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "How many wait, hold a valid pass, let their pass run out, and took tickets", body = QueueStatisticsView),
        docs::AsEventOwner,
    ))]
#[get("/events/<id>/queue")]
pub async fn statistics(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<QueueStatisticsView>, ApiError> {
    let stats = waiting_room::statistics(&services.db, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(stats.into()))
}
