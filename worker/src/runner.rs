//! The worker: consumes delivery and hold-expiry jobs and runs their sweeps, until
//! told to stop.
//! Runs as its own process (`worker` binary) or inside the api in embedded mode.

use std::{sync::Arc, time::Duration};

use apalis::prelude::*;
use sea_orm::DatabaseConnection;
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use tracing::Instrument;

use platform::{
    ChangeFeed, DeliverNotification, DeliverWebhook, ExpireHold, Job, JobQueue, Queues,
    health::MailHealth,
};

use crate::{
    delivery::{Deliverer, Outcome},
    holds::HoldExpirer,
    mailer::{MailError, Mailer},
    metrics,
    payments::Payments,
    poll::Tick,
    settings::WorkerSettings,
    webhooks::WebhookDeliverer,
};

/// An idle consumer looks for new jobs this often (see `poll`).
const JOB_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Rows pushed per sweep round; the next round picks up the rest.
const SWEEP_BATCH: u64 = 500;

pub struct Worker {
    deliverer: Arc<Deliverer>,
    webhooks: Arc<WebhookDeliverer>,
    payments: Arc<Payments>,
    mail_health: Arc<MailHealth>,
    expirer: Arc<HoldExpirer>,
    queues: Queues,
    concurrency: usize,
}

/// A running worker. Dropping it does not stop it; call [`WorkerHandle::shutdown`].
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pub mail_health: Arc<MailHealth>,
}

impl Worker {
    pub fn new(
        settings: &WorkerSettings,
        db: DatabaseConnection,
        queues: Queues,
        live: ChangeFeed,
        tickets: Arc<ticket_code::Signer>,
    ) -> Result<Self, WorkerError> {
        let mailer = Mailer::from_settings(&settings.mail, settings.concurrency)?;
        tracing::info!(mailer = mailer.describe(), queues = ?queues, concurrency = settings.concurrency, "worker configured");
        Ok(Self {
            payments: Arc::new(Payments::new(
                db.clone(),
                settings.payments.clone(),
                queues.clone(),
                live.clone(),
            )?),
            mail_health: mailer.health(),
            expirer: Arc::new(HoldExpirer {
                db: db.clone(),
                live,
                queues: queues.clone(),
            }),
            webhooks: Arc::new(WebhookDeliverer::new(
                db.clone(),
                queues.notifications.clone(),
                settings.webhooks.clone(),
            )?),
            deliverer: Arc::new(Deliverer::new(
                db,
                mailer,
                settings.mail.clone(),
                settings.delivery.clone(),
                tickets,
            )),
            queues,
            concurrency: settings.concurrency,
        })
    }

    /// Whether this worker's email sends get through (its `/health`).
    pub fn mail_health(&self) -> Arc<MailHealth> {
        self.mail_health.clone()
    }

    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let Queues {
            notifications,
            hold_expiry,
            webhooks,
        } = self.queues;
        let tasks = vec![
            tokio::spawn(consume(
                notifications.clone(),
                self.deliverer.clone(),
                self.concurrency,
                stopped.clone(),
            )),
            // Expiring a hold is a few short statements; a handful at once keep
            // up with any on-sale, and the sweep backs them up.
            tokio::spawn(consume(
                hold_expiry.clone(),
                self.expirer.clone(),
                self.concurrency.min(8),
                stopped.clone(),
            )),
            tokio::spawn(promote(notifications.clone(), stopped.clone())),
            tokio::spawn(promote(hold_expiry, stopped.clone())),
            // Webhooks have their own consumer and turns: a slow endpoint
            // cannot hold up email.
            tokio::spawn(consume(
                webhooks.clone(),
                self.webhooks.clone(),
                self.webhooks.policy.concurrency,
                stopped.clone(),
            )),
            tokio::spawn(promote(webhooks.clone(), stopped.clone())),
            tokio::spawn(sweep_webhooks(webhooks, self.webhooks, stopped.clone())),
            tokio::spawn(sweep(notifications, self.deliverer, stopped.clone())),
            tokio::spawn(sweep_holds(self.expirer, stopped.clone())),
            tokio::spawn(keep_payments(self.payments, stopped)),
        ];
        WorkerHandle {
            stop,
            tasks,
            mail_health: self.mail_health,
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

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("webhook client: {0}")]
    Webhooks(#[from] reqwest::Error),
    #[error("mailer: {0}")]
    Mail(#[from] MailError),
    #[error("payments: {0}")]
    Payments(#[from] stripe_client::StripeError),
}

/// How often refunds due and payments to reconcile are looked for.
const PAYMENTS_INTERVAL: Duration = Duration::from_secs(1);

/// Carries out due refunds every second, and reconciles stale payments.
async fn keep_payments(payments: Arc<Payments>, stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PAYMENTS_INTERVAL) => {}
            _ = until_stopped(stopped.clone()) => return,
        }
        if let Err(error) = payments.refund_due().await {
            tracing::warn!(%error, "refunds postponed: database error; will try again");
        }
        if let Err(error) = payments.reconcile().await {
            tracing::warn!(%error, "reconciliation postponed: database error; will try again");
        }
    }
}

/// What a consumer does with each job of its queue. It always acknowledges the
/// job: retries are driven by the database rows (the outbox, the hold), not by
/// the queue, whose own retry policy we cannot bound.
trait Handler: Send + Sync + 'static {
    type Job: Job;
    /// Does the job; returns the outcome, as a metrics label.
    fn handle(&self, job: Self::Job) -> impl Future<Output = &'static str> + Send;
}

impl Handler for Deliverer {
    type Job = DeliverNotification;

    async fn handle(&self, job: DeliverNotification) -> &'static str {
        let span = tracing::info_span!(
            "deliver",
            notification_id = %job.notification_id,
            request_id = job.request_id.as_deref().unwrap_or("-"),
        );
        let outcome = self
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
        label
    }
}

impl Handler for WebhookDeliverer {
    type Job = DeliverWebhook;

    async fn handle(&self, job: DeliverWebhook) -> &'static str {
        let label = match self.deliver(job.message_id).await {
            Ok(outcome) => outcome.label(),
            Err(error) => {
                tracing::warn!(message_id = %job.message_id, %error, "webhook delivery postponed: database error; the sweep will retry");
                "error"
            }
        };
        metrics::WEBHOOK_DELIVERIES
            .with_label_values(&[label])
            .inc();
        label
    }
}

/// Queues due webhook messages (new ones and retries) several times a second.
async fn sweep_webhooks(
    queue: JobQueue<DeliverWebhook>,
    deliverer: Arc<WebhookDeliverer>,
    stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(deliverer.policy.sweep_interval) => {}
            _ = until_stopped(stopped.clone()) => return,
        }
        // Only a (nearly) empty queue suggests that a message queued long
        // ago lost its job.
        let queue_drained = queue
            .backlog()
            .await
            .is_ok_and(|waiting| waiting < SWEEP_BATCH);
        let lost_after = queue_drained.then_some(deliverer.policy.lease * 2);
        match deliverer.sweep(SWEEP_BATCH, lost_after).await {
            Ok(jobs) if jobs.is_empty() => {}
            Ok(jobs) => {
                if let Err(error) = queue.push(jobs).await {
                    tracing::warn!(%error, "webhook sweep could not enqueue; will try again");
                }
            }
            Err(error) => tracing::warn!(%error, "webhook sweep failed; will try again"),
        }
    }
}

impl Handler for HoldExpirer {
    type Job = ExpireHold;

    async fn handle(&self, job: ExpireHold) -> &'static str {
        match self.expire(&job).await {
            Ok(true) => {
                tracing::info!(hold_id = %job.hold_id, "hold expired; its tickets are back on sale");
                "expired"
            }
            Ok(false) => "skipped",
            Err(error) => {
                tracing::warn!(hold_id = %job.hold_id, %error, "hold expiry postponed: database error; the sweep will retry");
                "error"
            }
        }
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) -> Result<(), std::io::Error> {
    // An error means the handle is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
    Ok(())
}

/// Runs the apalis worker, and starts it again whenever the queue backend fails
/// (Redis restarted, SQLite busy), so that nothing needs a process restart.
async fn consume<H: Handler>(
    queue: JobQueue<H::Job>,
    handler: Arc<H>,
    concurrency: usize,
    stopped: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        // A backlog of due jobs too large for apalis' own fetch is moved first.
        if let Err(error) = queue.promote_due().await {
            tracing::debug!(%error, "could not promote due jobs before starting to consume");
        }
        let name = format!("{}-{}", H::Job::QUEUE, Uuid::now_v7());
        let stop = until_stopped(stopped.clone());
        let result = match queue.clone() {
            JobQueue::Redis(storage) => {
                WorkerBuilder::new(name.as_str())
                    .backend(storage.poll_with_strategy(Tick::every(JOB_POLL_INTERVAL)))
                    .data(handler.clone())
                    .data(queue.clone())
                    .concurrency(concurrency)
                    .build(run_job::<H>)
                    .run_until(stop)
                    .await
            }
            JobQueue::Sqlite(storage) => {
                WorkerBuilder::new(name.as_str())
                    .backend(storage.poll_with_strategy(Tick::every(JOB_POLL_INTERVAL)))
                    .data(handler.clone())
                    .data(queue.clone())
                    .concurrency(concurrency)
                    .build(run_job::<H>)
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

async fn run_job<H: Handler>(
    job: H::Job,
    handler: Data<Arc<H>>,
    queue: Data<JobQueue<H::Job>>,
    worker: WorkerContext,
    task_id: TaskId,
) -> Result<(), BoxDynError> {
    handler.handle(job).await;
    if let Err(error) = queue.forget(worker.name(), &task_id.to_string()).await {
        tracing::debug!(%error, queue = H::Job::QUEUE, "could not remove the finished job from the queue");
    }
    Ok(())
}

/// Keeps apalis' fetch working on a large backlog (see [`JobQueue::promote_due`]).
async fn promote<J: Job>(queue: JobQueue<J>, stopped: watch::Receiver<bool>) {
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

async fn sweep_holds(expirer: Arc<HoldExpirer>, stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::holds::SWEEP_INTERVAL) => {}
            _ = until_stopped(stopped.clone()) => return,
        }
        match expirer.sweep().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "sweep expired holds whose timers were late"),
            Err(error) => tracing::warn!(%error, "hold sweep failed; will try again"),
        }
    }
}
