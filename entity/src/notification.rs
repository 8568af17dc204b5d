//! The notification outbox. A row is written in the same transaction as the change
//! that causes it; the job queue only carries its id. The row, not the queue, is the
//! source of truth for whether an email still has to go out.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: NotificationKind,
    /// The customer who receives the email.
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub booking_id: Option<Uuid>,
    /// For `waitlist_offered`: the hold made for the customer.
    pub hold_id: Option<Uuid>,
    /// For `event_updated`: the list of changed fields with old and new values.
    pub changes: Option<Json>,
    pub status: NotificationStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Earliest time the next delivery attempt may start (backoff after a failure).
    pub next_attempt_at: DateTimeUtc,
    /// When a job for this row was last pushed to the queue; the sweep re-enqueues
    /// rows whose job was evidently lost.
    pub enqueued_at: Option<DateTimeUtc>,
    /// While `sending`: the lease of the worker that claimed it.
    pub locked_until: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// The `X-Request-Id` of the request that caused it, for following one booking
    /// from the HTTP call to the sent email in the logs.
    pub request_id: Option<String>,
    /// For `payment_refunded`: the refund carried out.
    pub refund_id: Option<Uuid>,
    /// For `webhook_disabled`: the endpoint switched off.
    pub webhook_endpoint_id: Option<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    #[sea_orm(string_value = "booking_confirmed")]
    BookingConfirmed,
    #[sea_orm(string_value = "booking_cancelled")]
    BookingCancelled,
    #[sea_orm(string_value = "event_updated")]
    EventUpdated,
    #[sea_orm(string_value = "event_cancelled")]
    EventCancelled,
    #[sea_orm(string_value = "waitlist_offered")]
    WaitlistOffered,
    #[sea_orm(string_value = "payment_refunded")]
    PaymentRefunded,
    /// To an organizer: a webhook endpoint failing for days was switched off.
    #[sea_orm(string_value = "webhook_disabled")]
    WebhookDisabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "sending")]
    Sending,
    #[sea_orm(string_value = "sent")]
    Sent,
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
