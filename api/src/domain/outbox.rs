//! Writing notifications: rows go into `notifications` inside the caller's
//! transaction; their jobs are pushed only after it commits. If the push is lost
//! (Redis down), the worker's sweep finds the rows and pushes them again.

use platform::{DeliverNotification, Queues};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

pub use inventory::outbox::Notice;

use super::Services;

/// Writes the notices in the caller's transaction, marked with the request
/// that caused them; returns their ids for [`enqueue`].
pub async fn write<C: ConnectionTrait>(
    db: &C,
    services: &Services,
    notices: Vec<Notice>,
) -> Result<Vec<Uuid>, DbErr> {
    inventory::outbox::write(db, services.request_id.clone(), notices).await
}

/// Pushes the jobs in the background: the change is committed whatever the queue
/// says, and the response should not wait on Redis.
pub fn enqueue(services: &Services, ids: Vec<Uuid>) {
    let jobs = ids
        .into_iter()
        .map(|notification_id| DeliverNotification {
            notification_id,
            request_id: services.request_id.clone(),
        })
        .collect();
    push(&services.queues, jobs);
}

/// [`enqueue`], for jobs already made (each with its own request id).
pub fn push(queues: &Queues, jobs: Vec<DeliverNotification>) {
    if jobs.is_empty() {
        return;
    }
    let count = jobs.len();
    let queue = queues.notifications.clone();
    tokio::spawn(async move {
        if let Err(error) = queue.push(jobs).await {
            tracing::warn!(%error, count, "could not enqueue notifications; the sweep will retry");
        }
    });
}
