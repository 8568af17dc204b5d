//! The worker: consumes delivery jobs and runs the outbox sweep, until told to stop.
//! Runs as its own process (`worker` binary) or inside the api in embedded mode.

use std::{sync::Arc, time::Duration};

use apalis::prelude::*;
use sea_orm::DatabaseConnection;
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use tracing::Instrument;

use platform::{DeliverNotification, JobQueue};

use crate::{
    delivery::{Deliverer, Outcome},
    mailer::{MailError, Mailer},
    metrics,
    poll::Tick,
    settings::WorkerSettings,
};

/// An idle consumer looks for new jobs this often (see `poll`).
const JOB_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Rows pushed per sweep round; the next round picks up the rest.
const SWEEP_BATCH: u64 = 500;

pub struct Worker {
    deliverer: Arc<Deliverer>,
    queue: JobQueue,
    concurrency: usize,
}

/// A running worker. Dropping it does not stop it; call [`WorkerHandle::shutdown`].
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Worker {
    pub fn new(
        settings: &WorkerSettings,
        db: DatabaseConnection,
        queue: JobQueue,
    ) -> Result<Self, MailError> {
        let mailer = Mailer::from_settings(&settings.mail)?;
        tracing::info!(mailer = mailer.describe(), queue = ?queue, concurrency = settings.concurrency, "worker configured");
        Ok(Self {
            deliverer: Arc::new(Deliverer {
                db,
                mailer,
                mail: settings.mail.clone(),
                policy: settings.delivery.clone(),
            }),
            queue,
            concurrency: settings.concurrency,
        })
    }

    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let consumer = tokio::spawn(consume(
            self.queue.clone(),
            self.deliverer.clone(),
            self.concurrency,
            stopped.clone(),
        ));
        let promoter = tokio::spawn(promote(self.queue.clone(), stopped.clone()));
        let sweeper = tokio::spawn(sweep(self.queue, self.deliverer, stopped));
        WorkerHandle {
            stop,
            tasks: vec![consumer, promoter, sweeper],
        }
    }
}

impl WorkerHandle {
    /// Stops taking new jobs and waits for the ones in flight.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "worker task ended abnormally");
            }
        }
    }

    /// [`Self::shutdown`], giving up after `grace`. A job cut off then stays
    /// `sending` until its lease ends, when the sweep hands it out again. Returns
    /// whether everything finished in time.
    pub async fn shutdown_within(self, grace: std::time::Duration) -> bool {
        tokio::time::timeout(grace, self.shutdown()).await.is_ok()
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) -> Result<(), std::io::Error> {
    // An error means the handle is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
    Ok(())
}

/// Runs the apalis worker, and starts it again whenever the queue backend fails
/// (Redis restarted, SQLite busy), so that nothing needs a process restart.
async fn consume(
    queue: JobQueue,
    deliverer: Arc<Deliverer>,
    concurrency: usize,
    stopped: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        // A backlog of due jobs too large for apalis' own fetch is moved first.
        if let Err(error) = queue.promote_due().await {
            tracing::debug!(%error, "could not promote due jobs before starting to consume");
        }
        let name = format!("notifier-{}", Uuid::now_v7());
        let stop = until_stopped(stopped.clone());
        let result = match queue.clone() {
            JobQueue::Redis(storage) => {
                WorkerBuilder::new(name.as_str())
                    .backend(storage.poll_with_strategy(Tick::every(JOB_POLL_INTERVAL)))
                    .data(deliverer.clone())
                    .data(queue.clone())
                    .concurrency(concurrency)
                    .build(deliver_job)
                    .run_until(stop)
                    .await
            }
            JobQueue::Sqlite(storage) => {
                WorkerBuilder::new(name.as_str())
                    .backend(storage.poll_with_strategy(Tick::every(JOB_POLL_INTERVAL)))
                    .data(deliverer.clone())
                    .data(queue.clone())
                    .concurrency(concurrency)
                    .build(deliver_job)
                    .run_until(stop)
                    .await
            }
        };
        if let Err(error) = queue.retire_worker(&name).await {
            tracing::debug!(%error, worker = %name, "could not retire the stopped consumer");
        }
        if *stopped.borrow() {
            return;
        }
        match result {
            Ok(()) => delay = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(%error, restart_in = ?delay, "job consumer stopped; restarting")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = until_stopped(stopped.clone()) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Always acknowledges the job: retries are driven by the outbox row (see
/// `delivery`), not by the queue, whose own retry policy we cannot bound.
async fn deliver_job(
    job: DeliverNotification,
    deliverer: Data<Arc<Deliverer>>,
    queue: Data<JobQueue>,
    worker: WorkerContext,
    task_id: TaskId,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!(
        "deliver",
        notification_id = %job.notification_id,
        request_id = job.request_id.as_deref().unwrap_or("-"),
    );
    let outcome = deliverer
        .deliver(job.notification_id)
        .instrument(span.clone())
        .await;
    let label = match outcome {
        Ok(Outcome::Sent) => "sent",
        Ok(Outcome::Skipped) => "skipped",
        Ok(Outcome::RetryScheduled) => "retry_scheduled",
        Ok(Outcome::Failed) => "failed",
        Err(error) => {
            span.in_scope(|| tracing::warn!(%error, "delivery postponed: database error; the sweep will retry"));
            "error"
        }
    };
    metrics::JOBS_PROCESSED.with_label_values(&[label]).inc();
    if let Err(error) = queue.forget(worker.name(), &task_id.to_string()).await {
        span.in_scope(
            || tracing::debug!(%error, "could not remove the finished job from the queue"),
        );
    }
    Ok(())
}

/// Keeps apalis' fetch working on a large backlog (see [`JobQueue::promote_due`]).
async fn promote(queue: JobQueue, stopped: watch::Receiver<bool>) {
    if matches!(queue, JobQueue::Sqlite(_)) {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(JOB_POLL_INTERVAL) => {}
            _ = until_stopped(stopped.clone()) => return,
        }
        match queue.promote_due().await {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "due jobs promoted"),
            // The consumer reports an unreachable Redis; this would only repeat it.
            Err(error) => tracing::debug!(%error, "could not promote due jobs"),
        }
    }
}

async fn sweep(queue: JobQueue, deliverer: Arc<Deliverer>, stopped: watch::Receiver<bool>) {
    let interval = deliverer.policy.sweep_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = until_stopped(stopped.clone()) => return,
        }
        // Jobs waiting in a long queue are not lost; only a (nearly) empty queue
        // suggests that rows pushed long ago lost theirs.
        let queue_drained = queue
            .backlog()
            .await
            .is_ok_and(|waiting| waiting < SWEEP_BATCH);
        match deliverer.sweep(SWEEP_BATCH, queue_drained).await {
            Ok(jobs) if jobs.is_empty() => {}
            Ok(jobs) => {
                tracing::info!(
                    count = jobs.len(),
                    "sweep re-enqueues undelivered notifications"
                );
                if let Err(error) = queue.push(jobs).await {
                    tracing::warn!(%error, "sweep could not enqueue; will try again");
                }
            }
            Err(error) => tracing::warn!(%error, "sweep failed; will try again"),
        }
    }
}
