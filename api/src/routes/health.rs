use rocket::{
    State, get,
    http::{ContentType, Status},
    serde::json::Json,
};
use serde_json::{Value, json};

use std::sync::Arc;

use platform::health::MailHealth;

use crate::{domain::Services, http::ApiError};

/// The process is up (and, with its worker inside, its email gets through).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "The process is up"),
        (status = 503, description = "`degraded`: email sends are timing out (embedded worker)"),
    ))]
#[get("/health")]
pub fn health(mail: &State<Arc<MailHealth>>) -> (Status, (ContentType, String)) {
    match mail.report() {
        (true, body) => (Status::Ok, (ContentType::JSON, body)),
        (false, body) => (Status::ServiceUnavailable, (ContentType::JSON, body)),
    }
}

/// The process can do its job: the database and the queue answer.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Database and queue answer"),
        (status = 503, description = "`unavailable`: `details` names what failed", body = crate::http::error::ErrorBody),
    ))]
#[get("/ready")]
pub async fn ready(services: &State<Services>) -> Result<Json<Value>, ApiError> {
    let (database, queue) = tokio::join!(services.db.ping(), services.queues.notifications.ping());
    // Callers learn what is down; the why (addresses, driver messages) is logged.
    let mut failed = serde_json::Map::new();
    if let Err(error) = database {
        tracing::warn!(%error, "readiness: the database does not answer");
        failed.insert("database".into(), "not answering".into());
    }
    if let Err(error) = queue {
        tracing::warn!(%error, "readiness: the queue does not answer");
        failed.insert("queue".into(), "not answering".into());
    }
    if failed.is_empty() {
        return Ok(Json(
            json!({"status": "ready", "database": "ok", "queue": "ok"}),
        ));
    }
    let names: Vec<&str> = failed.keys().map(String::as_str).collect();
    let mut error = ApiError::new(
        crate::http::error::ErrorCode::Unavailable,
        format!("not ready: {} not answering", names.join(" and ")),
    );
    error.details = failed;
    Err(error)
}
