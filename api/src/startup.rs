//! Connecting to everything the api needs, before Rocket starts.

use platform::{ChangeFeed, Queues, db, queue::QueueError};
use rocket::{
    Orbit, Rocket,
    fairing::{Fairing, Info, Kind},
};
use sea_orm::{DatabaseConnection, DbErr};
#[cfg(feature = "embedded-worker")]
use worker::Worker;

use crate::{
    Settings, auth::TokenKeys, domain::Services, http::rate_limit::RateLimiter, live::LiveHub,
};

/// Everything [`crate::rocket`] needs.
pub struct App {
    pub services: Services,
    pub tokens: TokenKeys,
    /// Embedded mode: the worker that runs inside this process.
    #[cfg(feature = "embedded-worker")]
    pub embedded_worker: Option<Worker>,
    pub idempotency_ttl: std::time::Duration,
    pub rate_limiter: RateLimiter,
    /// Live availability for this process's subscribers.
    pub live: std::sync::Arc<LiveHub>,
    /// `/metrics` wants this bearer token, when set.
    pub metrics_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("payments: {0}")]
    Payments(#[from] stripe_client::StripeError),
    #[error("tickets: {0}")]
    TicketKey(#[from] inventory::signing::KeyError),
    #[cfg(feature = "embedded-worker")]
    #[error("worker: {0}")]
    Worker(#[from] worker::runner::WorkerError),
}

pub async fn build(settings: &Settings) -> Result<App, StartupError> {
    let url = &settings.storage.database_url;
    let db = if db::is_sqlite(url) {
        // A local file either opens or the path is wrong; waiting will not help.
        db::connect(url, settings.db_max_connections).await?
    } else {
        db::connect_with_retry(url, settings.db_max_connections).await
    };
    migration::up_exactly_once(&db).await?;
    let queues = Queues::open(
        &settings.storage.queue,
        &settings.storage.queue_namespace,
        &db,
    )
    .await?;
    let live = ChangeFeed::open(
        &settings.storage.queue,
        &settings.storage.queue_namespace,
        queues.notifications.redis_connection(),
    )
    .map_err(QueueError::from)?;
    let tickets = std::sync::Arc::new(
        inventory::signing::signer(&db, settings.ticket_signing_key.as_deref()).await?,
    );
    #[cfg(feature = "embedded-worker")]
    let embedded_worker = if settings.embedded() {
        let mail = match &settings.worker.mail.smtp_url {
            Some(_) => "SMTP_URL".to_owned(),
            None => format!("files in {}", settings.worker.mail.dir.display()),
        };
        tracing::info!(
            database = %url,
            mail = %mail,
            "embedded mode: SQLite database, jobs in SQLite, worker in this process (set DATABASE_URL and REDIS_URL for production)"
        );
        // The same feed: its expiries reach this process's live subscribers.
        Some(Worker::new(
            &settings.worker,
            db.clone(),
            queues.clone(),
            live.clone(),
            tickets.clone(),
        )?)
    } else {
        None
    };
    let stripe = match &settings.stripe {
        Some(stripe) => Some(std::sync::Arc::new(stripe_client::Stripe::new(stripe)?)),
        None => None,
    };
    let rate_limiter = RateLimiter::new(
        settings.rate_limits.clone(),
        queues.notifications.redis_connection(),
        &settings.storage.queue_namespace,
    );
    Ok(App {
        rate_limiter,
        live: LiveHub::new(db.clone(), live.clone(), settings.rate_limits.streams()),
        services: Services {
            webhook_destinations: settings.webhook_destinations,
            ..Services::new(
                db,
                queues,
                live,
                std::sync::Arc::new(crate::metrics::BusinessMetrics),
                settings.event_update_delay,
                stripe,
                tickets,
            )
        },
        tokens: TokenKeys::new(&settings.auth.secret, settings.auth.token_ttl),
        #[cfg(feature = "embedded-worker")]
        embedded_worker,
        idempotency_ttl: settings.idempotency_ttl,
        metrics_token: settings.metrics_token.clone(),
    })
}

/// Periodic clean-up that belongs to the api: forgetting idempotency keys past
/// their time to live. Every api process runs it; concurrent deletes are harmless.
pub struct Housekeeping {
    pub db: DatabaseConnection,
    pub idempotency_ttl: std::time::Duration,
    stop: tokio::sync::watch::Sender<bool>,
}

const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Housekeeping {
    pub fn new(db: DatabaseConnection, idempotency_ttl: std::time::Duration) -> Self {
        Self {
            db,
            idempotency_ttl,
            stop: tokio::sync::watch::channel(false).0,
        }
    }
}

#[rocket::async_trait]
impl Fairing for Housekeeping {
    fn info(&self) -> Info {
        Info {
            name: "idempotency key purge",
            kind: Kind::Liftoff | Kind::Shutdown,
        }
    }

    async fn on_liftoff(&self, _: &Rocket<Orbit>) {
        let (db, ttl, mut stopped) = (self.db.clone(), self.idempotency_ttl, self.stop.subscribe());
        tokio::spawn(async move {
            loop {
                match crate::domain::idempotency::purge(&db, ttl, crate::domain::now()).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "forgot expired idempotency keys"),
                    Err(error) => {
                        tracing::warn!(%error, "idempotency key purge failed; will retry")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        });
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        let _ = self.stop.send(true);
    }
}
