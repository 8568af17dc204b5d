//! What a use-case does once its transaction has committed: one
//! [`AfterCommit`] value (notification jobs, hold timers, changed events),
//! published the same way by every path here and by the worker.

pub use inventory::AfterCommit;

use super::Services;

impl Services {
    /// What this request leaves to do after its commit; add to it, then
    /// [`publish`](Services::publish) it.
    pub fn after_commit(&self) -> AfterCommit {
        AfterCommit::caused_by(self.request_id.clone())
    }

    /// In the background: the response does not wait on Redis, and what this
    /// process knew of each changed event is forgotten at once.
    pub fn publish(&self, after: AfterCommit) {
        self.box_office.publish(after);
    }
}
