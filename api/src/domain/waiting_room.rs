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

use chrono::{DateTime, Duration, Utc};
use entity::prelude::*;
use rand::Rng;
use sea_orm::{
    AccessMode, ActiveModelTrait, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, IsolationLevel, PaginatorTrait, QueryFilter, QuerySelect, Set, SqlErr,
    TransactionOptions, TransactionTrait,
};
use uuid::Uuid;

use super::{
    Error, Services,
    admission::{Standing, current_turn, entry, interval, on_sale, standing},
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
    if let Some(entry) = entry(&services.db, event_id, customer_id).await? {
        return Ok(current_turn(&services.db, &event, &entry, now)
            .await?
            .standing(now));
    }
    let entry = if now < on_sale(&event) {
        join_early(&services.db, &event, customer_id, now).await?
    } else {
        join_late(&services.db, &event, customer_id, now).await?
    };
    standing(&services.db, &event, &entry, now).await
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
/// Joins are serialised on the line's tail row so that turns are handed out
/// once.
async fn join_late(
    db: &DatabaseConnection,
    event: &EventModel,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> Result<QueueEntryModel, Error> {
    let txn = begin_write(db).await?;
    let tail = inventory::waiting_room::tail_locked(&txn, event.id).await?;
    if let Some(entry) = entry(&txn, event.id, customer_id).await? {
        return Ok(entry);
    }
    let (rank, turn) = inventory::waiting_room::next_place(event, &tail, now);
    let entry = QueueEntryActiveModel {
        event_id: Set(event.id),
        user_id: Set(customer_id),
        rank: Set(rank),
        joined_at: Set(now),
        admit_at: Set(Some(turn)),
    }
    .insert(&txn)
    .await?;
    QueueTailActiveModel {
        event_id: Set(event.id),
        last_rank: Set(Some(rank)),
        last_turn: Set(Some(turn)),
        ..tail.into_active_model()
    }
    .update(&txn)
    .await?;
    txn.commit().await?;
    Ok(entry)
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
    let served = Hold::find()
        .select_only()
        .column(HoldColumn::UserId)
        .distinct()
        .filter(HoldColumn::EventId.eq(event_id))
        .filter(HoldColumn::Status.is_in([HoldStatus::Active, HoldStatus::Confirmed]))
        .filter(
            HoldColumn::UserId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(QueueEntryColumn::UserId)
                    .from(QueueEntry)
                    .and_where(QueueEntryColumn::EventId.eq(event_id))
                    .to_owned(),
            ),
        )
        .count(db)
        .await?;
    snapshot.commit().await?;
    Ok(Statistics {
        waiting: total.saturating_sub(reached),
        admitted: reached.saturating_sub(expired),
        expired,
        served,
    })
}
