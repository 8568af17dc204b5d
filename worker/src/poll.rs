//! Waking an idle consumer on a timer.
//!
//! apalis parks a consumer whose fetch came back empty until something wakes it.
//! Its own `IntervalStrategy` (apalis-core 1.0) swaps in a fresh timer when the
//! old one has fired *without polling it*, so no wake-up is registered; if a fetch
//! took longer than the interval (SQLite busy under write load) the consumer then
//! sleeps until its 30 s heartbeat. This timer is always left armed.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use apalis::prelude::{PollSnapshot, PollStrategy};
use tokio::time::{Instant, Sleep};

pub struct Tick {
    every: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Tick {
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            timer: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl PollStrategy for Tick {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = false;
        // Re-arm until the timer is pending, which registers this task's waker.
        while self.timer.as_mut().poll(cx).is_ready() {
            fired = true;
            let next = Instant::now() + self.every;
            self.timer.as_mut().reset(next);
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}
