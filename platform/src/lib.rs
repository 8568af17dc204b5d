//! What the api and the worker share, and nothing that belongs to either: the job
//! contract and its queue, database connections, settings from the environment,
//! logging, the metrics registry, the small health listener, and gathering
//! concurrent calls into rounds.
//!
//! Delivery model: the `notifications` table (the outbox) is the source of truth.
//! A queued job only carries a notification id and says "look at this row now";
//! the worker claims the row before sending, so a job delivered twice sends once,
//! and a periodic sweep re-enqueues rows whose job was lost.

pub mod db;
pub mod email;
pub mod env;
pub mod gather;
pub mod health;
pub mod jobs;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod queue;
pub mod settings;

pub use jobs::{
    DeliverNotification, DeliverWebhook, EventChange, ExpireHold, Job, QUEUE_NAMESPACE,
};
pub use live::{ChangeFeed, Changed};
pub use queue::{JobQueue, Queues};
pub use settings::{QueueBackend, Redacted, StorageSettings};
