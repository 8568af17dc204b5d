//! The job queue as both sides see it: the api pushes, the worker consumes.

use std::{sync::LazyLock, time::Duration};

use crate::{
    jobs::{DeliverNotification, DeliverWebhook, ExpireHold, Job},
    metrics,
    settings::QueueBackend,
};
use apalis::prelude::TaskBuilder;
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

/// A handle on one queue of jobs of type `J` (by default, notifications). Cheap
/// to clone.
pub enum JobQueue<J: Job = DeliverNotification> {
    Redis(RedisStorage<J>),
    Sqlite(SqliteStorage<J>),
}

impl<J: Job> Clone for JobQueue<J> {
    fn clone(&self) -> Self {
        match self {
            JobQueue::Redis(storage) => JobQueue::Redis(storage.clone()),
            JobQueue::Sqlite(storage) => JobQueue::Sqlite(storage.clone()),
        }
    }
}

impl<J: Job> std::fmt::Debug for JobQueue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobQueue::Redis(_) => write!(f, "JobQueue::Redis({})", J::QUEUE),
            JobQueue::Sqlite(_) => write!(f, "JobQueue::Sqlite({})", J::QUEUE),
        }
    }
}

/// Bounds every queue round trip: a hung Redis must not hang a request.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(3);

/// One queue round trip, within [`QUEUE_TIMEOUT`].
async fn bounded<T, E: Into<QueueError>>(
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(QUEUE_TIMEOUT, work).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(QueueError::Timeout(QUEUE_TIMEOUT)),
    }
}

/// Due jobs moved per round trip by [`JobQueue::promote_due`]; well below the
/// ~8,000 values Lua's `unpack` accepts.
const PROMOTE_CHUNK: usize = 1_000;

/// See [`JobQueue::retire_worker`]. In-flight sets hold at most a fetch buffer.
static RETIRE_WORKER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local unrun = redis.call('SMEMBERS', KEYS[1])
        if #unrun > 0 then
            redis.call('RPUSH', KEYS[2], unpack(unrun))
            redis.call('DEL', KEYS[5])
            redis.call('LPUSH', KEYS[5], 1)
        end
        redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[3], ARGV[1])
        redis.call('DEL', KEYS[4])
        ",
    )
});

/// apalis-redis 1.0 puts every pushed job in its `scheduled` sorted set (score:
/// run-at, in seconds) and moves all due ones to the `active` list inside its
/// fetch script with one `unpack`, which fails beyond ~8,000 values; a backlog
/// that large (a worker down for a few seconds under load) then stalls every
/// fetch for good. This moves them in bounded chunks, the same way, before the
/// fetch looks.
static PROMOTE_DUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, ARGV[2])
        if #due > 0 then
            redis.call('RPUSH', KEYS[2], unpack(due))
            redis.call('ZREM', KEYS[1], unpack(due))
            redis.call('DEL', KEYS[3])
            redis.call('LPUSH', KEYS[3], 1)
        end
        return #due
        ",
    )
});

impl<J: Job> JobQueue<J> {
    /// Connects (retrying until the queue answers, so a process started before
    /// Redis comes up rather than crash-looping) and, for SQLite, creates the job
    /// tables.
    pub async fn open(
        backend: &QueueBackend,
        namespace: &str,
        db: &DatabaseConnection,
    ) -> Result<Self, QueueError> {
        let queue_name = format!("{namespace}:{}", J::QUEUE);
        match backend {
            QueueBackend::Redis { url } => {
                let client = redis::Client::open(url.as_str())?;
                let conn = connect_with_retry(&client).await;
                let config = apalis_redis::Config::default()
                    .queue(&queue_name)
                    // Results are not read by anyone, and the outbox row's conditional
                    // claim is the lock: apalis' own leases and acknowledgements
                    // would only add per-job state (see `forget`).
                    .persist_results(false)
                    .lock_tasks(false)
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
                    .queue(&queue_name)
                    .persist_results(false);
                Ok(JobQueue::Sqlite(
                    SqliteStorage::new(&pool).with_config(config),
                ))
            }
        }
    }

    /// Queues jobs to run as soon as a worker is free.
    pub async fn push(&self, jobs: Vec<J>) -> Result<(), QueueError> {
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
        bounded(push).await?;
        metrics::JOBS_ENQUEUED.inc_by(count);
        Ok(())
    }

    /// Queues a job to run at `run_at` (whole seconds, rounded up, so it never
    /// runs early).
    pub async fn schedule(
        &self,
        job: J,
        run_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), QueueError> {
        let seconds = run_at.timestamp() + i64::from(run_at.timestamp_subsec_nanos() > 0);
        let task = TaskBuilder::new(job)
            .run_at_timestamp(u64::try_from(seconds).unwrap_or_default())
            .build();
        let push = async {
            match self.clone() {
                JobQueue::Redis(mut storage) => storage
                    .push_task(task)
                    .await
                    .map_err(|e| QueueError::Push(e.to_string())),
                JobQueue::Sqlite(mut storage) => storage
                    .push_task(task)
                    .await
                    .map_err(|e| QueueError::Push(e.to_string())),
            }
        };
        bounded(push).await?;
        metrics::JOBS_ENQUEUED.inc();
        Ok(())
    }

    /// Moves every due job from the scheduled set to the active list, in chunks
    /// (see [`PROMOTE_DUE`]). Returns how many moved. A no-op on SQLite.
    pub async fn promote_due(&self) -> Result<usize, QueueError> {
        let JobQueue::Redis(mut storage) = self.clone() else {
            return Ok(0);
        };
        let config = storage.get_config().clone();
        let mut conn = storage.get_connection().clone();
        let mut moved = 0;
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let mut invocation = PROMOTE_DUE.prepare_invoke();
            invocation
                .key(config.scheduled_jobs_set())
                .key(config.active_jobs_list())
                .key(config.signal_list())
                .arg(now)
                .arg(PROMOTE_CHUNK);
            let round = invocation.invoke_async::<usize>(&mut conn);
            let count = bounded(round).await?;
            moved += count;
            if count < PROMOTE_CHUNK {
                return Ok(moved);
            }
        }
    }

    /// How many jobs wait to be fetched (due or not).
    pub async fn backlog(&self) -> Result<u64, QueueError> {
        let count = async {
            match self.clone() {
                JobQueue::Redis(mut storage) => {
                    let config = storage.get_config().clone();
                    let (active, scheduled): (u64, u64) = redis::pipe()
                        .llen(config.active_jobs_list())
                        .zcard(config.scheduled_jobs_set())
                        .query_async(storage.get_connection())
                        .await?;
                    Ok::<_, QueueError>(active + scheduled)
                }
                // Handled jobs are deleted (see `forget`): what is left waits or runs.
                JobQueue::Sqlite(storage) => {
                    let (count,): (i64,) =
                        sea_orm::sqlx::query_as("SELECT COUNT(*) FROM Jobs WHERE job_type = ?")
                            .bind(
                                <SqliteStorage<J> as apalis_core::backend::BackendConfig>::config(
                                    &storage,
                                )
                                .queue
                                .to_string(),
                            )
                            .fetch_one(storage.pool())
                            .await
                            .map_err(apalis_sqlite::Error::from)?;
                    Ok(count.max(0) as u64)
                }
            }
        };
        bounded(count).await
    }

    /// Removes what the queue keeps of a job once it has been handled. Results are
    /// not wanted (the outbox row is the record), so jobs are never acknowledged
    /// to apalis, which would otherwise keep each job's payload, metadata and
    /// membership of its worker's in-flight set forever.
    pub async fn forget(&self, worker: &str, task_id: &str) -> Result<(), QueueError> {
        let forget = async {
            match self.clone() {
                JobQueue::Redis(mut storage) => {
                    let config = storage.get_config().clone();
                    let mut conn = storage.get_connection().clone();
                    redis::pipe()
                        .srem(format!("{}:{worker}", config.inflight_jobs_set()), task_id)
                        .ignore()
                        .hdel(config.job_data_hash(), task_id)
                        .ignore()
                        .del(format!("{}:{task_id}", config.job_meta_hash()))
                        .ignore()
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                JobQueue::Sqlite(storage) => {
                    sea_orm::sqlx::query("DELETE FROM Jobs WHERE id = ?")
                        .bind(task_id)
                        .execute(storage.pool())
                        .await
                        .map_err(apalis_sqlite::Error::from)?;
                }
            }
            Ok::<_, QueueError>(())
        };
        bounded(forget).await
    }

    /// A consumer that stopped (shutdown, or restarted after a Redis error) hands
    /// back the jobs it had fetched but not run, and leaves no registration
    /// behind: every restart would otherwise add keys that nothing removes.
    pub async fn retire_worker(&self, worker: &str) -> Result<(), QueueError> {
        let JobQueue::Redis(mut storage) = self.clone() else {
            return Ok(());
        };
        let config = storage.get_config().clone();
        let mut conn = storage.get_connection().clone();
        let mut invocation = RETIRE_WORKER.prepare_invoke();
        invocation
            .key(format!("{}:{worker}", config.inflight_jobs_set()))
            .key(config.active_jobs_list())
            .key(config.workers_set())
            .key(format!(
                "{}:workers:metadata:{worker}",
                AsRef::<str>::as_ref(&config.queue)
            ))
            .key(config.signal_list())
            .arg(worker);
        let retire = invocation.invoke_async::<()>(&mut conn);
        bounded(retire).await?;
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
            Ok::<_, QueueError>(())
        };
        bounded(check).await
    }
}

/// Every queue the system uses, opened together.
#[derive(Clone, Debug)]
pub struct Queues {
    pub notifications: JobQueue<DeliverNotification>,
    pub hold_expiry: JobQueue<ExpireHold>,
    pub webhooks: JobQueue<DeliverWebhook>,
}

impl Queues {
    /// A hold's timer: its expiry job, due when it expires.
    pub async fn time_hold(
        &self,
        hold_id: uuid::Uuid,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), QueueError> {
        let job = ExpireHold {
            hold_id,
            expires_at,
        };
        self.hold_expiry.schedule(job, expires_at).await
    }

    pub async fn open(
        backend: &QueueBackend,
        namespace: &str,
        db: &DatabaseConnection,
    ) -> Result<Self, QueueError> {
        Ok(Self {
            notifications: JobQueue::open(backend, namespace, db).await?,
            hold_expiry: JobQueue::open(backend, namespace, db).await?,
            webhooks: JobQueue::open(backend, namespace, db).await?,
        })
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
