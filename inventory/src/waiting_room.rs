//! The waiting room's line (SPEC §10), as the database keeps it.
//!
//! The line is ordered by `rank`: random for those who joined before the
//! on-sale, from [`LATE`] up in order of arrival after it. From the on-sale,
//! one customer is admitted every [`interval`], in line order.
//!
//! Every turn is read, never counted, so a look at one's place costs the
//! same with ten or two million in line:
//! - **The draw.** Once the on-sale has passed, the early joiners' turns are
//!   written into their entries in rank order, [`DRAW_STEP`] at a time. Each
//!   look at a place not yet drawn moves the draw on by a step, unless
//!   another process is drawing (that look then says "waiting", with no
//!   position yet, as before the on-sale). A line of two million is drawn in
//!   about a minute, far ahead of any admission rate.
//! - **The tail.** A late joiner's turn is the next one after the last given
//!   out, or now: read from the line's tail row (the early joiners counted
//!   once, the last late rank and turn), which each late join locks and
//!   moves on, instead of locking the event and counting the line.
//!
//! An early joiner whose entry landed just as the on-sale came, after the
//! draw had passed their rank, is counted instead (rare, and exact).

use chrono::{DateTime, Duration, Utc};
use entity::prelude::*;
use platform::db::{begin_write, upsert_all};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{LockBehavior, LockType, OnConflict},
};
use uuid::Uuid;

/// Ranks from here up belong to those who came after the on-sale, in order.
pub const LATE: i64 = 1 << 62;
/// Early joiners' turns written per step of the draw.
pub const DRAW_STEP: u64 = 10_000;

/// The time between two admissions.
pub fn interval(event: &EventModel) -> Duration {
    Duration::microseconds(60_000_000 / i64::from(event.admit_per_minute.max(1)))
}

pub fn on_sale(event: &EventModel) -> DateTime<Utc> {
    event.on_sale_at.unwrap_or(event.created_at)
}

/// The turn of the early joiner with `ahead` early joiners before them.
pub fn early_turn(event: &EventModel, ahead: u64) -> DateTime<Utc> {
    on_sale(event) + interval(event) * i32::try_from(ahead).unwrap_or(i32::MAX)
}

/// An early joiner's turn once the on-sale has passed, after moving the draw
/// on by a step; `None` while the draw has not reached them.
pub async fn early_turn_of(
    db: &DatabaseConnection,
    event: &EventModel,
    entry: &QueueEntryModel,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    draw_step(db, event).await?;
    drawn_turn(db, event, entry).await
}

/// Whether the draw has written the turn of the early joiner of this rank.
pub fn has_drawn(draw: Option<&QueueDrawModel>, rank: i64) -> bool {
    draw.is_some_and(|draw| draw.done || draw.drawn_rank.is_some_and(|drawn| drawn >= rank))
}

/// [`early_turn_of`] without drawing (inside another transaction).
pub async fn drawn_turn<C: ConnectionTrait>(
    db: &C,
    event: &EventModel,
    entry: &QueueEntryModel,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let written = QueueEntry::find_by_id((event.id, entry.user_id))
        .one(db)
        .await?
        .and_then(|entry| entry.admit_at);
    if written.is_some() {
        return Ok(written);
    }
    let draw = QueueDraw::find_by_id(event.id).one(db).await?;
    if !has_drawn(draw.as_ref(), entry.rank) {
        return Ok(None);
    }
    let ahead = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event.id))
        .filter(QueueEntryColumn::Rank.lt(entry.rank))
        .count(db)
        .await?;
    Ok(Some(early_turn(event, ahead)))
}

/// Writes the next [`DRAW_STEP`] early joiners' turns, unless the draw is
/// done or another process is at it.
pub async fn draw_step(db: &DatabaseConnection, event: &EventModel) -> Result<(), DbErr> {
    draw_some(db, event, DRAW_STEP).await
}

/// [`draw_step`] with a step of `step` turns.
pub async fn draw_some(
    db: &DatabaseConnection,
    event: &EventModel,
    step: u64,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let fresh = QueueDrawActiveModel {
        event_id: Set(event.id),
        drawn: Set(0),
        drawn_rank: Set(None),
        done: Set(false),
    };
    insert_once(
        &txn,
        QueueDraw::insert(fresh).on_conflict(
            OnConflict::column(QueueDrawColumn::EventId)
                .do_nothing()
                .to_owned(),
        ),
    )
    .await?;
    let Some(draw) = QueueDraw::find_by_id(event.id)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(&txn)
        .await?
    else {
        return Ok(());
    };
    if draw.done {
        return Ok(());
    }
    let mut next = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event.id))
        .filter(QueueEntryColumn::Rank.lt(LATE));
    if let Some(rank) = draw.drawn_rank {
        next = next.filter(QueueEntryColumn::Rank.gt(rank));
    }
    // One more than the step: whether any are left after it.
    let mut entries = next
        .order_by_asc(QueueEntryColumn::Rank)
        .limit(step + 1)
        .all(&txn)
        .await?;
    let more = entries.len() as u64 > step;
    entries.truncate(usize::try_from(step).unwrap_or(usize::MAX));
    let count = entries.len() as u64;
    let last_rank = entries.last().map(|entry| entry.rank).or(draw.drawn_rank);
    let first = u64::try_from(draw.drawn).unwrap_or(0);
    let turns: Vec<QueueEntryActiveModel> = entries
        .into_iter()
        .zip(first..)
        .map(|(entry, ahead)| {
            let mut row = entry.into_active_model().reset_all();
            row.admit_at = Set(Some(early_turn(event, ahead)));
            row
        })
        .collect();
    upsert_all(
        &txn,
        turns,
        OnConflict::columns([QueueEntryColumn::EventId, QueueEntryColumn::UserId])
            .update_column(QueueEntryColumn::AdmitAt)
            .to_owned(),
    )
    .await?;
    QueueDrawActiveModel {
        event_id: Set(event.id),
        drawn: Set(draw.drawn + count as i64),
        drawn_rank: Set(last_rank),
        done: Set(!more),
    }
    .update(&txn)
    .await?;
    txn.commit().await
}

/// The end of the line, locked until the caller's commit; made (the early
/// joiners counted, once) if the line has none yet.
pub async fn tail_locked(
    txn: &DatabaseTransaction,
    event_id: Uuid,
) -> Result<QueueTailModel, DbErr> {
    let locked = || QueueTail::find_by_id(event_id).lock_exclusive().one(txn);
    if let Some(tail) = locked().await? {
        return Ok(tail);
    }
    let early = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_id))
        .filter(QueueEntryColumn::Rank.lt(LATE))
        .count(txn)
        .await?;
    let fresh = QueueTailActiveModel {
        event_id: Set(event_id),
        early_joiners: Set(i64::try_from(early).unwrap_or(i64::MAX)),
        last_rank: Set(None),
        last_turn: Set(None),
    };
    insert_once(
        txn,
        QueueTail::insert(fresh).on_conflict(
            OnConflict::column(QueueTailColumn::EventId)
                .do_nothing()
                .to_owned(),
        ),
    )
    .await?;
    locked()
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the waiting line's tail".into()))
}

/// The place a late joiner takes at `now`: the next rank, and the next turn
/// after the last one given out (early or late), or now. The caller writes
/// both, with the tail locked.
pub fn next_place(
    event: &EventModel,
    tail: &QueueTailModel,
    now: DateTime<Utc>,
) -> (i64, DateTime<Utc>) {
    let last_early_turn = u64::try_from(tail.early_joiners - 1)
        .ok()
        .map(|ahead| early_turn(event, ahead));
    let turn = match tail.last_turn.max(last_early_turn) {
        Some(previous) => (previous + interval(event)).max(now),
        None => now,
    };
    (tail.last_rank.map_or(LATE, |rank| rank + 1), turn)
}

/// After a change of the on-sale time or the admission rate: the early
/// joiners are drawn again, from the start.
pub async fn redraw(txn: &DatabaseTransaction, event_id: Uuid) -> Result<(), DbErr> {
    QueueDraw::delete_by_id(event_id).exec(txn).await?;
    QueueTail::delete_by_id(event_id).exec(txn).await?;
    QueueEntry::update_many()
        .col_expr(
            QueueEntryColumn::AdmitAt,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(QueueEntryColumn::EventId.eq(event_id))
        .filter(QueueEntryColumn::Rank.lt(LATE))
        .filter(QueueEntryColumn::AdmitAt.is_not_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// An `INSERT … ON CONFLICT DO NOTHING`: a row already there is no error.
async fn insert_once<C: ConnectionTrait, A: ActiveModelTrait>(
    db: &C,
    insert: sea_orm::Insert<A>,
) -> Result<(), DbErr> {
    match insert.exec_without_returning(db).await {
        Ok(_) | Err(DbErr::RecordNotInserted) => Ok(()),
        Err(error) => Err(error),
    }
}
