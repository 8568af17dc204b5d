//! Admission (SPEC §10): where a customer stands in an event's waiting room
//! at a given moment, and whether they may take tickets now. Admission is a
//! function of time: from `on_sale_at`, one customer every
//! `60 / admit_per_minute` seconds, in line order (`waiting_room` keeps the
//! line). A pass lasts `pass_minutes` from the customer's turn and is checked
//! against the signed-in customer, so it cannot be passed on.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use entity::prelude::*;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Error, now, sale};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Admitted,
    Expired,
}

/// Where a customer stands in the line, now.
#[derive(Debug, Clone)]
pub struct Standing {
    pub status: Status,
    /// While waiting, how many are ahead plus one. `None` before the on-sale,
    /// when the early joiners' order is not yet drawn.
    pub position: Option<i64>,
    pub estimated_wait_secs: Option<i64>,
    pub pass_expires_at: Option<DateTime<Utc>>,
}

pub(super) use inventory::waiting_room::{interval, on_sale};

pub(super) async fn entry<C: ConnectionTrait>(
    db: &C,
    event_id: Uuid,
    customer_id: Uuid,
) -> Result<Option<QueueEntryModel>, Error> {
    Ok(QueueEntry::find_by_id((event_id, customer_id))
        .one(db)
        .await?)
}

/// The entries of those of these customers who are in the event's line.
pub(super) async fn entries<C: ConnectionTrait>(
    db: &C,
    event_id: Uuid,
    customers: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<QueueEntryModel>, DbErr> {
    QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_id))
        .filter(QueueEntryColumn::UserId.is_in(customers))
        .all(db)
        .await
}

/// What decides where a customer stands; the rest is the clock.
#[derive(Debug, Clone)]
pub struct Turn {
    on_sale: DateTime<Utc>,
    /// When their turn comes; `None` before the on-sale for an early joiner.
    at: Option<DateTime<Utc>>,
    interval: Duration,
    pass: Duration,
}

impl Turn {
    /// Whether [`Turn::standing`] can be trusted at `now` without asking the
    /// database again (an early joiner's turn is drawn at the on-sale).
    pub fn is_settled_at(&self, now: DateTime<Utc>) -> bool {
        self.at.is_some() || now < self.on_sale
    }

    pub fn standing(&self, now: DateTime<Utc>) -> Standing {
        match self.at {
            None => Standing {
                status: Status::Waiting,
                position: None,
                estimated_wait_secs: None,
                pass_expires_at: None,
            },
            Some(turn) if now < turn => {
                let wait = turn - now;
                let step = self.interval.num_microseconds().unwrap_or(1).max(1);
                Standing {
                    status: Status::Waiting,
                    position: Some(wait.num_microseconds().unwrap_or(i64::MAX) / step + 1),
                    estimated_wait_secs: Some((wait.num_milliseconds() + 999) / 1000),
                    pass_expires_at: Some(turn + self.pass),
                }
            }
            Some(turn) => Standing {
                status: if now < turn + self.pass {
                    Status::Admitted
                } else {
                    Status::Expired
                },
                position: None,
                estimated_wait_secs: None,
                pass_expires_at: Some(turn + self.pass),
            },
        }
    }
}

/// The entry's turn, as the database has it (for an early joiner, once the
/// draw has reached them).
async fn turn<C: ConnectionTrait>(
    db: &C,
    event: &EventModel,
    entry: &QueueEntryModel,
    now: DateTime<Utc>,
) -> Result<Turn, DbErr> {
    let at = match entry.admit_at {
        Some(at) => Some(at),
        None if now < on_sale(event) => None,
        None => inventory::waiting_room::drawn_turn(db, event, entry).await?,
    };
    Ok(Turn {
        on_sale: on_sale(event),
        at,
        interval: interval(event),
        pass: Duration::minutes(i64::from(event.pass_minutes)),
    })
}

/// The entry's turn at `now`, after moving the draw on by a step if this
/// early joiner's turn waits for it (`inventory::waiting_room`).
pub(super) async fn current_turn(
    db: &DatabaseConnection,
    event: &EventModel,
    entry: &QueueEntryModel,
    now: DateTime<Utc>,
) -> Result<Turn, Error> {
    if entry.admit_at.is_none() && now >= on_sale(event) {
        inventory::waiting_room::draw_step(db, event).await?;
    }
    Ok(turn(db, event, entry, now).await?)
}

pub(super) async fn standing<C: ConnectionTrait>(
    db: &C,
    event: &EventModel,
    entry: &QueueEntryModel,
    now: DateTime<Utc>,
) -> Result<Standing, Error> {
    Ok(turn(db, event, entry, now).await?.standing(now))
}

/// Which of these customers hold a valid pass for the event's waiting room at
/// `now`: one read of their entries (a booking batch's check).
pub(super) async fn admitted<C: ConnectionTrait>(
    db: &C,
    event: &EventModel,
    customers: impl IntoIterator<Item = Uuid>,
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, DbErr> {
    let entries = entries(db, event.id, customers).await?;
    // Early joiners the draw has not reached are waiting: the draw's progress
    // is read once for them all, not once each.
    let undrawn = |entry: &QueueEntryModel| entry.admit_at.is_none() && now >= on_sale(event);
    let draw = if entries.iter().any(undrawn) {
        QueueDraw::find_by_id(event.id).one(db).await?
    } else {
        None
    };
    let mut admitted = HashSet::new();
    for entry in entries {
        if undrawn(&entry) && !inventory::waiting_room::has_drawn(draw.as_ref(), entry.rank) {
            continue;
        }
        if turn(db, event, &entry, now).await?.standing(now).status == Status::Admitted {
            admitted.insert(entry.user_id);
        }
    }
    Ok(admitted)
}

/// The customer's turn in the event's waiting room, if they are in it.
pub async fn turn_of(
    db: &DatabaseConnection,
    customer_id: Uuid,
    event_id: Uuid,
) -> Result<Option<Turn>, Error> {
    let Some(event) = Event::find_by_id(event_id).one(db).await? else {
        return Ok(None);
    };
    if !event.waiting_room_enabled {
        return Ok(None);
    }
    match entry(db, event_id, customer_id).await? {
        Some(entry) => Ok(Some(current_turn(db, &event, &entry, now()).await?)),
        None => Ok(None),
    }
}

/// May this customer take tickets for this event now? Before the on-sale, no
/// one; with the waiting room, only with a valid pass.
pub async fn check_admission<C: ConnectionTrait>(
    db: &C,
    event: &EventModel,
    customer_id: Uuid,
) -> Result<(), Error> {
    let now = now();
    if sale::before_on_sale(event, now) {
        return Err(Error::NotOnSale);
    }
    if !event.waiting_room_enabled {
        return Ok(());
    }
    let Some(entry) = entry(db, event.id, customer_id).await? else {
        return Err(Error::NotAdmitted);
    };
    match standing(db, event, &entry, now).await?.status {
        Status::Admitted => Ok(()),
        Status::Waiting | Status::Expired => Err(Error::NotAdmitted),
    }
}
