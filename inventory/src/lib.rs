//! Ticket accounting shared by the api and the worker: the three counts an
//! event's tickets are in, the one update that moves tickets between them, and
//! held tickets going back on sale. A hold ends once: its customer releases it
//! (the api), it expires (the worker's timer or sweep, or a confirmation that
//! came too late), or it is confirmed into a booking. Each ending is a
//! conditional update of the hold's status, so whichever comes first moves the
//! tickets and the others find the hold no longer active and change nothing.
//!
//! Lock order, on every path: the hold, then its event, then seats.

pub mod after_commit;
pub mod issued;
pub mod outbox;
pub mod payments;
pub mod signing;
pub mod tickets;
pub mod waiting_room;
pub mod waitlist;
pub mod webhooks;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::db::begin_write;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

pub use after_commit::AfterCommit;
pub use tickets::{
    Count, Line, booking_lines, event_types, hold_lines, move_tickets, new_booking, new_hold,
    per_type, resize_event, resize_type, return_promo_uses, take_promo_uses, take_tickets,
    type_names, types_of, write_booking_lines, write_hold_lines,
};

/// The active holds of these customers on the event, by customer (at most one
/// each: a unique index says so).
pub async fn active_holds<C: ConnectionTrait>(
    db: &C,
    event_id: Uuid,
    customers: Vec<Uuid>,
) -> Result<HashMap<Uuid, HoldModel>, DbErr> {
    if customers.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(Hold::find()
        .filter(HoldColumn::EventId.eq(event_id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .filter(HoldColumn::UserId.is_in(customers))
        .all(db)
        .await?
        .into_iter()
        .map(|hold| (hold.user_id, hold))
        .collect())
}

/// The customer's active hold on the event, if any.
pub async fn active_hold<C: ConnectionTrait>(
    db: &C,
    customer_id: Uuid,
    event_id: Uuid,
) -> Result<Option<HoldModel>, DbErr> {
    Ok(active_holds(db, event_id, vec![customer_id])
        .await?
        .remove(&customer_id))
}

/// A hold that ended here, the seats it gave back, and the waitlist offers its
/// tickets went to.
#[derive(Debug, Clone)]
pub struct Ended {
    pub hold: HoldModel,
    pub seat_ids: Vec<Uuid>,
    pub offers: Vec<waitlist::Offer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// By its customer, at any time while active.
    Released,
    /// Only once `expires_at` has passed.
    Expired,
}

/// Ends an active hold and returns its tickets and seats, in one transaction.
/// `None`: it was not active (or, for [`Ending::Expired`], not yet due), and
/// nothing changed.
pub async fn end_hold(
    db: &DatabaseConnection,
    hold_id: Uuid,
    ending: Ending,
    now: DateTime<Utc>,
) -> Result<Option<Ended>, DbErr> {
    let txn = begin_write(db).await?;
    let ended = end_hold_in(&txn, hold_id, ending, now).await?;
    txn.commit().await?;
    Ok(ended)
}

/// [`end_hold`] inside the caller's transaction.
pub async fn end_hold_in(
    txn: &DatabaseTransaction,
    hold_id: Uuid,
    ending: Ending,
    now: DateTime<Utc>,
) -> Result<Option<Ended>, DbErr> {
    let status = match ending {
        Ending::Released => HoldStatus::Released,
        Ending::Expired => HoldStatus::Expired,
    };
    let mut update = Hold::update_many()
        .col_expr(HoldColumn::Status, Expr::value(status))
        .col_expr(HoldColumn::EndedAt, Expr::value(Some(now)))
        .filter(HoldColumn::Id.eq(hold_id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active));
    if ending == Ending::Expired {
        update = update.filter(HoldColumn::ExpiresAt.lte(now));
    }
    let Some(hold) = update.exec_with_returning(txn).await?.into_iter().next() else {
        return Ok(None);
    };
    let lines = hold_lines(txn, &[hold.id])
        .await?
        .remove(&hold.id)
        .unwrap_or_default();
    move_tickets(
        txn,
        hold.event_id,
        &per_type(&lines),
        Count::Held,
        Count::Available,
    )
    .await?;
    return_promo_uses(txn, hold.promo_code_id, hold.promo_uses).await?;
    let seat_ids = free_seats(txn, hold.id, SeatStatus::Held).await?;
    let offers = waitlist::offer_returned(txn, hold.event_id).await?;
    Ok(Some(Ended {
        hold,
        seat_ids,
        offers,
    }))
}

/// An event's cancellation: every active hold ends (released), every seat is
/// free again, and every type's tickets are available. The caller, with the
/// event row locked, sets the event's counts.
pub async fn end_every_hold(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Hold::update_many()
        .col_expr(HoldColumn::Status, Expr::value(HoldStatus::Released))
        .col_expr(HoldColumn::EndedAt, Expr::value(Some(now)))
        .filter(HoldColumn::EventId.eq(event_id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .exec(txn)
        .await?;
    Seat::update_many()
        .col_expr(SeatColumn::Status, Expr::value(SeatStatus::Available))
        .col_expr(SeatColumn::HoldId, Expr::value(Option::<Uuid>::None))
        .filter(SeatColumn::EventId.eq(event_id))
        .filter(SeatColumn::Status.ne(SeatStatus::Available))
        .exec(txn)
        .await?;
    TicketType::update_many()
        .col_expr(
            TicketTypeColumn::Available,
            Expr::col(TicketTypeColumn::Quantity),
        )
        .col_expr(TicketTypeColumn::Held, Expr::value(0))
        .col_expr(TicketTypeColumn::Booked, Expr::value(0))
        .filter(TicketTypeColumn::EventId.eq(event_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Makes the seats a hold has in `status` available again (none, on a
/// general-admission event). Returns their ids.
pub async fn free_seats(
    txn: &DatabaseTransaction,
    hold_id: Uuid,
    status: SeatStatus,
) -> Result<Vec<Uuid>, DbErr> {
    let freed = Seat::update_many()
        .col_expr(SeatColumn::Status, Expr::value(SeatStatus::Available))
        .col_expr(SeatColumn::HoldId, Expr::value(Option::<Uuid>::None))
        .filter(SeatColumn::HoldId.eq(hold_id))
        .filter(SeatColumn::Status.eq(status))
        .exec_with_returning(txn)
        .await?;
    Ok(freed.into_iter().map(|seat| seat.id).collect())
}

/// Turns a confirmed hold's seats from held to booked (none, on a
/// general-admission event). Returns their ids.
pub async fn book_held_seats(txn: &DatabaseTransaction, hold_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    let booked = Seat::update_many()
        .col_expr(SeatColumn::Status, Expr::value(SeatStatus::Booked))
        .filter(SeatColumn::HoldId.eq(hold_id))
        .filter(SeatColumn::Status.eq(SeatStatus::Held))
        .exec_with_returning(txn)
        .await?;
    Ok(booked.into_iter().map(|seat| seat.id).collect())
}

/// Expires up to `limit` holds whose time is up, oldest first, each in its own
/// transaction. Returns those this call expired.
pub async fn expire_due(
    db: &DatabaseConnection,
    due_by: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Ended>, DbErr> {
    let due: Vec<Uuid> = Hold::find()
        .select_only()
        .column(HoldColumn::Id)
        // A literal, so that PostgreSQL's generic plan can use the partial index
        // `holds_active_expires_at_idx` rather than read every hold ever made.
        .filter(Expr::cust("holds.status = 'active'"))
        .filter(HoldColumn::ExpiresAt.lte(due_by))
        .order_by_asc(HoldColumn::ExpiresAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let mut expired = Vec::new();
    for hold_id in due {
        if let Some(ended) = end_hold(db, hold_id, Ending::Expired, Utc::now()).await? {
            expired.push(ended);
        }
    }
    Ok(expired)
}
