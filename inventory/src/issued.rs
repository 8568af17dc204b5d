//! Tickets issued (SPEC §15): one per unit of a confirmed booking, on a
//! seated event one per seat, written in the booking's own transaction by
//! every path that makes a booking (a batch, an order's own transaction, a
//! hold's confirmation, a payment), and cancelled with their booking or
//! event.

use std::collections::HashMap;

use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use uuid::Uuid;

use crate::Line;

/// A booking to issue tickets for.
pub struct Issue<'a> {
    pub booking: &'a BookingModel,
    pub lines: &'a [Line],
    /// Its seats (none on general admission), each of its section's type.
    pub seats: &'a [SeatModel],
}

/// Writes the tickets of these bookings (a few dozen rows per statement).
pub async fn issue<C: ConnectionTrait>(db: &C, bookings: &[Issue<'_>]) -> Result<(), DbErr> {
    let mut rows = Vec::new();
    for Issue {
        booking,
        lines,
        seats,
    } in bookings
    {
        let mut taken = vec![false; seats.len()];
        for line in lines.iter() {
            for _ in 0..line.quantity {
                // A seat of the line's type not yet given to a ticket.
                let seat = seats.iter().enumerate().find(|(i, seat)| {
                    !taken[*i]
                        && seat
                            .ticket_type_id
                            .is_none_or(|type_id| type_id == line.ticket_type_id)
                });
                let seat_id = seat.map(|(i, seat)| {
                    taken[i] = true;
                    seat.id
                });
                rows.push(TicketActiveModel::from(TicketModel {
                    id: Uuid::now_v7(),
                    booking_id: booking.id,
                    event_id: booking.event_id,
                    ticket_type_id: line.ticket_type_id,
                    seat_id,
                    status: TicketStatus::Valid,
                    checked_in_at: None,
                    checked_in_by: None,
                    created_at: booking.created_at,
                }));
            }
        }
    }
    platform::db::insert_all(db, rows.into_iter().map(|row| row.reset_all()).collect()).await
}

/// These bookings' tickets, by booking, each booking's in the order they were
/// issued.
///
/// Sorted here, not by the database: with `ORDER BY id` PostgreSQL may prefer
/// a scan of the whole table in id order to the `booking_id` index whenever it
/// has no statistics on a table that has grown since its last `ANALYZE` (every
/// on-sale's first minute on a new database), turning a read of a few rows into
/// one of every ticket.
pub async fn of_bookings<C: ConnectionTrait>(
    db: &C,
    booking_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<TicketModel>>, DbErr> {
    let mut tickets: HashMap<Uuid, Vec<TicketModel>> = HashMap::new();
    if booking_ids.is_empty() {
        return Ok(tickets);
    }
    for ticket in Ticket::find()
        .filter(TicketColumn::BookingId.is_in(booking_ids.iter().copied()))
        .all(db)
        .await?
    {
        tickets.entry(ticket.booking_id).or_default().push(ticket);
    }
    for of_one in tickets.values_mut() {
        of_one.sort_by_key(|ticket| ticket.id);
    }
    Ok(tickets)
}

/// Cancels the tickets of these bookings.
pub async fn cancel<C: ConnectionTrait>(db: &C, booking_ids: &[Uuid]) -> Result<(), DbErr> {
    if booking_ids.is_empty() {
        return Ok(());
    }
    Ticket::update_many()
        .col_expr(TicketColumn::Status, Expr::value(TicketStatus::Cancelled))
        .filter(TicketColumn::BookingId.is_in(booking_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// Cancels every ticket of an event (its cancellation).
pub async fn cancel_event<C: ConnectionTrait>(db: &C, event_id: Uuid) -> Result<(), DbErr> {
    Ticket::update_many()
        .col_expr(TicketColumn::Status, Expr::value(TicketStatus::Cancelled))
        .filter(TicketColumn::EventId.eq(event_id))
        .exec(db)
        .await?;
    Ok(())
}
