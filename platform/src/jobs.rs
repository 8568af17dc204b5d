use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The one queue this system uses. An explicit name, so renaming a Rust type never
/// strands the jobs already queued under the old name.
pub const NOTIFICATIONS_QUEUE: &str = "booking:notifications";

/// "Deliver the outbox row with this id." Carries the id only: the worker reads the
/// current state of the row, the event and the booking when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverNotification {
    pub notification_id: Uuid,
    /// The request that caused it, carried for the logs.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// One changed field of an event, as the api stores it in `notifications.changes`
/// for an `event_updated` notification (old and new values as people read them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}
