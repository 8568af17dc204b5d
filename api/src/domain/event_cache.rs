//! What this process knows of each event: the event as last read, trusted for
//! [`KNOWN_FOR`] unless a change is heard first (`BoxOffice` forgets an event
//! when it changes one, and when the availability feed says another process
//! did). Bounded: at most [`CAPACITY`] events, none kept past [`KEPT_FOR`].

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::queries::EventDetails;

/// How long a reading of an event is trusted without hearing from the feed:
/// the bound on staleness should a message be lost.
pub const KNOWN_FOR: Duration = Duration::from_secs(1);
/// How long a reading is kept at all. Past [`KNOWN_FOR`] it only tells that
/// the event is worth refreshing with a plain read (not the batch's locking
/// one); an event nobody asked about for this long is forgotten.
pub const KEPT_FOR: Duration = Duration::from_secs(30);
/// The most events remembered. A full cache first drops what is past
/// [`KNOWN_FOR`]; if that frees too little, it starts afresh.
pub const CAPACITY: usize = 10_000;
/// Change counters, shared by events whose ids hash alike (a shared counter
/// only makes a reading be thrown away more often).
const STRIPES: usize = 1024;

/// A change count read before looking at the database; a reading is only
/// remembered if no change was heard since.
#[derive(Debug, Clone, Copy)]
pub struct Seen(u64);

/// What this process knows of an event.
pub enum Recall {
    Fresh(Box<EventDetails>),
    /// Read over [`KNOWN_FOR`] ago, with no change heard since.
    Stale,
    /// Never read, or changed since, or forgotten.
    Unknown,
}

struct Known {
    event: EventDetails,
    at: Instant,
}

pub struct EventCache {
    known: Mutex<HashMap<Uuid, Known>>,
    changes: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl Default for EventCache {
    fn default() -> Self {
        Self {
            known: Mutex::new(HashMap::new()),
            changes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl EventCache {
    pub fn recall(&self, event_id: Uuid) -> Recall {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(&event_id) {
            Some(known) if known.at.elapsed() < KNOWN_FOR => {
                Recall::Fresh(Box::new(known.event.clone()))
            }
            Some(known) if known.at.elapsed() < KEPT_FOR => Recall::Stale,
            _ => Recall::Unknown,
        }
    }

    /// The change count for an event, to take before reading it.
    pub fn seen(&self, event_id: Uuid) -> Seen {
        Seen(self.stripe(event_id).load(Ordering::Acquire))
    }

    /// Remembers the event, read after `seen` was taken; unless a change has
    /// been heard since, which may have come after the read.
    pub fn remember(&self, event: EventDetails, seen: Seen) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let id = event.event.id;
        if self.seen(id).0 != seen.0 {
            return;
        }
        if known.len() >= CAPACITY && !known.contains_key(&id) {
            known.retain(|_, known| known.at.elapsed() < KNOWN_FOR);
            if known.len() >= CAPACITY / 2 {
                known.clear();
            }
        }
        known.insert(
            id,
            Known {
                event,
                at: Instant::now(),
            },
        );
    }

    /// Forgets the event (`None`: every event), here and now.
    pub fn forget(&self, event_id: Option<Uuid>) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match event_id {
            Some(event_id) => {
                self.stripe(event_id).fetch_add(1, Ordering::AcqRel);
                known.remove(&event_id);
            }
            None => {
                for stripe in &self.changes {
                    stripe.fetch_add(1, Ordering::AcqRel);
                }
                known.clear();
            }
        }
    }

    /// Drops every reading older than [`KEPT_FOR`]; run now and then.
    pub fn drop_old(&self) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|_, known| known.at.elapsed() < KEPT_FOR);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn stripe(&self, event_id: Uuid) -> &AtomicU64 {
        &self.changes[self.hasher.hash_one(event_id) as usize % STRIPES]
    }
}

#[cfg(test)]
mod tests {
    use entity::prelude::*;

    use super::*;

    fn event() -> EventDetails {
        let now = chrono::Utc::now();
        let event = EventModel {
            id: Uuid::now_v7(),
            organizer_id: Uuid::now_v7(),
            title: "x".repeat(10_000),
            description: None,
            venue: "Hall".into(),
            starts_at: now,
            ends_at: now,
            total_tickets: 1,
            available_tickets: 1,
            held_tickets: 0,
            booked_tickets: 0,
            hold_minutes: 10,
            seated: false,
            offer_minutes: 30,
            on_sale_at: None,
            waiting_room_enabled: false,
            admit_per_minute: 60,
            pass_minutes: 10,
            status: EventStatus::Scheduled,
            currency: "EUR".into(),
            refund_until: None,
            calendar_sequence: 0,
            created_at: now,
            updated_at: now,
        };
        EventDetails {
            event,
            ticket_types: Vec::new(),
        }
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = EventCache::default();
        for _ in 0..CAPACITY * 3 {
            let event = event();
            let seen = cache.seen(event.event.id);
            cache.remember(event, seen);
            assert!(cache.len() <= CAPACITY);
        }
        // The newest is always kept.
        let last = event();
        let seen = cache.seen(last.event.id);
        cache.remember(last.clone(), seen);
        assert!(matches!(cache.recall(last.event.id), Recall::Fresh(e) if *e == last));
    }

    #[test]
    fn a_change_heard_between_the_read_and_the_remembering_wins() {
        let cache = EventCache::default();
        let event = event();
        let id = event.event.id;
        let seen = cache.seen(id);
        cache.forget(Some(id));
        cache.remember(event.clone(), seen);
        assert!(matches!(cache.recall(id), Recall::Unknown));
        cache.remember(event.clone(), cache.seen(id));
        assert!(matches!(cache.recall(id), Recall::Fresh(_)));
        cache.drop_old();
        assert_eq!(cache.len(), 1, "young readings stay");
    }
}
