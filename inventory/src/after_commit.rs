//! What has to happen once a transaction that moved tickets has committed, as
//! one value that the api and the worker publish the same way: the
//! notifications' jobs pushed, the holds' expiry timers set, and the changed
//! events announced on the availability feed. A push that fails is made up for
//! by the worker's sweeps (unsent notifications, overdue holds), so a failure
//! here is logged, never returned: the change is committed whatever Redis says.

use chrono::{DateTime, Utc};
use entity::prelude::HoldModel;
use platform::{ChangeFeed, Changed, DeliverNotification, Queues};
use uuid::Uuid;

use crate::{Ended, waitlist::Offer};

#[derive(Debug, Default)]
#[must_use = "nothing is pushed or announced until it is published"]
pub struct AfterCommit {
    /// The request that caused it, recorded on its notifications' jobs.
    request_id: Option<String>,
    pub jobs: Vec<DeliverNotification>,
    /// `(hold id, expires_at)`: each hold's timer.
    pub timers: Vec<(Uuid, DateTime<Utc>)>,
    pub changed: Vec<Changed>,
}

impl AfterCommit {
    /// What a request (or, with `None`, the worker) leaves to do.
    pub fn caused_by(request_id: Option<String>) -> Self {
        Self {
            request_id,
            ..Self::default()
        }
    }

    /// An event changed (on a seated event, these seats).
    pub fn changed(mut self, event_id: Uuid, seat_ids: Vec<Uuid>) -> Self {
        self.changed.push(Changed { event_id, seat_ids });
        self
    }

    /// Notifications to send.
    pub fn notify(mut self, ids: Vec<Uuid>) -> Self {
        for id in ids {
            let request_id = self.request_id.clone();
            self = self.notify_for(id, request_id);
        }
        self
    }

    /// A notification caused by another request than the rest (one of a
    /// batch's).
    pub fn notify_for(mut self, notification_id: Uuid, request_id: Option<String>) -> Self {
        self.jobs.push(DeliverNotification {
            notification_id,
            request_id,
        });
        self
    }

    /// A new hold, to expire on time.
    pub fn held(mut self, hold: &HoldModel) -> Self {
        self.timers.push((hold.id, hold.expires_at));
        self
    }

    /// Waitlist offers: each one's email and its hold's timer. (Part of a
    /// change the caller announces.)
    pub fn offered(mut self, offers: &[Offer]) -> Self {
        for offer in offers {
            self = self.held(&offer.hold);
        }
        self.notify(offers.iter().map(|o| o.notification_id).collect())
    }

    /// A hold that ended: its event changed (and its seats), and its tickets
    /// may have gone to the waitlist.
    pub fn ended(self, ended: &Ended) -> Self {
        self.changed(ended.hold.event_id, ended.seat_ids.clone())
            .offered(&ended.offers)
    }

    /// The events this names as changed.
    pub fn changed_events(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.changed.iter().map(|change| change.event_id)
    }

    pub async fn publish(self, queues: &Queues, feed: &ChangeFeed) {
        for change in self.changed {
            feed.publish(change).await;
        }
        let count = self.jobs.len();
        if count > 0
            && let Err(error) = queues.notifications.push(self.jobs).await
        {
            tracing::warn!(%error, count, "could not enqueue notifications; the sweep will retry");
        }
        for (hold_id, expires_at) in self.timers {
            if let Err(error) = queues.time_hold(hold_id, expires_at).await {
                tracing::warn!(%error, "could not schedule a hold's expiry; the sweep will expire it");
            }
        }
    }
}
