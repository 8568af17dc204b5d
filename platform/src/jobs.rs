use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every queue's name starts with this (tests give each their own), followed by
/// the job's [`Job::QUEUE`]: `booking:notifications`, `booking:hold-expiry`.
pub const QUEUE_NAMESPACE: &str = "booking";

/// A job and the queue it travels in. Queue names are explicit, so renaming a
/// Rust type never strands the jobs already queued under the old name.
pub trait Job:
    Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + std::fmt::Debug + 'static
{
    const QUEUE: &'static str;
}

/// "Deliver the outbox row with this id." Carries the id only: the worker reads the
/// current state of the row, the event and the booking when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverNotification {
    pub notification_id: Uuid,
    /// The request that caused it, carried for the logs.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl Job for DeliverNotification {
    const QUEUE: &'static str = "notifications";
}

/// "The hold with this id expires at `expires_at`; return its tickets then." The
/// worker ends it only if it is still active and due; the hold row decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireHold {
    pub hold_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl Job for ExpireHold {
    const QUEUE: &'static str = "hold-expiry";
}

/// One changed property of an event, old and new values as data, as the api
/// stores them in `notifications.changes` for an `event_updated` notification;
/// the worker puts them into words when it writes the email. Stored as
/// `{"field": "venue", "old": …, "new": …}` (times in RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum EventChange {
    Title {
        old: String,
        new: String,
    },
    Venue {
        old: String,
        new: String,
    },
    /// `None`: no description.
    Description {
        #[serde(default, deserialize_with = "empty_as_none")]
        old: Option<String>,
        #[serde(default, deserialize_with = "empty_as_none")]
        new: Option<String>,
    },
    StartsAt {
        old: DateTime<Utc>,
        new: DateTime<Utc>,
    },
    EndsAt {
        old: DateTime<Utc>,
        new: DateTime<Utc>,
    },
}

/// Rows written before descriptions were optional here say "" for none.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(deserializer)?;
    Ok(value.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_back_as_stored_including_rows_written_before_they_were_typed() {
        let stored = r#"[
            {"field": "venue", "old": "Hall A", "new": "Grand Hall"},
            {"field": "starts_at", "old": "2030-05-01T19:00:00+00:00", "new": "2030-05-01T20:00:00+00:00"},
            {"field": "description", "old": "", "new": "Talks"}
        ]"#;
        let changes: Vec<EventChange> = serde_json::from_str(stored).unwrap();
        assert_eq!(
            changes[0],
            EventChange::Venue {
                old: "Hall A".into(),
                new: "Grand Hall".into()
            }
        );
        assert!(matches!(changes[1], EventChange::StartsAt { .. }));
        assert_eq!(
            changes[2],
            EventChange::Description {
                old: None,
                new: Some("Talks".into())
            }
        );
        let again: Vec<EventChange> =
            serde_json::from_value(serde_json::to_value(&changes).unwrap()).unwrap();
        assert_eq!(again, changes);
    }
}
