//! This process's window onto each event's sales.
//!
//! - **Batches.** Bookings and holds by quantity for one event that arrive
//!   while that event's previous batch is in the database wait for it, then
//!   go together: one transaction locks the event row once, allocates in
//!   arrival order (on a seated event, the best available seats, each order
//!   in turn), and writes every booking (with its notification and remembered
//!   response) and every hold. A lone request goes at once; only what is
//!   already waiting is batched, so load makes batches bigger instead of
//!   queues longer, and the hot row is locked once per batch instead of once
//!   per booking. Behind a waiting room the batch reads its customers' line
//!   entries at once and refuses those without a valid pass.
//! - **Batches side by side.** On PostgreSQL, a batch of bookings (no holds,
//!   no `Idempotency-Key`s) for a general-admission event with tickets to spare for every batch in
//!   flight does not wait for the event row: it decides from the event as
//!   last committed, writes its rows, and only then moves the counts, which
//!   locks the row until commit; if the event or its types changed in
//!   between in any way but their counts (an edit, a cancellation, another
//!   process taking the last tickets), it rolls back and sells again the
//!   locked way. So up to [`IN_FLIGHT`] batches of one event write at once and
//!   the row is held for two updates and a commit, not for the whole batch.
//!   Near the end of the tickets every batch takes the lock first, in
//!   arrival order.
//! - **What is known of each event** (`event_cache`). The event as last read
//!   here answers `GET /events/{id}`, and refuses requests for more tickets
//!   than it has left (a sold-out event) with no database work, until the
//!   availability feed says the event changed (in any process: a booking,
//!   cancellation, release, expiry, edit) or [`KNOWN_FOR`](super::event_cache::KNOWN_FOR) passes, whichever
//!   comes first.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

mod batch;

use entity::prelude::*;
use futures::StreamExt;
use inventory::{AfterCommit, event_types};
use platform::{ChangeFeed, Queues, live::Heard};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, EntityTrait, QuerySelect};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::{
    Error, begin_write,
    event_cache::{EventCache, KEPT_FOR, Recall},
    idempotency::Remember,
    now,
    queries::{self, EventDetails},
    sale::{self, BookingDetails, HoldDetails, Selection},
};

/// The most bookings one transaction writes; more waiting go in the next.
const MAX_BATCH: usize = 256;
/// The most batches of one event in the database at once.
const IN_FLIGHT: usize = 3;
/// How long an event's line outlives its last request.
const IDLE: Duration = Duration::from_secs(1);

/// One request waiting for its event's batch.
pub(super) struct Order {
    pub customer_id: Uuid,
    /// By quantity or by type.
    pub selection: Selection,
    pub taking: Taking,
    pub request_id: Option<String>,
}

impl Order {
    /// Whether a batch with this order may go side by side. Not a hold (one
    /// active hold per customer is checked with the event row locked), and
    /// not a booking with an `Idempotency-Key`: its claim is fenced early in
    /// the batch, and a side-by-side batch then waits for the event row
    /// holding it, so a retry allowed to take the claim over would wait too
    /// instead of taking it.
    fn sells_side_by_side(&self) -> bool {
        matches!(self.taking, Taking::Booking { remember: None })
    }
}

pub(super) enum Taking {
    /// A confirmed booking, and how to record the response to an idempotent
    /// request.
    Booking {
        remember: Option<Remember<BookingDetails>>,
    },
    /// A hold lasting the event's `hold_minutes`.
    Hold,
}

/// What the batch did with an order.
#[derive(Debug)]
pub(super) enum Answer {
    /// With the seats, on a seated event.
    Booked(BookingDetails),
    Held(HoldDetails),
    /// Fewer than the order's quantity were left when its turn came.
    SoldOut {
        available: i32,
    },
    /// Not sold as asked, for a reason of its own (a type sold out or not on
    /// sale, a type this event does not sell).
    Refused(Error),
    /// A hold asked for by a customer who already holds tickets for the event.
    HoldExists {
        hold_id: Uuid,
    },
    /// A retry with the same `Idempotency-Key` took the request over.
    ClaimLost,
    /// The event does not sell now (not found, cancelled, not on sale): the
    /// caller finds out why.
    NotHere,
}

type Reply = oneshot::Sender<Result<Answer, Error>>;

pub struct BoxOffice {
    db: DatabaseConnection,
    queues: Queues,
    feed: ChangeFeed,
    lines: Mutex<HashMap<Uuid, mpsc::UnboundedSender<(Order, Reply)>>>,
    known: EventCache,
}

impl BoxOffice {
    /// Starts listening to the feed (for as long as the box office lives).
    pub fn open(db: DatabaseConnection, queues: Queues, feed: ChangeFeed) -> Arc<Self> {
        let office = Arc::new(Self {
            db,
            queues,
            feed: feed.clone(),
            lines: Mutex::new(HashMap::new()),
            known: EventCache::default(),
        });
        tokio::spawn(listen(Arc::downgrade(&office), feed));
        tokio::spawn(drop_old_readings(Arc::downgrade(&office)));
        office
    }

    /// The event as last read here, if no change has been heard since and it
    /// is younger than [`KNOWN_FOR`](super::event_cache::KNOWN_FOR); otherwise read now (and remembered).
    pub async fn event(&self, event_id: Uuid) -> Result<EventDetails, Error> {
        if let Some(event) = self.known(event_id) {
            return Ok(event);
        }
        let seen = self.known.seen(event_id);
        let event = queries::event_details(&self.db, event_id).await?;
        self.known.remember(event.clone(), seen);
        Ok(event)
    }

    /// Runs `selling` unless the event as known here has too few tickets
    /// left for the selection (by quantity, the event; by type, each type
    /// asked for); after a sold-out answer, makes sure the event is known.
    pub async fn refusing_sold_out<T>(
        &self,
        event_id: Uuid,
        selection: &Selection,
        selling: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let known = match self.known.recall(event_id) {
            Recall::Fresh(event) => Some(*event),
            // Read again with a plain read: through the sale it would be a
            // locking one, a write, once a second on a sold-out event.
            Recall::Stale => self.event(event_id).await.ok(),
            Recall::Unknown => None,
        };
        if let Some(known) = known
            && sale::on_sale(&known.event, now())
            && let Some(refusal) = sold_out(&known, selection)
        {
            return Err(refusal);
        }
        let result = selling.await;
        if let Err(Error::SoldOut { .. } | Error::TypeSoldOut { .. }) = &result {
            // Errors here only mean it is not remembered.
            let _ = self.event(event_id).await;
        }
        result
    }

    fn known(&self, event_id: Uuid) -> Option<EventDetails> {
        match self.known.recall(event_id) {
            Recall::Fresh(event) => Some(*event),
            Recall::Stale | Recall::Unknown => None,
        }
    }

    /// Publishes what a commit left to do (`inventory::AfterCommit`) in the
    /// background; what this process knew of each changed event is forgotten
    /// at once, and the feed carries the news to the other processes and to
    /// live subscribers.
    pub fn publish(&self, after: AfterCommit) {
        for event_id in after.changed_events() {
            self.known.forget(Some(event_id));
        }
        let (queues, feed) = (self.queues.clone(), self.feed.clone());
        tokio::spawn(async move { after.publish(&queues, &feed).await });
    }

    /// Takes the order's tickets in the event's next batch.
    pub(super) async fn take(
        self: &Arc<Self>,
        event_id: Uuid,
        order: Order,
    ) -> Result<Answer, Error> {
        let (reply, answer) = oneshot::channel();
        {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            let line = lines
                .entry(event_id)
                .or_insert_with(|| self.open_line(event_id));
            if let Err(mpsc::error::SendError(returned)) = line.send((order, reply)) {
                // The line's task died (a panic); start another.
                let line = self.open_line(event_id);
                let _ = line.send(returned);
                lines.insert(event_id, line);
            }
        }
        answer.await.map_err(|_| {
            Error::Internal(anyhow::anyhow!("the booking batch ended without an answer"))
        })?
    }

    fn open_line(self: &Arc<Self>, event_id: Uuid) -> mpsc::UnboundedSender<(Order, Reply)> {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(Arc::clone(self).serve(event_id, receiver));
        sender
    }

    /// One event's line: takes everything waiting, sells it, answers, repeats;
    /// leaves once idle.
    async fn serve(
        self: Arc<Self>,
        event_id: Uuid,
        mut line: mpsc::UnboundedReceiver<(Order, Reply)>,
    ) {
        let turns = Arc::new(Semaphore::new(IN_FLIGHT));
        // Tickets asked for by the batches in flight.
        let asked = Arc::new(AtomicI64::new(0));
        loop {
            let first = match tokio::time::timeout(IDLE, line.recv()).await {
                Ok(Some(first)) => first,
                Ok(None) => return,
                Err(_) => {
                    // Under the lock no order can arrive between the look and the leaving.
                    let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
                    match line.try_recv() {
                        Ok(first) => first,
                        Err(_) => {
                            lines.remove(&event_id);
                            return;
                        }
                    }
                }
            };
            let Ok(turn) = Arc::clone(&turns).acquire_owned().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match line.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            // The next batch may begin once this one holds the event row:
            // PostgreSQL queues it behind, so batches keep their order and the
            // next starts the moment this one commits. (SQLite: one at a time.)
            let (locked, holds_the_event) = oneshot::channel();
            let tickets: i64 = batch
                .iter()
                .map(|(order, _)| i64::from(order.selection.count()))
                .sum();
            asked.fetch_add(tickets, Ordering::SeqCst);
            let asked = Arc::clone(&asked);
            let office = Arc::clone(&self);
            tokio::spawn(async move {
                office
                    .sell_and_answer(event_id, batch, locked, asked.load(Ordering::SeqCst))
                    .await;
                asked.fetch_sub(tickets, Ordering::SeqCst);
                drop(turn);
            });
            let _ = holds_the_event.await;
        }
    }

    async fn sell_and_answer(
        self: Arc<Self>,
        event_id: Uuid,
        batch: Vec<(Order, Reply)>,
        locked: oneshot::Sender<()>,
        asked: i64,
    ) {
        let (orders, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.sell(event_id, orders, locked, asked).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(super::batch_error(&error, "booking batch")));
                }
            }
        }
    }

    /// One transaction for the batch (`batch`), side by side with the other
    /// batches in flight if it can be, else with the event row locked first.
    /// `asked`: the tickets the batches in flight (this one too) ask for.
    async fn sell(
        &self,
        event_id: Uuid,
        orders: Vec<Order>,
        locked: oneshot::Sender<()>,
        asked: i64,
    ) -> Result<Vec<Answer>, DbErr> {
        let mut locked = Some(locked);
        if self.db.get_database_backend() == DbBackend::Postgres
            && orders.iter().all(Order::sells_side_by_side)
        {
            // The next batch need not wait for this one to hold the row.
            if let Some(locked) = locked.take() {
                let _ = locked.send(());
            }
            match self.sell_side_by_side(event_id, &orders, asked).await {
                Ok(Some(answers)) => return Ok(answers),
                Ok(None) => {}
                // No database: the locked way would only wait as long again.
                Err(error) if super::is_unavailable(&error) => return Err(error),
                // A check constraint (another process took the last
                // tickets) or anything else: the locked way says which.
                Err(error) => tracing::debug!(%error, "a batch is sold again, locked"),
            }
        }
        self.sell_locked(event_id, orders, locked).await
    }

    /// The batch without waiting for the event row: `None` (and nothing
    /// written) if it must be sold the locked way.
    async fn sell_side_by_side(
        &self,
        event_id: Uuid,
        orders: &[Order],
        asked: i64,
    ) -> Result<Option<Vec<Answer>>, DbErr> {
        let seen = self.known.seen(event_id);
        let txn = begin_write(&self.db).await?;
        let at = now();
        let Some(event) = Event::find_by_id(event_id).one(&txn).await? else {
            return Ok(None);
        };
        let types = event_types(&txn, event_id).await?;
        let spare = |available: i32| i64::from(available) >= asked;
        if event.seated || !sale::on_sale(&event, at) || !spare(event.available_tickets) {
            return Ok(None);
        }
        let sold = batch::sell(&txn, &event, types.clone(), orders, at).await?;
        let from_spare = sold
            .booked
            .keys()
            .all(|id| types.iter().any(|t| t.id == *id && spare(t.available)));
        if !from_spare {
            return Ok(None);
        }
        if sold.took {
            // The counts moved, so the row is locked now: the event and its
            // types as they stand must be as read, but for their counts.
            let now_event = Event::find_by_id(event_id).one(&txn).await?;
            let now_types = event_types(&txn, event_id).await?;
            let unchanged = now_event.is_some_and(|now| {
                but_counts(&now) == but_counts(&event) && sale::on_sale(&now, at)
            }) && now_types.len() == types.len()
                && now_types
                    .iter()
                    .zip(&types)
                    .all(|(now, then)| type_but_counts(now) == type_but_counts(then));
            if !unchanged {
                return Ok(None);
            }
        }
        txn.commit().await?;
        self.after_sale(event, sold.took, sold.after, sold.ticket_types, seen);
        Ok(Some(sold.answers))
    }

    /// The batch with the event row locked first: then each order in turn.
    /// After commit, what it wrote is published once for the batch.
    async fn sell_locked(
        &self,
        event_id: Uuid,
        orders: Vec<Order>,
        mut locked: Option<oneshot::Sender<()>>,
    ) -> Result<Vec<Answer>, DbErr> {
        let seen = self.known.seen(event_id);
        let txn = begin_write(&self.db).await?;
        let event = Event::find_by_id(event_id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if self.db.get_database_backend() == DbBackend::Postgres
            && let Some(locked) = locked.take()
        {
            let _ = locked.send(());
        }
        let at = now();
        let Some(event) = event.filter(|event| sale::on_sale(event, at)) else {
            return Ok(orders.iter().map(|_| Answer::NotHere).collect());
        };
        let types = event_types(&txn, event_id).await?;
        let sold = batch::sell(&txn, &event, types, &orders, at).await?;
        txn.commit().await?;
        self.after_sale(event, sold.took, sold.after, sold.ticket_types, seen);
        Ok(sold.answers)
    }

    /// After a batch's commit: what it changed published, or, if it changed
    /// nothing, the event as read remembered.
    fn after_sale(
        &self,
        event: EventModel,
        took: bool,
        after: AfterCommit,
        ticket_types: Vec<TicketTypeModel>,
        seen: super::event_cache::Seen,
    ) {
        if took {
            self.publish(after);
        } else {
            // Nothing changed: what was read is still the event.
            self.known.remember(
                EventDetails {
                    event,
                    ticket_types,
                },
                seen,
            );
        }
    }
}

/// The event but for its counts, which bookings move all the time.
fn but_counts(event: &EventModel) -> EventModel {
    EventModel {
        available_tickets: 0,
        held_tickets: 0,
        booked_tickets: 0,
        ..event.clone()
    }
}

fn type_but_counts(ticket_type: &TicketTypeModel) -> TicketTypeModel {
    TicketTypeModel {
        available: 0,
        held: 0,
        booked: 0,
        ..ticket_type.clone()
    }
}

/// Why the event as known cannot sell the selection, if it cannot.
fn sold_out(known: &EventDetails, selection: &Selection) -> Option<Error> {
    match selection {
        Selection::Items(items) => items.iter().find_map(|&(ticket_type_id, n)| {
            let ticket_type = known.ticket_types.iter().find(|t| t.id == ticket_type_id)?;
            (ticket_type.available < n).then_some(Error::TypeSoldOut {
                ticket_type_id,
                available: ticket_type.available,
            })
        }),
        _ => (known.event.available_tickets < selection.count()).then_some(Error::SoldOut {
            available: known.event.available_tickets,
        }),
    }
}

/// Forgets what it knew of an event as soon as any process changes it.
async fn listen(office: Weak<BoxOffice>, feed: ChangeFeed) {
    let mut heard = std::pin::pin!(feed.listen());
    while let Some(heard) = heard.next().await {
        let Some(office) = office.upgrade() else {
            return;
        };
        match heard {
            Heard::Changed(change) => office.known.forget(Some(change.event_id)),
            Heard::Gap => office.known.forget(None),
        }
    }
}

/// Forgets events nobody asked about for a while, for as long as the box
/// office lives.
async fn drop_old_readings(office: Weak<BoxOffice>) {
    let mut every = tokio::time::interval(KEPT_FOR);
    loop {
        every.tick().await;
        let Some(office) = office.upgrade() else {
            return;
        };
        office.known.drop_old();
    }
}
