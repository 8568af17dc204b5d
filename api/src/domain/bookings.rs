//! Booking and cancelling. Every path keeps, at every commit,
//! `available + held + booked == total`, with `booked_tickets` the sum of
//! confirmed bookings. Tickets are taken by `checkout`.

use entity::prelude::*;
use inventory::{Count, move_tickets, per_type};

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Services, begin_write, checkout,
    idempotency::Remember,
    now, outbox,
    queries::{details, with_seats},
    refunds,
    sale::{Ask, BookingDetails, confirmation},
};

/// Books tickets for a customer, or fails having written nothing.
pub async fn book(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    ask: Ask,
    remember: Option<Remember<BookingDetails>>,
) -> Result<BookingDetails, Error> {
    let order = checkout::Order {
        customer_id,
        selection: ask.selection,
        promo_code: ask.promo_code,
        kind: checkout::Kind::Booking { remember },
    };
    match checkout::take(services, event_id, order).await? {
        checkout::Taken::Booked(details) => Ok(details),
        checkout::Taken::Held(_) => Err(Error::Internal(anyhow::anyhow!(
            "a booking was taken as a hold"
        ))),
    }
}

pub async fn list_own(
    db: &DatabaseConnection,
    customer_id: Uuid,
) -> Result<Vec<BookingDetails>, Error> {
    let bookings = Booking::find()
        .filter(BookingColumn::UserId.eq(customer_id))
        .order_by_desc(BookingColumn::CreatedAt)
        .order_by_desc(BookingColumn::Id)
        .all(db)
        .await?;
    with_seats(db, bookings).await
}

/// Visible to the customer who made it and the organizer of its event; to anyone
/// else it does not exist.
pub async fn get(
    db: &DatabaseConnection,
    viewer: Uuid,
    booking_id: Uuid,
) -> Result<BookingDetails, Error> {
    let details = details(db, booking_id).await?;
    let booking = &details.booking;
    if booking.user_id == viewer {
        return Ok(details);
    }
    let organizes = Event::find_by_id(booking.event_id)
        .filter(EventColumn::OrganizerId.eq(viewer))
        .one(db)
        .await?
        .is_some();
    if organizes {
        Ok(details)
    } else {
        Err(Error::NotFound("booking"))
    }
}

/// Cancels a customer's own booking and returns its tickets, exactly once: a
/// repeat (or a concurrent duplicate) finds it already cancelled and changes nothing.
/// A paid booking is refunded in full, and only until the event's
/// `refund_until` (by default, its start).
pub async fn cancel(
    services: &Services,
    customer_id: Uuid,
    booking_id: Uuid,
) -> Result<BookingDetails, Error> {
    let txn = begin_write(&services.db).await?;
    let booking = Booking::find_by_id(booking_id)
        .filter(BookingColumn::UserId.eq(customer_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("booking"))?;
    if booking.status == BookingStatus::Cancelled {
        return details(&txn, booking_id).await;
    }
    // Lock order is event, then booking, on every path that touches both; the
    // reverse order here could deadlock against an event-wide change.
    let event = Event::find_by_id(booking.event_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("event"))?;
    // A paid booking is cancelled only with its refund.
    let refund_until = event.refund_until.unwrap_or(event.starts_at);
    if booking.payment_id.is_some() && now() > refund_until {
        return Err(Error::RefundWindowClosed(refund_until));
    }
    let cancelled = Booking::update_many()
        .col_expr(BookingColumn::Status, Expr::value(BookingStatus::Cancelled))
        .col_expr(BookingColumn::CancelledAt, Expr::value(Some(now())))
        .filter(BookingColumn::Id.eq(booking_id))
        .filter(BookingColumn::Status.eq(BookingStatus::Confirmed))
        .exec_with_returning(&txn)
        .await?
        .into_iter()
        .next();
    let Some(cancelled) = cancelled else {
        // A concurrent cancel won; it returned the tickets.
        drop(txn);
        return details(&services.db, booking_id).await;
    };
    let returned = inventory::booking_lines(&txn, &[booking_id])
        .await?
        .remove(&booking_id)
        .unwrap_or_default();
    let returned = per_type(&returned);
    move_tickets(
        &txn,
        cancelled.event_id,
        &returned,
        Count::Booked,
        Count::Available,
    )
    .await?;
    inventory::return_promo_uses(&txn, cancelled.promo_code_id, cancelled.promo_uses).await?;
    inventory::issued::cancel(&txn, &[booking_id]).await?;
    let told = [inventory::webhooks::BookingData::from(&cancelled)];
    inventory::webhooks::publish(
        &txn,
        cancelled.event_id,
        inventory::webhooks::Kind::BookingCancelled,
        &told,
    )
    .await?;
    let mut freed = Vec::new();
    if let Some(hold) = Hold::find()
        .filter(HoldColumn::BookingId.eq(booking_id))
        .one(&txn)
        .await?
    {
        freed = inventory::free_seats(&txn, hold.id, SeatStatus::Booked).await?;
    }
    let offers = inventory::waitlist::offer_returned(&txn, cancelled.event_id).await?;
    let refunded = refunds::cancelled_bookings(
        &txn,
        std::slice::from_ref(&cancelled),
        RefundReason::BookingCancelled,
        now(),
    )
    .await?;
    let mut ids = outbox::write(
        &txn,
        services,
        vec![outbox::Notice {
            kind: NotificationKind::BookingCancelled,
            ..confirmation(&cancelled)
        }],
    )
    .await?;
    ids.extend(refunded);
    let details = details(&txn, booking_id).await?;
    txn.commit().await?;
    services.observer.booking_cancelled();
    let after = services.after_commit().notify(ids).offered(&offers);
    services.publish(after.changed(cancelled.event_id, freed));
    Ok(details)
}
