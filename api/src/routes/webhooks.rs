//! An organizer's webhook endpoints (SPEC §16).

use rocket::{State, delete, get, http::Status, patch, post, serde::json::Json};

use super::{
    Items, WebhookDeliveryView, WebhookEndpointInput, WebhookEndpointPatch, WebhookEndpointView,
};
use crate::{
    auth::Organizer,
    domain::{Services, webhooks},
    http::rate_limit::RateLimiter,
    http::{ApiError, JsonBody, docs, parse_id},
};

/// The organizer's webhook endpoints, oldest first (secrets are not shown).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints", body = Items<WebhookEndpointView>),
        docs::AsOrganizer,
    ))]
#[get("/webhooks")]
pub async fn list(
    organizer: Organizer,
    services: Services,
) -> Result<Json<Items<WebhookEndpointView>>, ApiError> {
    let endpoints = webhooks::list(&services, organizer.0).await?;
    Ok(Json(Items::of(endpoints)))
}

/// Add an endpoint: the message types it takes and, optionally, the events
/// it is about (none: all of the organizer's). Its URL must be `https://` and
/// resolve to public addresses only. The answer holds its signing `secret`,
/// shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = WebhookEndpointInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "The new endpoint, with its secret", body = WebhookEndpointView),
        docs::AsOrganizer, docs::JsonBody, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: the organizer has as many endpoints as allowed", body = crate::http::error::ErrorBody),
    ))]
#[post("/webhooks", data = "<body>")]
pub async fn create(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    body: JsonBody<WebhookEndpointInput>,
) -> Result<(Status, Json<WebhookEndpointView>), ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let new = body.0.parse(services.webhook_destinations)?;
    let (endpoint, secret) = webhooks::create(&services, organizer.0, new).await?;
    let mut view = WebhookEndpointView::from(endpoint);
    view.secret = Some(secret);
    Ok((Status::Created, Json(view)))
}

/// One endpoint (its organizer's alone).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpointView),
        docs::AsOrganizer, docs::UnknownWebhook,
    ))]
#[get("/webhooks/<id>")]
pub async fn read(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let endpoint = webhooks::get(&services, organizer.0, parse_id(id, "webhook endpoint")?).await?;
    Ok(Json(endpoint.into()))
}

/// Change an endpoint's URL (checked as at creation), types or events
/// (`[]`: all), or switch it off and on.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", request_body = WebhookEndpointPatch, security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The changed endpoint", body = WebhookEndpointView),
        docs::AsOrganizer, docs::UnknownWebhook, docs::JsonBody, docs::OrganizerRateLimited,
    ))]
#[patch("/webhooks/<id>", data = "<body>")]
pub async fn change(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    body: JsonBody<WebhookEndpointPatch>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let id = parse_id(id, "webhook endpoint")?;
    let changes = body.0.parse(services.webhook_destinations)?;
    let endpoint = webhooks::change(&services, organizer.0, id, changes).await?;
    Ok(Json(endpoint.into()))
}

/// Remove an endpoint.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Removed"),
        docs::AsOrganizer, docs::UnknownWebhook, docs::OrganizerRateLimited,
    ))]
#[delete("/webhooks/<id>")]
pub async fn remove(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
) -> Result<Status, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    webhooks::remove(&services, organizer.0, parse_id(id, "webhook endpoint")?).await?;
    Ok(Status::NoContent)
}

/// An endpoint's latest 100 messages, newest first: what was sent and how it
/// went.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The deliveries", body = Items<WebhookDeliveryView>),
        docs::AsOrganizer, docs::UnknownWebhook,
    ))]
#[get("/webhooks/<id>/deliveries")]
pub async fn deliveries(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<Items<WebhookDeliveryView>>, ApiError> {
    let id = parse_id(id, "webhook endpoint")?;
    let messages = webhooks::deliveries(&services, organizer.0, id).await?;
    Ok(Json(Items::of(messages)))
}
