//! Live availability (SPEC §11): what `GET /events/{id}/live` streams.
//!
//! One [`LiveHub`] per api process follows the events someone here is
//! watching. It hears every change on the [`ChangeFeed`] (from any process),
//! marks the event, and every [`TICK`] reads the marked events' numbers once and
//! hands them to the event's `watch` channel, which keeps only the latest
//! value: so each event gets at most four updates a second however busy it is,
//! the database sees one read per event per tick however many watch it, and a
//! slow or vanished subscriber holds one snapshot, never a growing queue.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use entity::prelude::*;
use futures::StreamExt;
use platform::{ChangeFeed, live::Heard};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::Error;

/// How often marked events are read and sent: at most 4 updates a second.
pub const TICK: Duration = Duration::from_millis(250);

/// One `availability` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Availability {
    pub available: i32,
    pub held: i32,
    pub booked: i32,
    #[schema(value_type = crate::routes::EventStatusName)]
    pub status: EventStatus,
    /// Seated events: the seats whose status changed since the last message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seat_ids: Vec<Uuid>,
    /// Each listed ticket type's counts.
    pub ticket_types: Vec<TypeAvailability>,
}

/// One ticket type's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TypeAvailability {
    pub id: Uuid,
    pub available: i32,
    pub held: i32,
    pub booked: i32,
}

impl Availability {
    fn of(event: &EventModel, types: &[TicketTypeModel]) -> Self {
        Self {
            available: event.available_tickets,
            held: event.held_tickets,
            booked: event.booked_tickets,
            status: event.status,
            seat_ids: Vec::new(),
            ticket_types: types
                .iter()
                .filter(|t| !t.hidden)
                .map(|t| TypeAvailability {
                    id: t.id,
                    available: t.available,
                    held: t.held,
                    booked: t.booked,
                })
                .collect(),
        }
    }
}

struct Watched {
    sender: watch::Sender<Availability>,
    changed: bool,
    seats: BTreeSet<Uuid>,
}

pub struct LiveHub {
    db: DatabaseConnection,
    feed: ChangeFeed,
    watched: Mutex<HashMap<Uuid, Watched>>,
    limits: StreamLimits,
    open: Mutex<OpenStreams>,
}

/// How many live streams may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// In this process, from everyone.
    pub total: u32,
    /// From one client address (an IPv6 /64 counts as one); `None`: no limit
    /// (`RATE_LIMITS=off`).
    pub per_client: Option<u32>,
}

#[derive(Default)]
struct OpenStreams {
    total: u32,
    by_client: HashMap<String, u32>,
}

/// An open stream's place, given back when the stream ends (dropped with it).
pub struct StreamSlot {
    hub: Arc<LiveHub>,
    client: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.hub.open_streams();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

/// Past a [`StreamLimits`] bound.
#[derive(Debug)]
pub struct TooManyStreams(pub &'static str);

impl LiveHub {
    pub fn new(db: DatabaseConnection, feed: ChangeFeed, limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self {
            db,
            feed,
            watched: Mutex::new(HashMap::new()),
            limits,
            open: Mutex::new(OpenStreams::default()),
        })
    }

    /// A place for one more stream from `client`, if the limits allow it.
    pub fn open_stream(self: &Arc<Self>, client: String) -> Result<StreamSlot, TooManyStreams> {
        let mut open = self.open_streams();
        if open.total >= self.limits.total {
            return Err(TooManyStreams(
                "this server has as many live streams open as it takes",
            ));
        }
        let from_client = open.by_client.get(&client).copied().unwrap_or(0);
        if self.limits.per_client.is_some_and(|max| from_client >= max) {
            return Err(TooManyStreams(
                "too many live streams open from your address",
            ));
        }
        open.total += 1;
        *open.by_client.entry(client.clone()).or_insert(0) += 1;
        Ok(StreamSlot {
            hub: self.clone(),
            client,
        })
    }

    /// What is held for open streams: the streams, the clients they come from,
    /// and the events watched (each of these drops to 0 once they close).
    pub fn held(&self) -> (u32, usize, usize) {
        let open = self.open_streams();
        (open.total, open.by_client.len(), self.lock().len())
    }

    fn open_streams(&self) -> std::sync::MutexGuard<'_, OpenStreams> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event's availability now and from now on; unknown event → not found.
    pub async fn watch(&self, event_id: Uuid) -> Result<watch::Receiver<Availability>, Error> {
        if let Some(receiver) = self.receiver(event_id) {
            return Ok(receiver);
        }
        let event = Event::find_by_id(event_id)
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound("event"))?;
        let types = inventory::event_types(&self.db, event_id).await?;
        let mut watched = self.lock();
        let entry = watched.entry(event_id).or_insert_with(|| Watched {
            sender: watch::channel(Availability::of(&event, &types)).0,
            // Read again at the next tick: a change may have come between the
            // read above and now.
            changed: true,
            seats: BTreeSet::new(),
        });
        Ok(entry.sender.subscribe())
    }

    fn receiver(&self, event_id: Uuid) -> Option<watch::Receiver<Availability>> {
        self.lock().get(&event_id).map(|w| w.sender.subscribe())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Watched>> {
        // A panic while holding it cannot leave the map inconsistent.
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn heard(&self, heard: Heard) {
        let mut watched = self.lock();
        match heard {
            Heard::Changed(change) => {
                if let Some(entry) = watched.get_mut(&change.event_id) {
                    entry.changed = true;
                    entry.seats.extend(change.seat_ids);
                }
            }
            Heard::Gap => watched.values_mut().for_each(|entry| entry.changed = true),
        }
    }

    /// One tick: forget events nobody watches any more, read the changed ones,
    /// send what changed.
    async fn refresh(&self) -> Result<(), DbErr> {
        let due: HashMap<Uuid, Vec<Uuid>> = {
            let mut watched = self.lock();
            watched.retain(|_, entry| entry.sender.receiver_count() > 0);
            watched
                .iter_mut()
                .filter(|(_, entry)| entry.changed)
                .map(|(id, entry)| {
                    entry.changed = false;
                    (*id, std::mem::take(&mut entry.seats).into_iter().collect())
                })
                .collect()
        };
        if due.is_empty() {
            return Ok(());
        }
        let events = Event::find()
            .filter(EventColumn::Id.is_in(due.keys().copied()))
            .all(&self.db)
            .await?;
        let ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
        let types = inventory::types_of(&self.db, &ids).await?;
        let watched = self.lock();
        for event in events {
            let (Some(entry), Some(seats)) = (watched.get(&event.id), due.get(&event.id)) else {
                continue;
            };
            let of_event = types.get(&event.id).map_or(&[][..], Vec::as_slice);
            let now = Availability {
                seat_ids: seats.clone(),
                ..Availability::of(&event, of_event)
            };
            let counts = |a: &Availability| {
                (
                    a.available,
                    a.held,
                    a.booked,
                    a.status,
                    a.ticket_types.clone(),
                )
            };
            entry.sender.send_if_modified(|last| {
                let changed = !now.seat_ids.is_empty() || counts(last) != counts(&now);
                if changed {
                    *last = now.clone();
                }
                changed
            });
        }
        Ok(())
    }

    /// Listens to the feed and ticks until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let listener = {
            let hub = self.clone();
            let mut heard = Box::pin(hub.feed.listen());
            let stop = stop.clone();
            async move {
                loop {
                    tokio::select! {
                        next = heard.next() => match next {
                            Some(heard) => hub.heard(heard),
                            None => return,
                        },
                        _ = stopped(stop.clone()) => return,
                    }
                }
            }
        };
        let ticker = async {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(error) = self.refresh().await {
                            tracing::warn!(%error, "could not read live availability; will retry");
                            self.heard(Heard::Gap);
                        }
                    }
                    _ = stopped(stop.clone()) => return,
                }
            }
        };
        tokio::join!(listener, ticker);
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs the hub for as long as Rocket runs.
pub struct Following {
    hub: Arc<LiveHub>,
    stop: watch::Sender<bool>,
}

impl Following {
    pub fn new(hub: Arc<LiveHub>) -> Self {
        Self {
            hub,
            stop: watch::channel(false).0,
        }
    }
}

#[rocket::async_trait]
impl rocket::fairing::Fairing for Following {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "live availability",
            kind: rocket::fairing::Kind::Liftoff | rocket::fairing::Kind::Shutdown,
        }
    }

    async fn on_liftoff(&self, _: &rocket::Rocket<rocket::Orbit>) {
        tokio::spawn(self.hub.clone().run(self.stop.subscribe()));
    }

    async fn on_shutdown(&self, _: &rocket::Rocket<rocket::Orbit>) {
        let _ = self.stop.send(true);
    }
}
