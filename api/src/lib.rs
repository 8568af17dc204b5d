//! The booking api. [`rocket`] builds the server from an [`App`] (made by
//! [`startup::build`]), so tests and `main` launch exactly the same thing.

pub mod auth;
pub mod domain;
#[cfg(feature = "embedded-worker")]
pub mod embedded;
pub mod front_door;
pub mod http;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;

use std::sync::Arc;

use platform::health::MailHealth;
use rocket::{Build, Ignite, Rocket, catchers, figment::Figment};

pub use settings::Settings;
pub use startup::App;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    #[error("{0}")]
    Rocket(Box<rocket::Error>),
}

/// Serves an ignited [`rocket`] on its configured address and port, through
/// the api's own accept loop ([`front_door`]), until it shuts down and the
/// door's live streams have ended (for at most the shutdown's `mercy`).
pub async fn launch(rocket: Rocket<Ignite>) -> Result<Rocket<Ignite>, LaunchError> {
    let mercy = std::time::Duration::from_secs(u64::from(rocket.config().shutdown.mercy));
    let (connections, streams) = front_door::open(&rocket)
        .await
        .map_err(LaunchError::Listen)?;
    let launched = rocket.launch_on(connections).await;
    streams.ended(mercy).await;
    launched.map_err(|error| LaunchError::Rocket(Box::new(error)))
}

pub fn rocket(figment: Figment, app: App) -> Rocket<Build> {
    let housekeeping = startup::Housekeeping::new(app.services.db.clone(), app.idempotency_ttl);
    // The client address is the peer's unless `TRUST_X_FORWARDED_FOR` says
    // otherwise (see `ClientIp`); Rocket would otherwise believe any `X-Real-IP`.
    let rocket = rocket::custom(figment.merge(("ip_header", false)))
        .attach(housekeeping)
        .attach(live::Following::new(app.live.clone()))
        .manage(app.live)
        .manage(app.rate_limiter)
        .manage(app.services)
        .manage(app.tokens)
        .manage(metrics::OutboxCounts::default())
        .manage(metrics::MetricsToken(app.metrics_token))
        .mount("/api/v1", openapi::api_v1_routes())
        .mount("/", openapi::operation_routes())
        .mount("/", openapi::docs())
        .register("/", catchers![http::error::json_catcher])
        .attach(telemetry::Telemetry);
    // `/health` reports whether this process's email gets through: only an
    // embedded worker sends any.
    #[cfg(feature = "embedded-worker")]
    let rocket = match app.embedded_worker {
        Some(worker) => rocket
            .manage(worker.mail_health())
            .attach(embedded::EmbeddedWorker::new(worker)),
        None => rocket.manage(Arc::<MailHealth>::default()),
    };
    #[cfg(not(feature = "embedded-worker"))]
    let rocket = rocket.manage(Arc::<MailHealth>::default());
    rocket
}
