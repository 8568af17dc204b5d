use inventory::webhooks;
use std::collections::BTreeSet;

use entity::prelude::*;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use uuid::Uuid;

use super::lock_own_event;
use crate::domain::{
    Error, Services, begin_write, event_updates, now, outbox,
    queries::{self, EventDetails},
    refunds,
};

/// Cancels an event as its organizer: in one transaction every confirmed booking
/// is cancelled, its tickets returned, and each affected customer gets one
/// notice; every paid booking is refunded in full. Cancelling a cancelled
/// event changes nothing and emails nobody.
pub async fn cancel(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<EventDetails, Error> {
    let event = cancel_event(services, organizer_id, event_id).await?;
    queries::event_details(&services.db, event.id).await
}

async fn cancel_event(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<EventModel, Error> {
    let txn = begin_write(&services.db).await?;
    let event = lock_own_event(
        &txn,
        event_id,
        organizer_id,
        "only the event's organizer may cancel it",
    )
    .await?;
    if event.status == EventStatus::Cancelled {
        return Ok(event);
    }
    let now = now();
    let cancelled = Booking::update_many()
        .col_expr(BookingColumn::Status, Expr::value(BookingStatus::Cancelled))
        .col_expr(BookingColumn::CancelledAt, Expr::value(Some(now)))
        .filter(BookingColumn::EventId.eq(event_id))
        .filter(BookingColumn::Status.eq(BookingStatus::Confirmed))
        .exec_with_returning(&txn)
        .await?;
    inventory::end_every_hold(&txn, event_id, now).await?;
    inventory::issued::cancel_event(&txn, event_id).await?;
    let mut active: EventActiveModel = event.clone().into();
    active.status = Set(EventStatus::Cancelled);
    active.available_tickets = Set(event.total_tickets);
    active.held_tickets = Set(0);
    active.booked_tickets = Set(0);
    active.calendar_sequence = Set(event.calendar_sequence.saturating_add(1));
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    let bookings: Vec<_> = cancelled.iter().map(webhooks::BookingData::from).collect();
    webhooks::publish(&txn, event_id, webhooks::Kind::BookingCancelled, &bookings).await?;
    let told = [webhooks::EventData::from(&updated)];
    webhooks::publish(&txn, event_id, webhooks::Kind::EventCancelled, &told).await?;

    event_updates::drop_waiting(&txn, event_id).await?;
    let customers: BTreeSet<Uuid> = cancelled.iter().map(|b| b.user_id).collect();
    let notices = outbox::to_each(customers, NotificationKind::EventCancelled, event_id, None);
    let mut ids = outbox::write(&txn, services, notices).await?;
    ids.extend(
        refunds::cancelled_bookings(&txn, &cancelled, RefundReason::EventCancelled, now).await?,
    );
    txn.commit().await?;
    // Every seat is free again; subscribers re-read the map for the seats.
    services.publish(
        services
            .after_commit()
            .notify(ids)
            .changed(event_id, Vec::new()),
    );
    Ok(updated)
}
