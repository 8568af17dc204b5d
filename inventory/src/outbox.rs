//! Notification rows, written in the caller's transaction (the outbox): by the
//! api for what a request changed, and here for waitlist offers, which the
//! worker makes too when a hold expires. The job that says "send it" is pushed
//! after commit by whoever committed.

use entity::prelude::*;
use platform::{EventChange, db::now};
use sea_orm::{ConnectionTrait, DbErr, Set};
use uuid::Uuid;

pub struct Notice {
    pub kind: NotificationKind,
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub booking_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub changes: Option<Vec<EventChange>>,
    pub refund_id: Option<Uuid>,
    pub webhook_endpoint_id: Option<Uuid>,
}

impl Notice {
    /// A booking's confirmation email.
    pub fn confirmation(booking: &BookingModel) -> Self {
        Self {
            kind: NotificationKind::BookingConfirmed,
            user_id: booking.user_id,
            event_id: booking.event_id,
            booking_id: Some(booking.id),
            hold_id: None,
            changes: None,
            refund_id: None,
            webhook_endpoint_id: None,
        }
    }

    pub fn row(self, id: Uuid, request_id: Option<String>) -> NotificationActiveModel {
        let now = now();
        NotificationActiveModel {
            id: Set(id),
            kind: Set(self.kind),
            user_id: Set(self.user_id),
            event_id: Set(self.event_id),
            booking_id: Set(self.booking_id),
            hold_id: Set(self.hold_id),
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
            refund_id: Set(self.refund_id),
            webhook_endpoint_id: Set(self.webhook_endpoint_id),
        }
    }
}

/// Inserts the notices (a few hundred per statement) and
/// returns their ids, for the caller to push once committed.
pub async fn write<C: ConnectionTrait>(
    db: &C,
    request_id: Option<String>,
    notices: Vec<Notice>,
) -> Result<Vec<Uuid>, DbErr> {
    let each = notices
        .into_iter()
        .map(|notice| (notice, request_id.clone()))
        .collect();
    write_each(db, each).await
}

/// [`write`], for notices due only at `due_at`: no job is pushed for them; the
/// worker's sweep sends them once due.
pub async fn write_due<C: ConnectionTrait>(
    db: &C,
    request_id: Option<String>,
    notices: Vec<Notice>,
    due_at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    let mut ids = Vec::with_capacity(notices.len());
    let rows: Vec<_> = notices
        .into_iter()
        .map(|notice| {
            let id = Uuid::now_v7();
            ids.push(id);
            NotificationActiveModel {
                next_attempt_at: Set(due_at),
                enqueued_at: Set(None),
                ..notice.row(id, request_id.clone())
            }
        })
        .collect();
    platform::db::insert_all(db, rows).await?;
    Ok(ids)
}

/// [`write`], each notice marked with the request that caused it.
pub async fn write_each<C: ConnectionTrait>(
    db: &C,
    notices: Vec<(Notice, Option<String>)>,
) -> Result<Vec<Uuid>, DbErr> {
    let mut ids = Vec::with_capacity(notices.len());
    let rows: Vec<_> = notices
        .into_iter()
        .map(|(notice, request_id)| {
            let id = Uuid::now_v7();
            ids.push(id);
            notice.row(id, request_id)
        })
        .collect();
    platform::db::insert_all(db, rows).await?;
    Ok(ids)
}
