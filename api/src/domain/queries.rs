//! Reads several use-cases share: an event by id, bookings and holds with
//! their seats.

use std::collections::HashMap;

use entity::prelude::*;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{
    Error,
    sale::{self, BookingDetails, HoldDetails},
};

/// The event, read now.
pub async fn event(db: &DatabaseConnection, id: Uuid) -> Result<EventModel, Error> {
    Event::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("event"))
}

/// The event, read now, if `organizer_id` organizes it; else `not_yours`.
pub async fn own_event(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
    not_yours: &'static str,
) -> Result<EventModel, Error> {
    let event = event(db, event_id).await?;
    if event.organizer_id != organizer_id {
        return Err(Error::Forbidden(not_yours));
    }
    Ok(event)
}

/// An event and its ticket types, in their order.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetails {
    pub event: EventModel,
    pub ticket_types: Vec<TicketTypeModel>,
}

/// The event with its ticket types, read now.
pub async fn event_details<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<EventDetails, Error> {
    let event = Event::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("event"))?;
    Ok(with_types(db, vec![event]).await?.remove(0))
}

/// Events with their ticket types, looked up for all of them at once.
pub async fn with_types<C: ConnectionTrait>(
    db: &C,
    events: Vec<EventModel>,
) -> Result<Vec<EventDetails>, DbErr> {
    let ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
    let mut types = inventory::types_of(db, &ids).await?;
    Ok(events
        .into_iter()
        .map(|event| EventDetails {
            ticket_types: types.remove(&event.id).unwrap_or_default(),
            event,
        })
        .collect())
}

/// Bookings with their seats, looked up for all of them at once.
pub async fn with_seats<C: ConnectionTrait>(
    db: &C,
    bookings: Vec<BookingModel>,
) -> Result<Vec<BookingDetails>, Error> {
    let holds: HashMap<Uuid, Uuid> = if bookings.is_empty() {
        HashMap::new()
    } else {
        Hold::find()
            .filter(HoldColumn::BookingId.is_in(bookings.iter().map(|b| b.id)))
            .all(db)
            .await?
            .into_iter()
            .filter_map(|hold| Some((hold.booking_id?, hold.id)))
            .collect()
    };
    let hold_ids: Vec<Uuid> = holds.values().copied().collect();
    let mut seats = of_holds(db, &hold_ids).await?;
    let booking_ids: Vec<Uuid> = bookings.iter().map(|b| b.id).collect();
    let mut lines = inventory::booking_lines(db, &booking_ids).await?;
    let types = types_in(db, lines.values().flatten()).await?;
    let mut payments = super::refunds::of_bookings(db, &bookings).await?;
    Ok(bookings
        .into_iter()
        .map(|booking| {
            let seats = holds
                .get(&booking.id)
                .and_then(|hold| seats.remove(hold))
                .unwrap_or_default();
            let items = sale::items(&lines.remove(&booking.id).unwrap_or_default(), &types);
            BookingDetails {
                payment: payments.remove(&booking.id),
                booking,
                items,
                seats,
            }
        })
        .collect())
}

/// Holds with their items and seats, looked up for all of them at once.
pub async fn holds_with_seats<C: ConnectionTrait>(
    db: &C,
    holds: Vec<HoldModel>,
) -> Result<Vec<HoldDetails>, Error> {
    let ids: Vec<Uuid> = holds.iter().map(|hold| hold.id).collect();
    let mut seats = of_holds(db, &ids).await?;
    let mut lines = inventory::hold_lines(db, &ids).await?;
    let types = types_in(db, lines.values().flatten()).await?;
    Ok(holds
        .into_iter()
        .map(|hold| HoldDetails {
            items: sale::items(&lines.remove(&hold.id).unwrap_or_default(), &types),
            seats: seats.remove(&hold.id).unwrap_or_default(),
            hold,
        })
        .collect())
}

/// The ticket types the lines are of.
async fn types_in<'a, C: ConnectionTrait>(
    db: &C,
    lines: impl Iterator<Item = &'a inventory::Line>,
) -> Result<Vec<TicketTypeModel>, DbErr> {
    let ids: std::collections::BTreeSet<Uuid> = lines.map(|line| line.ticket_type_id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    TicketType::find()
        .filter(TicketTypeColumn::Id.is_in(ids))
        .all(db)
        .await
}

pub async fn details<C: ConnectionTrait>(
    db: &C,
    booking_id: Uuid,
) -> Result<BookingDetails, Error> {
    let booking = Booking::find_by_id(booking_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("booking"))?;
    let mut all = with_seats(db, vec![booking]).await?;
    all.pop().ok_or(Error::NotFound("booking"))
}

/// The seats each hold took (kept after the hold ends), in rank order.
pub async fn of_holds<C: ConnectionTrait>(
    db: &C,
    hold_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<SeatModel>>, DbErr> {
    let mut by_hold: HashMap<Uuid, Vec<SeatModel>> = HashMap::new();
    if hold_ids.is_empty() {
        return Ok(by_hold);
    }
    let links = HoldSeat::find()
        .filter(HoldSeatColumn::HoldId.is_in(hold_ids.iter().copied()))
        .all(db)
        .await?;
    if links.is_empty() {
        return Ok(by_hold);
    }
    let seats: HashMap<Uuid, SeatModel> = Seat::find()
        .filter(SeatColumn::Id.is_in(links.iter().map(|l| l.seat_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|seat| (seat.id, seat))
        .collect();
    for link in links {
        if let Some(seat) = seats.get(&link.seat_id) {
            by_hold.entry(link.hold_id).or_default().push(seat.clone());
        }
    }
    for seats in by_hold.values_mut() {
        seats.sort_by_key(|seat| seat.position);
    }
    Ok(by_hold)
}
