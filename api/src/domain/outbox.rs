//! Writing notifications: rows go into `notifications` inside the caller's
//! transaction; their jobs are pushed only after it commits (`after_commit`). If the push is lost
//! (Redis down), the worker's sweep finds the rows and pushes them again.

use entity::prelude::NotificationKind;
use platform::EventChange;
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

/// [`write`], for notices due only at `due_at` (no job to push: the worker's
/// sweep sends them once due).
pub async fn write_due<C: ConnectionTrait>(
    db: &C,
    services: &Services,
    notices: Vec<Notice>,
    due_at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    inventory::outbox::write_due(db, services.request_id.clone(), notices, due_at).await
}

/// One notice per customer about the event as a whole.
pub fn to_each(
    customers: impl IntoIterator<Item = Uuid>,
    kind: NotificationKind,
    event_id: Uuid,
    changes: Option<Vec<EventChange>>,
) -> Vec<Notice> {
    customers
        .into_iter()
        .map(|user_id| Notice {
            kind,
            user_id,
            event_id,
            booking_id: None,
            hold_id: None,
            changes: changes.clone(),
            refund_id: None,
            webhook_endpoint_id: None,
        })
        .collect()
}
