//! Writing notifications: rows go into `notifications` inside the caller's
//! transaction; their jobs are pushed only after it commits. If the push is lost
//! (Redis down), the worker's sweep finds the rows and pushes them again.

use entity::prelude::*;
use platform::{DeliverNotification, EventChange};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use uuid::Uuid;

use super::{Services, now};

pub struct Notice {
    pub kind: NotificationKind,
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub booking_id: Option<Uuid>,
    pub changes: Option<Vec<EventChange>>,
}

impl Notice {
    pub fn row(self, id: Uuid, request_id: Option<String>) -> NotificationActiveModel {
        let now = now();
        NotificationActiveModel {
            id: Set(id),
            kind: Set(self.kind),
            user_id: Set(self.user_id),
            event_id: Set(self.event_id),
            booking_id: Set(self.booking_id),
            changes: Set(self
                .changes
                .map(|c| serde_json::to_value(c).unwrap_or_default())),
            status: Set(NotificationStatus::Pending),
            attempts: Set(0),
            last_error: Set(None),
            next_attempt_at: Set(now),
            // Optimistic: the push follows the commit. Should it be lost, the sweep
            // treats the row as un-enqueued once this is old enough.
            enqueued_at: Set(Some(now)),
            locked_until: Set(None),
            sent_at: Set(None),
            created_at: Set(now),
            request_id: Set(request_id),
        }
    }
}

/// Inserts the notices (in chunks, to stay under bind-parameter limits) and returns
/// their ids for [`enqueue`].
pub async fn write<C: ConnectionTrait>(
    db: &C,
    services: &Services,
    notices: Vec<Notice>,
) -> Result<Vec<Uuid>, DbErr> {
    let mut ids = Vec::with_capacity(notices.len());
    let rows: Vec<_> = notices
        .into_iter()
        .map(|notice| {
            let id = Uuid::now_v7();
            ids.push(id);
            notice.row(id, services.request_id.clone())
        })
        .collect();
    for chunk in rows.chunks(500) {
        Notification::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(ids)
}

/// Pushes the jobs in the background: the change is committed whatever the queue
/// says, and the response should not wait on Redis.
pub fn enqueue(services: &Services, ids: Vec<Uuid>) {
    if ids.is_empty() {
        return;
    }
    let count = ids.len();
    let jobs = ids
        .into_iter()
        .map(|notification_id| DeliverNotification {
            notification_id,
            request_id: services.request_id.clone(),
        })
        .collect();
    let queue = services.queues.notifications.clone();
    tokio::spawn(async move {
        if let Err(error) = queue.push(jobs).await {
            tracing::warn!(%error, count, "could not enqueue notifications; the sweep will retry");
        }
    });
}
