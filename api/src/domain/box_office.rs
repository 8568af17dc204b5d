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
//!   per booking.
//! - **What is known of each event** (`event_cache`). The event as last read
//!   here answers `GET /events/{id}`, and refuses requests for more tickets
//!   than it has left (a sold-out event) with no database work, until the
//!   availability feed says the event changed (in any process: a booking,
//!   cancellation, release, expiry, edit) or [`KNOWN_FOR`](super::event_cache::KNOWN_FOR) passes, whichever
//!   comes first.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use entity::prelude::*;
use futures::StreamExt;
use inventory::{Count, move_tickets};
use platform::{
    ChangeFeed, Changed, DeliverNotification, Queues, db::rows_per_insert, live::Heard,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, Iterable, QueryFilter, QuerySelect,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    Error, after_commit, begin_write,
    event_cache::{EventCache, KEPT_FOR, Recall},
    idempotency::{self, Remember},
    now, outbox,
    sale::{self, BookingDetails},
    seating,
};

/// The most bookings one transaction writes; more waiting go in the next.
const MAX_BATCH: usize = 256;
/// How long an event's line outlives its last request.
const IDLE: Duration = Duration::from_secs(1);

/// One request waiting for its event's batch.
pub(super) struct Order {
    pub customer_id: Uuid,
    pub quantity: i32,
    pub taking: Taking,
    pub request_id: Option<String>,
}

pub(super) enum Taking {
    /// A confirmed booking, complete but for the writing (and its seats), and
    /// how to record the response to an idempotent request.
    Booking {
        booking: BookingModel,
        remember: Option<Remember<BookingDetails>>,
    },
    /// A hold with this id, lasting the event's `hold_minutes`.
    Hold { hold_id: Uuid },
}

/// What the batch did with an order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    /// With the seats, on a seated event.
    Booked { seats: Vec<SeatModel> },
    Held {
        hold: HoldModel,
        seats: Vec<SeatModel>,
    },
    /// Fewer than the order's quantity were left when its turn came.
    SoldOut { available: i32 },
    /// A hold asked for by a customer who already holds tickets for the event.
    HoldExists { hold_id: Uuid },
    /// A retry with the same `Idempotency-Key` took the request over.
    ClaimLost,
    /// The event does not sell this way (not found, cancelled, not on sale,
    /// behind a waiting room): the caller finds out why.
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
    pub async fn event(&self, event_id: Uuid) -> Result<EventModel, Error> {
        if let Some(event) = self.known(event_id) {
            return Ok(event);
        }
        let seen = self.known.seen(event_id);
        let event = Event::find_by_id(event_id)
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound("event"))?;
        self.known.remember(event.clone(), seen);
        Ok(event)
    }

    /// Runs `sale` unless the event as known here has fewer than `quantity`
    /// left; after a sold-out answer, makes sure the event is known.
    pub async fn refusing_sold_out<T>(
        &self,
        event_id: Uuid,
        quantity: i32,
        sale: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let event = match self.known.recall(event_id) {
            Recall::Fresh(event) => Some(event),
            // Read again with a plain read: through the sale it would be a
            // locking one, a write, once a second on a sold-out event.
            Recall::Stale => self.event(event_id).await.ok(),
            Recall::Unknown => None,
        };
        if let Some(event) = event
            && event.status == EventStatus::Scheduled
            && event.on_sale_at.is_none_or(|at| at <= now())
            && event.available_tickets < quantity
        {
            return Err(Error::SoldOut {
                available: event.available_tickets,
            });
        }
        let result = sale.await;
        if let Err(Error::SoldOut { .. }) = &result {
            // Errors here only mean it is not remembered.
            let _ = self.event(event_id).await;
        }
        result
    }

    fn known(&self, event_id: Uuid) -> Option<EventModel> {
        match self.known.recall(event_id) {
            Recall::Fresh(event) => Some(event),
            Recall::Stale | Recall::Unknown => None,
        }
    }

    /// Tells every api process, after the commit, that an event changed (and
    /// which seats): what this process knew of it is forgotten at once, and
    /// the feed carries the news to the others and to live subscribers.
    pub fn announce(&self, event_id: Uuid, seat_ids: Vec<Uuid>) {
        self.known.forget(Some(event_id));
        let feed = self.feed.clone();
        tokio::spawn(async move { feed.publish(Changed { event_id, seat_ids }).await });
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
            tokio::spawn(Arc::clone(&self).sell_and_answer(event_id, batch, locked));
            let _ = holds_the_event.await;
        }
    }

    async fn sell_and_answer(
        self: Arc<Self>,
        event_id: Uuid,
        batch: Vec<(Order, Reply)>,
        locked: oneshot::Sender<()>,
    ) {
        let (orders, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.sell(event_id, orders, locked).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(error) => {
                let unavailable = super::is_unavailable(&error);
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(if unavailable {
                        Error::Unavailable(DbErr::Custom(message.clone()))
                    } else {
                        Error::Internal(anyhow::anyhow!("booking batch: {message}"))
                    }));
                }
            }
        }
    }

    /// One transaction for the batch: the event row locked once, tickets given
    /// in arrival order to each order that still fits, every row written
    /// together. After commit, the notifications and hold timers are pushed
    /// and the change announced, once for the batch.
    async fn sell(
        &self,
        event_id: Uuid,
        orders: Vec<Order>,
        locked: oneshot::Sender<()>,
    ) -> Result<Vec<Answer>, DbErr> {
        let seen = self.known.seen(event_id);
        let txn = begin_write(&self.db).await?;
        let event = Event::find_by_id(event_id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            let _ = locked.send(());
        }
        let at = now();
        let Some(event) = event.filter(|event| sold_in_batches(event, at)) else {
            return Ok(vec![Answer::NotHere; orders.len()]);
        };
        let lost = lost_claims(&txn, &orders).await?;
        let mut holding = active_holds(&txn, event_id, &orders).await?;
        let expires_at = at + chrono::Duration::minutes(i64::from(event.hold_minutes));
        let mut left = event.available_tickets;
        let mut answers: Vec<Answer> = orders
            .iter()
            .enumerate()
            .map(|(i, order)| {
                if lost.contains(&i) {
                    return Answer::ClaimLost;
                }
                let hold_id = match order.taking {
                    Taking::Hold { hold_id } => Some(hold_id),
                    Taking::Booking { .. } => None,
                };
                if let (Some(_), Some(&held)) = (hold_id, holding.get(&order.customer_id)) {
                    return Answer::HoldExists { hold_id: held };
                }
                if order.quantity > left {
                    return Answer::SoldOut { available: left };
                }
                left -= order.quantity;
                match hold_id {
                    None => Answer::Booked { seats: Vec::new() },
                    Some(id) => {
                        holding.insert(order.customer_id, id);
                        Answer::Held {
                            hold: HoldModel {
                                id,
                                event_id,
                                user_id: order.customer_id,
                                quantity: order.quantity,
                                status: HoldStatus::Active,
                                expires_at,
                                booking_id: None,
                                created_at: at,
                                ended_at: None,
                            },
                            seats: Vec::new(),
                        }
                    }
                }
            })
            .collect();
        let written = write(&txn, &event, &orders, &mut answers).await?;
        txn.commit().await?;
        if left == event.available_tickets {
            // Nothing changed: what was read is still the event.
            self.known.remember(event, seen);
        } else {
            outbox::push(&self.queues, written.jobs);
            after_commit::time_holds(&self.queues, written.timers);
            self.announce(event_id, written.seat_ids);
        }
        Ok(answers)
    }
}

/// The orders (by index) whose `Idempotency-Key` claim a retry has taken over:
/// they write nothing. The others' claims stay locked until the batch commits
/// ([`idempotency::fence`]).
async fn lost_claims(
    txn: &DatabaseTransaction,
    orders: &[Order],
) -> Result<std::collections::HashSet<usize>, DbErr> {
    let mut lost = std::collections::HashSet::new();
    for (i, order) in orders.iter().enumerate() {
        if let Taking::Booking {
            remember: Some(remember),
            ..
        } = &order.taking
            && !idempotency::fence(txn, &remember.claim).await?
        {
            lost.insert(i);
        }
    }
    Ok(lost)
}

/// The customers of the batch's hold orders who already hold tickets for the
/// event, and their holds. Every hold is made with the event row locked, so
/// this stays true until commit.
async fn active_holds(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    orders: &[Order],
) -> Result<HashMap<Uuid, Uuid>, DbErr> {
    let customers: Vec<Uuid> = orders
        .iter()
        .filter(|order| matches!(order.taking, Taking::Hold { .. }))
        .map(|order| order.customer_id)
        .collect();
    if customers.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(Hold::find()
        .filter(HoldColumn::EventId.eq(event_id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .filter(HoldColumn::UserId.is_in(customers))
        .all(txn)
        .await?
        .into_iter()
        .map(|hold| (hold.user_id, hold.id))
        .collect())
}

/// What a batch leaves to push once committed.
struct Written {
    jobs: Vec<DeliverNotification>,
    timers: Vec<(Uuid, chrono::DateTime<chrono::Utc>)>,
    seat_ids: Vec<Uuid>,
}

/// The rows of a batch's successful orders, and the counters they move. On a
/// seated event each order also gets its seats, best available, in arrival
/// order (each through a hold row, as a seated booking always is).
async fn write(
    txn: &DatabaseTransaction,
    event: &EventModel,
    orders: &[Order],
    answers: &mut [Answer],
) -> Result<Written, DbErr> {
    let event_id = event.id;
    let mut written = Written {
        jobs: Vec::new(),
        timers: Vec::new(),
        seat_ids: Vec::new(),
    };
    let booked: Vec<(&Order, &BookingModel)> = orders
        .iter()
        .zip(answers.iter())
        .filter_map(|(order, answer)| match (&order.taking, answer) {
            (Taking::Booking { booking, .. }, Answer::Booked { .. }) => Some((order, booking)),
            _ => None,
        })
        .collect();
    for chunk in booked.chunks(rows_per_insert(BookingColumn::iter().count())) {
        Booking::insert_many(
            chunk
                .iter()
                .map(|(_, booking)| BookingActiveModel::from((*booking).clone()).reset_all()),
        )
        .exec_without_returning(txn)
        .await?;
    }
    // The hold rows: every hold, and on a seated event every booking's too
    // (confirmed at once), for its seats to point at.
    let mut holds = Vec::new();
    for (order, answer) in orders.iter().zip(answers.iter()) {
        match (&order.taking, answer) {
            (_, Answer::Held { hold, .. }) => holds.push(hold.clone()),
            (Taking::Booking { booking, .. }, Answer::Booked { .. }) if event.seated => {
                holds.push(HoldModel {
                    id: Uuid::now_v7(),
                    event_id,
                    user_id: booking.user_id,
                    quantity: booking.quantity,
                    status: HoldStatus::Confirmed,
                    expires_at: booking.created_at
                        + chrono::Duration::minutes(i64::from(event.hold_minutes)),
                    booking_id: Some(booking.id),
                    created_at: booking.created_at,
                    ended_at: Some(booking.created_at),
                });
            }
            _ => {}
        }
    }
    for chunk in holds.chunks(rows_per_insert(HoldColumn::iter().count())) {
        Hold::insert_many(
            chunk
                .iter()
                .map(|hold| HoldActiveModel::from(hold.clone()).reset_all()),
        )
        .exec_without_returning(txn)
        .await?;
    }
    if event.seated {
        let mut holds = holds.iter();
        for answer in answers.iter_mut() {
            let (seats, status) = match answer {
                Answer::Booked { seats } => (seats, SeatStatus::Booked),
                Answer::Held { seats, .. } => (seats, SeatStatus::Held),
                _ => continue,
            };
            let Some(hold) = holds.next() else {
                return Err(DbErr::Custom("a seated order without its hold".into()));
            };
            let best = seating::best_available(txn, event_id, hold.quantity).await?;
            // The event row is locked, so the free seats just read stay free:
            // a refusal here would be a bug, and fails the batch.
            *seats = seating::take(txn, event_id, hold.id, &best, status)
                .await?
                .map_err(|unavailable| {
                    DbErr::Custom(format!("best-available seats were taken: {unavailable:?}"))
                })?;
            written.seat_ids.extend(seats.iter().map(|seat| seat.id));
        }
    }
    let notices = booked
        .iter()
        .map(|(order, booking)| (sale::confirmation(booking), order.request_id.clone()))
        .collect();
    let ids = inventory::outbox::write_each(txn, notices).await?;
    let booked_details = orders
        .iter()
        .zip(answers.iter())
        .filter_map(|(order, answer)| match (&order.taking, answer) {
            (Taking::Booking { booking, remember }, Answer::Booked { seats }) => {
                Some((order, booking, remember, seats))
            }
            _ => None,
        });
    for ((order, booking, remember, seats), notification_id) in booked_details.zip(ids) {
        written.jobs.push(DeliverNotification {
            notification_id,
            request_id: order.request_id.clone(),
        });
        if let Some(remember) = remember {
            let details = BookingDetails {
                booking: booking.clone(),
                seats: seats.clone(),
            };
            let (status, body) = remember.response(&details);
            idempotency::save_response(txn, &remember.claim, status, &body).await?;
        }
    }
    let sold = booked.iter().map(|(_, booking)| booking.quantity).sum();
    if sold > 0 {
        move_tickets(event_id, sold, Count::Available, Count::Booked)
            .exec(txn)
            .await?;
    }
    let held: Vec<&HoldModel> = answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Held { hold, .. } => Some(hold),
            _ => None,
        })
        .collect();
    written.timers = held.iter().map(|hold| (hold.id, hold.expires_at)).collect();
    let quantity = held.iter().map(|hold| hold.quantity).sum();
    if quantity > 0 {
        move_tickets(event_id, quantity, Count::Available, Count::Held)
            .exec(txn)
            .await?;
    }
    Ok(written)
}

/// Whether the event sells through batches now: on sale, and with no waiting
/// room (admission is checked per customer, in a transaction of its own).
fn sold_in_batches(event: &EventModel, at: chrono::DateTime<chrono::Utc>) -> bool {
    event.status == EventStatus::Scheduled
        && !event.waiting_room_enabled
        && event.on_sale_at.is_none_or(|on_sale| on_sale <= at)
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

/// Nothing was taken: say why. Read after the fact, so the count is a hint, not
/// a promise. After the batch (`in_batch`), an event behind a waiting room
/// is [`Error::NeedsTransaction`]: the caller takes the tickets through a hold
/// of its own, which checks admission.
pub(super) async fn why_not_sold(db: &DatabaseConnection, event_id: Uuid, in_batch: bool) -> Error {
    match Event::find_by_id(event_id).one(db).await {
        Ok(None) => Error::NotFound("event"),
        Ok(Some(event)) if event.status == EventStatus::Cancelled => Error::EventCancelled,
        Ok(Some(event)) if event.on_sale_at.is_some_and(|at| now() < at) => Error::NotOnSale,
        Ok(Some(event)) if event.waiting_room_enabled && in_batch => Error::NeedsTransaction,
        Ok(Some(event)) => Error::SoldOut {
            available: event.available_tickets,
        },
        Err(error) => error.into(),
    }
}
