//! Everything that happens after a request commits: the job queue both sides share,
//! the mailer, and the worker that turns outbox rows into sent email.
//!
//! Delivery model: the `notifications` table (the outbox) is the source of truth.
//! A queued job only carries a notification id and says "look at this row now".
//! A worker claims the row with a conditional update before sending, so a job that
//! is delivered twice sends once; a periodic sweep re-enqueues rows whose job was
//! lost (Redis down or flushed) or whose retry is due.

pub mod db;
pub mod delivery;
pub mod env;
pub mod health;
pub mod jobs;
pub mod logging;
pub mod mailer;
pub mod metrics;
mod poll;
pub mod queue;
pub mod runner;
pub mod settings;
mod templates;

pub use jobs::{DeliverNotification, FieldChange, NOTIFICATIONS_QUEUE};
pub use queue::JobQueue;
pub use runner::{Worker, WorkerHandle};
pub use settings::{DeliveryPolicy, MailSettings, QueueBackend, WorkerSettings};
