//! The job queue as both sides see it: the api pushes, the worker consumes.

use std::time::Duration;

use crate::{jobs::DeliverNotification, metrics, settings::QueueBackend};
use apalis::prelude::TaskSink;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use sea_orm::{DatabaseConnection, DbBackend, sqlx::SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("sqlite queue: {0}")]
    Sqlite(#[from] apalis_sqlite::Error),
    #[error("sqlite queue setup: {0}")]
    SqliteSetup(#[from] sea_orm::sqlx::migrate::MigrateError),
    #[error("push failed: {0}")]
    Push(String),
    #[error("the queue did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the embedded queue needs a SQLite database")]
    NotSqlite,
}

/// A handle on the notifications queue. Cheap to clone.
#[derive(Clone)]
pub enum JobQueue {
    Redis(RedisStorage<DeliverNotification>),
    Sqlite(SqliteStorage<DeliverNotification>),
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobQueue::Redis(_) => f.write_str("JobQueue::Redis"),
            JobQueue::Sqlite(_) => f.write_str("JobQueue::Sqlite"),
        }
    }
}

/// Bounds every queue round trip: a hung Redis must not hang a request.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(3);

impl JobQueue {
    /// Connects (retrying until the queue answers, so a process started before
    /// Redis comes up rather than crash-looping) and, for SQLite, creates the job
    /// tables.
    pub async fn open(
        backend: &QueueBackend,
        queue_name: &str,
        db: &DatabaseConnection,
    ) -> Result<Self, QueueError> {
        match backend {
            QueueBackend::Redis { url } => {
                let client = redis::Client::open(url.as_str())?;
                let conn = connect_with_retry(&client).await;
                let config = apalis_redis::Config::default()
                    .queue(queue_name)
                    // Results are not read by anyone; keeping them would grow Redis forever.
                    .persist_results(false)
                    .emit_events(false);
                Ok(JobQueue::Redis(RedisStorage::new(conn).with_config(config)))
            }
            QueueBackend::Sqlite => {
                if db.get_database_backend() != DbBackend::Sqlite {
                    return Err(QueueError::NotSqlite);
                }
                let pool: SqlitePool = db.get_sqlite_connection_pool().clone();
                create_job_tables(&pool).await?;
                let config = apalis_sqlite::Config::default()
                    .queue(queue_name)
                    .persist_results(false);
                Ok(JobQueue::Sqlite(
                    SqliteStorage::new(&pool).with_config(config),
                ))
            }
        }
    }

    pub async fn push(&self, jobs: Vec<DeliverNotification>) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let count = jobs.len() as u64;
        let push = async {
            match self.clone() {
                JobQueue::Redis(mut storage) => storage
                    .push_bulk(jobs)
                    .await
                    .map_err(|e| QueueError::Push(e.to_string())),
                JobQueue::Sqlite(mut storage) => storage
                    .push_bulk(jobs)
                    .await
                    .map_err(|e| QueueError::Push(e.to_string())),
            }
        };
        tokio::time::timeout(QUEUE_TIMEOUT, push)
            .await
            .map_err(|_| QueueError::Timeout(QUEUE_TIMEOUT))??;
        metrics::JOBS_ENQUEUED.inc_by(count);
        Ok(())
    }

    /// The Redis connection, when the queue is in Redis (for other shared state,
    /// such as rate limits).
    pub fn redis_connection(&self) -> Option<redis::aio::ConnectionManager> {
        match self.clone() {
            JobQueue::Redis(mut storage) => Some(storage.get_connection().clone()),
            JobQueue::Sqlite(_) => None,
        }
    }

    /// Readiness: does the queue answer?
    pub async fn ping(&self) -> Result<(), QueueError> {
        let check = async {
            match self.clone() {
                JobQueue::Redis(mut storage) => {
                    redis::cmd("PING")
                        .query_async::<String>(storage.get_connection())
                        .await?;
                }
                JobQueue::Sqlite(storage) => {
                    sea_orm::sqlx::query("SELECT 1 FROM Jobs LIMIT 1")
                        .execute(storage.pool())
                        .await
                        .map_err(apalis_sqlite::Error::from)?;
                }
            }
            Ok(())
        };
        tokio::time::timeout(QUEUE_TIMEOUT, check)
            .await
            .map_err(|_| QueueError::Timeout(QUEUE_TIMEOUT))?
    }
}

/// apalis-sqlite's tables (not its `setup()`, whose connection pragmas would
/// override ours in db.rs). sqlx takes no lock for migrations on SQLite, so of two
/// processes starting at once one may fail on a table the other just made; it
/// tries again and finds the migrations applied.
async fn create_job_tables(pool: &SqlitePool) -> Result<(), QueueError> {
    let mut attempts = 0;
    loop {
        match SqliteStorage::migrations().run(pool).await {
            Ok(()) => return Ok(()),
            Err(error) if attempts < 5 => {
                attempts += 1;
                tracing::debug!(%error, "job table migration raced another process; retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

async fn connect_with_retry(client: &redis::Client) -> redis::aio::ConnectionManager {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(QUEUE_TIMEOUT));
    let mut delay = Duration::from_millis(200);
    loop {
        match client
            .get_connection_manager_with_config(config.clone())
            .await
        {
            Ok(conn) => return conn,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "redis is not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
