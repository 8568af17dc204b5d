//! Booking and cancelling. Every path keeps, at every commit,
//! `available + held + booked == total`, with `booked_tickets` the sum of
//! confirmed bookings. A general-admission booking takes its tickets straight
//! from `available`; a seated one is a hold confirmed in the same transaction
//! (`holds`).

use entity::prelude::*;
use inventory::{Count, move_tickets};

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Services, begin_write,
    box_office::{Answer, Order, Taking},
    holds,
    idempotency::Remember,
    now, outbox,
    queries::{details, with_seats},
    sale::{BookingDetails, Selection, confirmation},
};

/// Books tickets for a customer, or fails having written nothing.
pub async fn book(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    selection: Selection,
    remember: Option<Remember<BookingDetails>>,
) -> Result<BookingDetails, Error> {
    let quantity = match selection {
        Selection::Quantity(quantity) => quantity,
        Selection::Seats(_) => {
            return holds::book_through_hold(services, customer_id, event_id, selection, remember)
                .await;
        }
    };
    let result = services
        .box_office
        .refusing_sold_out(event_id, quantity, async {
            book_in_batch(services, customer_id, event_id, quantity, remember).await
        })
        .await;
    if let Err(Error::SoldOut { .. }) = &result {
        services.observer.refused_sold_out();
    }
    result
}

/// In the event's next batch (`box_office`); an event behind a waiting room
/// through a hold of its own instead.
async fn book_in_batch(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    quantity: i32,
    remember: Option<Remember<BookingDetails>>,
) -> Result<BookingDetails, Error> {
    let booking = BookingModel {
        id: Uuid::now_v7(),
        event_id,
        user_id: customer_id,
        quantity,
        status: BookingStatus::Confirmed,
        created_at: now(),
        cancelled_at: None,
    };
    let order = Order {
        customer_id,
        quantity,
        taking: Taking::Booking {
            booking: booking.clone(),
            remember: remember.clone(),
        },
        request_id: services.request_id.clone(),
    };
    match services.box_office.take(event_id, order).await? {
        Answer::Booked { seats } => {
            services.observer.booked();
            Ok(BookingDetails { booking, seats })
        }
        Answer::SoldOut { available } => Err(Error::SoldOut { available }),
        Answer::ClaimLost => Err(Error::StillInFlight),
        Answer::Held { .. } | Answer::HoldExists { .. } => Err(Error::Internal(anyhow::anyhow!(
            "a booking's batch answered as for a hold"
        ))),
        Answer::NotHere => {
            match super::box_office::why_not_sold(&services.db, event_id, true).await {
                Error::NeedsTransaction => {
                    holds::book_through_hold(
                        services,
                        customer_id,
                        event_id,
                        Selection::Quantity(quantity),
                        remember,
                    )
                    .await
                }
                why => Err(why),
            }
        }
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
    Event::find_by_id(booking.event_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
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
    move_tickets(
        cancelled.event_id,
        cancelled.quantity,
        Count::Booked,
        Count::Available,
    )
    .exec(&txn)
    .await?;
    let details = details(&txn, booking_id).await?;
    let mut freed = Vec::new();
    if let Some(hold) = Hold::find()
        .filter(HoldColumn::BookingId.eq(booking_id))
        .one(&txn)
        .await?
    {
        freed = inventory::free_seats(&txn, hold.id, SeatStatus::Booked).await?;
    }
    let offers = inventory::waitlist::offer_returned(&txn, cancelled.event_id).await?;
    let ids = outbox::write(
        &txn,
        services,
        vec![outbox::Notice {
            kind: NotificationKind::BookingCancelled,
            ..confirmation(&cancelled)
        }],
    )
    .await?;
    txn.commit().await?;
    services.observer.booking_cancelled();
    outbox::enqueue(services, ids);
    super::announce(services, cancelled.event_id, freed);
    super::after_commit::offered(services, offers);
    Ok(details)
}
