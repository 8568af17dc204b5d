//! Connecting to everything the api needs, before Rocket starts.

use rocket::{
    Orbit, Rocket,
    fairing::{Fairing, Info, Kind},
};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Mutex;
use worker::{JobQueue, Worker, WorkerHandle, db, queue::QueueError};

use crate::{Settings, auth::TokenKeys, domain::Services, http::rate_limit::RateLimiter};

/// Everything [`crate::rocket`] needs.
pub struct App {
    pub services: Services,
    pub tokens: TokenKeys,
    /// Embedded mode: the worker that runs inside this process.
    pub embedded_worker: Option<Worker>,
    pub idempotency_ttl: std::time::Duration,
    pub rate_limiter: RateLimiter,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("mailer: {0}")]
    Mail(#[from] worker::mailer::MailError),
}

pub async fn build(settings: &Settings) -> Result<App, StartupError> {
    let url = &settings.worker.database_url;
    let db = if db::is_sqlite(url) {
        // A local file either opens or the path is wrong; waiting will not help.
        db::connect(url, settings.db_max_connections).await?
    } else {
        db::connect_with_retry(url, settings.db_max_connections).await
    };
    migrate(&db).await?;
    let queue = JobQueue::open(&settings.worker.queue, &settings.worker.queue_name, &db).await?;
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
        Some(Worker::new(&settings.worker, db.clone(), queue.clone())?)
    } else {
        None
    };
    let rate_limiter = RateLimiter::new(
        settings.rate_limits.clone(),
        queue.redis_connection(),
        &settings.worker.queue_name,
    );
    Ok(App {
        rate_limiter,
        services: Services::new(db, queue),
        tokens: TokenKeys::new(&settings.auth.secret, settings.auth.token_ttl),
        embedded_worker,
        idempotency_ttl: settings.idempotency_ttl,
    })
}

/// Applies pending migrations under a lock (see [`migration::up_exactly_once`]).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::up_exactly_once(db).await
}

/// Runs the worker inside the api process (embedded mode) for as long as Rocket runs.
pub struct EmbeddedWorker {
    worker: Mutex<Option<Worker>>,
    running: Mutex<Option<WorkerHandle>>,
}

impl EmbeddedWorker {
    pub fn new(worker: Worker) -> Self {
        Self {
            worker: Mutex::new(Some(worker)),
            running: Mutex::new(None),
        }
    }
}

#[rocket::async_trait]
impl Fairing for EmbeddedWorker {
    fn info(&self) -> Info {
        Info {
            name: "embedded notification worker",
            kind: Kind::Liftoff | Kind::Shutdown,
        }
    }

    async fn on_liftoff(&self, _: &Rocket<Orbit>) {
        if let Some(worker) = self.worker.lock().await.take() {
            *self.running.lock().await = Some(worker.spawn());
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        if let Some(running) = self.running.lock().await.take() {
            running.shutdown().await;
        }
    }
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
