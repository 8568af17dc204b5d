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

/// "Deliver the webhook message with this id." The message row decides
/// whether it is still due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub message_id: Uuid,
}

impl Job for DeliverWebhook {
    const QUEUE: &'static str = "webhooks";
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

impl EventChange {
    fn field(&self) -> &'static str {
        match self {
            EventChange::Title { .. } => "title",
            EventChange::Venue { .. } => "venue",
            EventChange::Description { .. } => "description",
            EventChange::StartsAt { .. } => "starts_at",
            EventChange::EndsAt { .. } => "ends_at",
        }
    }

    /// This change followed by `later` of the same field: from this one's old
    /// value to `later`'s new one, or `None` when that is no change at all.
    fn then(self, later: EventChange) -> Option<EventChange> {
        use EventChange::*;
        match (self, later) {
            (Title { old, .. }, Title { new, .. }) => (old != new).then_some(Title { old, new }),
            (Venue { old, .. }, Venue { new, .. }) => (old != new).then_some(Venue { old, new }),
            (Description { old, .. }, Description { new, .. }) => {
                (old != new).then_some(Description { old, new })
            }
            (StartsAt { old, .. }, StartsAt { new, .. }) => {
                (old != new).then_some(StartsAt { old, new })
            }
            (EndsAt { old, .. }, EndsAt { new, .. }) => (old != new).then_some(EndsAt { old, new }),
            (_, later) => Some(later),
        }
    }

    /// What `earlier` and then `later` changed, as one list: each field once,
    /// from its first old value to its last new one; a field changed back is
    /// no change.
    pub fn merge(earlier: Vec<EventChange>, later: Vec<EventChange>) -> Vec<EventChange> {
        let mut merged: Vec<EventChange> = Vec::new();
        for change in earlier.into_iter().chain(later) {
            match merged.iter().position(|c| c.field() == change.field()) {
                Some(at) => {
                    let before = merged.remove(at);
                    if let Some(both) = before.then(change) {
                        merged.insert(at, both);
                    }
                }
                None => merged.push(change),
            }
        }
        merged
    }
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

    #[test]
    fn changes_merge_field_by_field_from_first_old_to_last_new() {
        let venue = |old: &str, new: &str| EventChange::Venue {
            old: old.into(),
            new: new.into(),
        };
        let title = |old: &str, new: &str| EventChange::Title {
            old: old.into(),
            new: new.into(),
        };
        assert_eq!(
            EventChange::merge(
                vec![venue("A", "B"), title("x", "y")],
                vec![venue("B", "C")]
            ),
            vec![venue("A", "C"), title("x", "y")]
        );
        assert_eq!(
            EventChange::merge(vec![venue("A", "B")], vec![venue("B", "A")]),
            vec![],
            "changed back is no change"
        );
        assert_eq!(
            EventChange::merge(vec![], vec![title("x", "y")]),
            vec![title("x", "y")]
        );
    }
}
