//! What a use-case does once its transaction has committed, written once for
//! every path: push the hold timers, queue the waitlist offers' emails.
//! (Notices' jobs: `outbox::enqueue`; the change itself: `announce`.)

use chrono::{DateTime, Utc};
use entity::prelude::*;
use inventory::waitlist::Offer;
use platform::Queues;
use uuid::Uuid;

use super::{Services, outbox};

/// The hold's timer: a job due when it expires. Should the push fail, the
/// worker's sweep expires the hold a little later instead.
pub fn schedule_expiry(services: &Services, hold: &HoldModel) {
    time_holds(&services.queues, vec![(hold.id, hold.expires_at)]);
}

/// [`schedule_expiry`] for several holds: `(id, expires_at)` each.
pub fn time_holds(queues: &Queues, holds: Vec<(Uuid, DateTime<Utc>)>) {
    if holds.is_empty() {
        return;
    }
    let queues = queues.clone();
    tokio::spawn(async move {
        for (hold_id, expires_at) in holds {
            if let Err(error) = queues.time_hold(hold_id, expires_at).await {
                tracing::warn!(%error, "could not schedule a hold's expiry; the sweep will expire it");
            }
        }
    });
}

/// After the commit that made them: each offer's email is queued and its
/// hold's timer set. The caller announces the change it made (offers are part
/// of it).
pub fn offered(services: &Services, offers: Vec<Offer>) {
    for offer in &offers {
        schedule_expiry(services, &offer.hold);
    }
    outbox::enqueue(services, offers.iter().map(|o| o.notification_id).collect());
}
