//! Hold expiry. Each hold has a timer job, due when it expires; a sweep ends
//! what the timers missed (a job lost with Redis, or due while every worker was
//! down), so a hold returns its tickets within a few seconds of expiring. Both
//! go through `inventory::end_hold`, which returns the tickets exactly once.

use std::time::Duration;

use chrono::Utc;
use platform::{ChangeFeed, ExpireHold, Queues};
use sea_orm::{DatabaseConnection, DbErr};

use crate::metrics;

/// A timer job may run up to this much early (its run-at is in whole seconds on
/// a clock that is not ours); it waits out the rest.
const MAX_EARLY: Duration = Duration::from_secs(2);

/// The sweep leaves holds this long past expiry to their timers.
pub const SWEEP_GRACE: Duration = Duration::from_secs(2);
/// How often the sweep looks.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Holds expired per sweep round; the next round takes the rest.
const SWEEP_BATCH: u64 = 500;

pub struct HoldExpirer {
    pub db: DatabaseConnection,
    /// Told of each expiry, for the api's live subscribers.
    pub live: ChangeFeed,
    /// For the waitlist offers an expiry makes: their emails and their timers.
    pub queues: Queues,
}

impl HoldExpirer {
    /// Ends the hold if it is still active. `true` if this call expired it.
    pub async fn expire(&self, job: &ExpireHold) -> Result<bool, DbErr> {
        let early = (job.expires_at - Utc::now()).to_std().unwrap_or_default();
        if early > MAX_EARLY {
            // Not ours to decide yet; the sweep will find it when it is due.
            return Ok(false);
        }
        tokio::time::sleep(early).await;
        let ended = inventory::end_hold(
            &self.db,
            job.hold_id,
            inventory::Ending::Expired,
            Utc::now(),
        )
        .await?;
        let Some(ended) = ended else {
            return Ok(false);
        };
        metrics::HOLDS_EXPIRED.with_label_values(&["timer"]).inc();
        self.announce(ended).await;
        Ok(true)
    }

    /// After the commit: the change announced, and the tickets' waitlist offers
    /// emailed and timed.
    async fn announce(&self, ended: inventory::Ended) {
        inventory::AfterCommit::default()
            .ended(&ended)
            .publish(&self.queues, &self.live)
            .await;
    }

    /// One sweep round: expires holds whose timers are late, a batch at a time
    /// until none are left (a backlog builds up while every worker is down).
    pub async fn sweep(&self) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let due_by = Utc::now()
                - chrono::Duration::from_std(SWEEP_GRACE)
                    .unwrap_or_else(|_| chrono::Duration::zero());
            let expired = inventory::expire_due(&self.db, due_by, SWEEP_BATCH).await?;
            metrics::HOLDS_EXPIRED
                .with_label_values(&["sweep"])
                .inc_by(expired.len() as u64);
            let count = expired.len();
            total += count;
            for ended in expired {
                self.announce(ended).await;
            }
            if (count as u64) < SWEEP_BATCH {
                return Ok(total);
            }
        }
    }
}
