//! The on-sale and its waiting room (SPEC §10).
//!
//! Before `on_sale_at` nothing can be held or booked. With the waiting room on,
//! customers join a line, and holding or booking needs an admission pass.
//!
//! The line is ordered by `rank`. Those who join before the on-sale draw a
//! uniformly random rank, so arriving first at that moment buys nothing.
//! Everyone after them ranks by arrival.
//!
//! Admission is a function of time. From `on_sale_at`, one customer is
//! admitted every `60 / admit_per_minute` seconds, in line order. An early
//! joiner's turn follows from their place among the early ones. A later
//! arrival's turn is fixed when they join: the next free slot after the last
//! turn given out, or now. No process hands out admissions, so any number of
//! api processes admit at exactly the set rate, nobody twice. The state lives
//! in the database: an api restart or a Redis restart changes nothing.
//! Turns, standings and the pass a sale checks are `admission`'s; how the
//! database keeps the line fast at millions (the draw, the tail) is
//! `inventory::waiting_room`'s.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::prelude::*;
use platform::gather::Gather;
use rand::Rng;
use sea_orm::{
    AccessMode, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, IntoActiveModel, IsolationLevel, PaginatorTrait, QueryFilter, Set, SqlErr,
    TransactionOptions, TransactionTrait,
};
use uuid::Uuid;

use super::{
    Error, Services,
    admission::{Standing, current_turn, entries, entry, interval, on_sale, standing},
    begin_write, now,
};

use inventory::waiting_room::LATE;

/// Joins the line, or returns the place already held.
pub async fn join(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
) -> Result<Standing, Error> {
    let event = with_waiting_room(&services.db, event_id).await?;
    let now = now();
    if now < on_sale(&event) {
        let entry = match entry(&services.db, event_id, customer_id).await? {
            Some(entry) => entry,
            None => join_early(&services.db, &event, customer_id, now).await?,
        };
        return standing(&services.db, &event, &entry, now).await;
    }
    // A place held already comes back from the batch as it is.
    let entry = join_late(services, &event, customer_id).await?;
    // As of now: a late joiner's turn was fixed when its batch was placed.
    let now = super::now();
    Ok(current_turn(&services.db, &event, &entry, now)
        .await?
        .standing(now))
}

/// Before the on-sale: a random rank; the order is the ranks'.
async fn join_early(
    db: &DatabaseConnection,
    event: &EventModel,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> Result<QueueEntryModel, Error> {
    loop {
        let rank = rand::rng().random_range(0..LATE);
        let inserted = QueueEntryActiveModel {
            event_id: Set(event.id),
            user_id: Set(customer_id),
            rank: Set(rank),
            joined_at: Set(now),
            admit_at: Set(None),
        }
        .insert(db)
        .await;
        match inserted {
            Ok(entry) => return Ok(entry),
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                // The customer joined meanwhile, or (once in 2^62) the rank was taken.
                if let Some(entry) = entry(db, event.id, customer_id).await? {
                    return Ok(entry);
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// After the on-sale: behind everyone, with a turn of one's own, fixed now.
/// Turns are handed out once because every late join of an event, in any
/// process, places itself with the line's tail row locked. Here, the late
/// joins of one event that arrive while its previous ones are being placed
/// wait for them, then go together: one transaction, one lock of the tail, in
/// arrival order (as the box office batches bookings). A lone join goes at
/// once; load makes batches bigger, not the wait longer.
async fn join_late(
    services: &Services,
    event: &EventModel,
    customer_id: Uuid,
) -> Result<QueueEntryModel, Error> {
    services
        .late_joins
        .call(event.id, customer_id, |customers| {
            place(&services.db, event, customers)
        })
        .await
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a late join was never placed")))?
}

/// This process's late joins, gathered by event: see [`join_late`].
pub type LateJoins = Gather<Uuid, Uuid, Result<QueueEntryModel, Error>>;

/// The most late joins one transaction places.
pub const MAX_JOINS: usize = 1_000;

/// Places a batch of late joiners; each one's entry, in order.
async fn place(
    db: &DatabaseConnection,
    event: &EventModel,
    customers: Vec<Uuid>,
) -> Vec<Result<QueueEntryModel, Error>> {
    match place_all(db, event, &customers).await {
        Ok(entries) => customers
            .iter()
            .map(|customer| {
                entries.get(customer).cloned().ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("a late joiner left out of the batch"))
                })
            })
            .collect(),
        Err(error) => super::batch_errors(&error, customers.len(), "late joins"),
    }
}

/// One transaction: the tail locked, each customer not yet in line placed
/// behind the last, in order; everyone's entry, by customer.
async fn place_all(
    db: &DatabaseConnection,
    event: &EventModel,
    customers: &[Uuid],
) -> Result<HashMap<Uuid, QueueEntryModel>, DbErr> {
    let txn = begin_write(db).await?;
    let mut tail = inventory::waiting_room::tail_locked(&txn, event.id).await?;
    let mut entries: HashMap<Uuid, QueueEntryModel> =
        entries(&txn, event.id, customers.iter().copied())
            .await?
            .into_iter()
            .map(|entry| (entry.user_id, entry))
            .collect();
    let now = now();
    let mut new = Vec::new();
    for &customer in customers {
        if entries.contains_key(&customer) {
            continue;
        }
        let (rank, turn) = inventory::waiting_room::next_place(event, &tail, now);
        tail.last_rank = Some(rank);
        tail.last_turn = Some(turn);
        let entry = QueueEntryModel {
            event_id: event.id,
            user_id: customer,
            rank,
            joined_at: now,
            admit_at: Some(turn),
        };
        new.push(entry.clone());
        entries.insert(customer, entry);
    }
    if !new.is_empty() {
        platform::db::insert_all(
            &txn,
            new.into_iter()
                .map(|entry| entry.into_active_model().reset_all())
                .collect(),
        )
        .await?;
        QueueTailActiveModel {
            event_id: Set(event.id),
            last_rank: Set(tail.last_rank),
            last_turn: Set(tail.last_turn),
            ..tail.into_active_model()
        }
        .update(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(entries)
}

/// The customer's standing, or not found if they never joined.
pub async fn me(
    db: &DatabaseConnection,
    customer_id: Uuid,
    event_id: Uuid,
) -> Result<Standing, Error> {
    let event = with_waiting_room(db, event_id).await?;
    let entry = entry(db, event_id, customer_id)
        .await?
        .ok_or(Error::NotFound("place in this event's waiting room"))?;
    let now = now();
    Ok(current_turn(db, &event, &entry, now).await?.standing(now))
}

async fn with_waiting_room(db: &DatabaseConnection, event_id: Uuid) -> Result<EventModel, Error> {
    let event = Event::find_by_id(event_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("event"))?;
    if !event.waiting_room_enabled {
        return Err(Error::Conflict("this event has no waiting room".into()));
    }
    if event.status == EventStatus::Cancelled {
        return Err(Error::EventCancelled);
    }
    Ok(event)
}

/// The organizer's view of the line now.
#[derive(Debug, Clone, Default)]
pub struct Statistics {
    pub waiting: u64,
    pub admitted: u64,
    pub expired: u64,
    /// Customers from the line who hold or booked tickets.
    pub served: u64,
}

pub async fn statistics(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Statistics, Error> {
    let not_yours = "only the event's organizer may see its waiting room";
    let event = super::queries::own_event(db, organizer_id, event_id, not_yours).await?;
    // Every count from one snapshot: a join landing between two of them
    // would otherwise make them disagree.
    // (SQLite: a read transaction is a snapshot already.)
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let snapshot = db
        .begin_with_options(TransactionOptions {
            isolation_level: postgres.then_some(IsolationLevel::RepeatableRead),
            access_mode: postgres.then_some(AccessMode::ReadOnly),
            sqlite_transaction_mode: None,
        })
        .await?;
    let db = &snapshot;
    let now = now();
    let pass = Duration::minutes(i64::from(event.pass_minutes));
    let step = interval(&event);
    // Early joiners' turns follow from their count; later ones' are stored.
    let early = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_id))
        .filter(QueueEntryColumn::Rank.lt(LATE))
        .count(db)
        .await?;
    let turns_by = |at: DateTime<Utc>| -> u64 {
        if at < on_sale(&event) {
            return 0;
        }
        let elapsed = (at - on_sale(&event))
            .num_microseconds()
            .unwrap_or(i64::MAX);
        let due = elapsed / step.num_microseconds().unwrap_or(1).max(1) + 1;
        u64::try_from(due).unwrap_or(0).min(early)
    };
    let late = |condition: sea_orm::Condition| {
        QueueEntry::find()
            .filter(QueueEntryColumn::EventId.eq(event_id))
            .filter(QueueEntryColumn::Rank.gte(LATE))
            .filter(condition)
            .count(db)
    };
    let total = early + late(sea_orm::Condition::all()).await?;
    let reached = turns_by(now)
        + late(sea_orm::Condition::all().add(QueueEntryColumn::AdmitAt.lte(now))).await?;
    let expired = turns_by(now - pass)
        + late(sea_orm::Condition::all().add(QueueEntryColumn::AdmitAt.lte(now - pass))).await?;
    let served = served(db, event_id).await?;
    snapshot.commit().await?;
    Ok(Statistics {
        waiting: total.saturating_sub(reached),
        admitted: reached.saturating_sub(expired),
        expired,
        served,
    })
}

/// How many customers from the line hold tickets or booked some (a booking
/// may have no hold row: the box office writes none for general admission).
async fn served<C: ConnectionTrait>(db: &C, event_id: Uuid) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Alias, Asterisk, Expr, Func, Query, UnionType};
    let in_line = Query::select()
        .column(QueueEntryColumn::UserId)
        .from(QueueEntry)
        .and_where(QueueEntryColumn::EventId.eq(event_id))
        .to_owned();
    let booked = Query::select()
        .column(BookingColumn::UserId)
        .from(Booking)
        .and_where(BookingColumn::EventId.eq(event_id))
        .and_where(BookingColumn::Status.eq(BookingStatus::Confirmed))
        .and_where(BookingColumn::UserId.in_subquery(in_line.clone()))
        .to_owned();
    let holding_or_booked = Query::select()
        .column(HoldColumn::UserId)
        .from(Hold)
        .and_where(HoldColumn::EventId.eq(event_id))
        .and_where(HoldColumn::Status.eq(HoldStatus::Active))
        .and_where(HoldColumn::UserId.in_subquery(in_line))
        .union(UnionType::Distinct, booked)
        .to_owned();
    let count = Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from_subquery(holding_or_booked, Alias::new("served"))
        .to_owned();
    let row = db.query_one(&count).await?;
    let served: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(served).unwrap_or(0))
}
