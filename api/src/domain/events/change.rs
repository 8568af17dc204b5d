use entity::prelude::*;
use platform::EventChange;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use super::{EventChanges, input::check_order, lock_own_event};
use crate::domain::{
    Error, Services, ValidationErrors, begin_write, event_updates, now,
    queries::{self, EventDetails},
};

/// Applies a patch as the owning organizer. Holding the event row lock for the
/// whole transaction makes the capacity change and the fan-out list consistent
/// with concurrent bookings.
pub async fn update(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    changes: EventChanges,
) -> Result<EventDetails, Error> {
    let event = update_event(services, organizer_id, event_id, changes).await?;
    queries::event_details(&services.db, event.id).await
}

async fn update_event(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    changes: EventChanges,
) -> Result<EventModel, Error> {
    let txn = begin_write(&services.db).await?;
    let event = lock_own_event(
        &txn,
        event_id,
        organizer_id,
        "only the event's organizer may change it",
    )
    .await?;
    if event.status == EventStatus::Cancelled {
        return Err(Error::Conflict(
            "the event is cancelled and can no longer be changed".into(),
        ));
    }
    let hold_minutes = changes.hold_minutes.filter(|m| *m != event.hold_minutes);
    let offer_minutes = changes.offer_minutes.filter(|m| *m != event.offer_minutes);
    let sale = changes.sale.clone();
    let (changes, new_total) = diff(&event, changes)?;
    let new_total = new_total.filter(|t| *t != event.total_tickets);
    let taken = event.held_tickets + event.booked_tickets;
    if new_total.is_some() && event.seated {
        return Err(Error::Conflict(
            "a seated event's tickets are its seats; its seat map cannot be changed".into(),
        ));
    }
    if let Some(total) = new_total
        && total < taken
    {
        return Err(Error::Conflict(format!(
            "{taken} tickets are already booked or held; total_tickets cannot go below that"
        )));
    }
    if changes.is_empty()
        && new_total.is_none()
        && hold_minutes.is_none()
        && offer_minutes.is_none()
        && sale.on_sale_at.is_none()
        && sale.waiting_room.is_none()
        && sale.refund_until.is_none()
    {
        return Ok(event);
    }
    let mut active: EventActiveModel = event.clone().into();
    for change in &changes {
        match change.clone() {
            EventChange::Title { new, .. } => active.title = Set(new),
            EventChange::Venue { new, .. } => active.venue = Set(new),
            EventChange::Description { new, .. } => active.description = Set(new),
            EventChange::StartsAt { new, .. } => active.starts_at = Set(new),
            EventChange::EndsAt { new, .. } => active.ends_at = Set(new),
        }
    }
    if let Some(total) = new_total {
        resize_the_only_type(&txn, event_id, total - event.total_tickets).await?;
    }
    if let Some(minutes) = hold_minutes {
        active.hold_minutes = Set(minutes);
    }
    if let Some(minutes) = offer_minutes {
        active.offer_minutes = Set(minutes);
    }
    // Early joiners' turns follow from both: drawn again from the start.
    let redraw = sale.on_sale_at.is_some() || sale.waiting_room.is_some();
    if let Some(at) = sale.on_sale_at {
        active.on_sale_at = Set(Some(at));
    }
    if let Some(at) = sale.refund_until {
        active.refund_until = Set(Some(at));
    }
    if let Some(room) = sale.waiting_room {
        active.waiting_room_enabled = Set(room.enabled);
        active.admit_per_minute = Set(room.admit_per_minute);
        active.pass_minutes = Set(room.pass_minutes);
    }
    if !changes.is_empty() {
        active.calendar_sequence = Set(event.calendar_sequence.saturating_add(1));
    }
    active.updated_at = Set(now());
    let updated = active.update(&txn).await?;
    if redraw {
        inventory::waiting_room::redraw(&txn, event.id).await?;
    }
    if !changes.is_empty() {
        let told = [inventory::webhooks::EventData::from(&updated)];
        inventory::webhooks::publish(
            &txn,
            event_id,
            inventory::webhooks::Kind::EventUpdated,
            &told,
        )
        .await?;
    }
    // More capacity: the waitlist first.
    let offers = match new_total {
        Some(total) if total > event.total_tickets => {
            inventory::waitlist::offer_returned(&txn, event_id).await?
        }
        _ => Vec::new(),
    };

    let mut notification_ids = Vec::new();
    if !changes.is_empty() {
        let customers: Vec<Uuid> = Booking::find()
            .select_only()
            .column(BookingColumn::UserId)
            .distinct()
            .filter(BookingColumn::EventId.eq(event_id))
            .filter(BookingColumn::Status.eq(BookingStatus::Confirmed))
            .into_tuple()
            .all(&txn)
            .await?;
        notification_ids =
            event_updates::notify(&txn, services, event_id, customers, changes).await?;
    }
    txn.commit().await?;
    let after = services.after_commit().notify(notification_ids);
    services.publish(after.offered(&offers).changed(event_id, Vec::new()));
    let updated = if offers.is_empty() {
        updated
    } else {
        queries::event(&services.db, event_id).await?
    };
    Ok(updated)
}

/// Lists what really changes, old and new, checking the times against the event
/// as it stands. `total_tickets` is returned apart: customers are not told about
/// capacity changes.
fn diff(
    event: &EventModel,
    asked: EventChanges,
) -> Result<(Vec<EventChange>, Option<i32>), ValidationErrors> {
    let mut changes = Vec::new();
    if let Some(new) = asked.title.filter(|new| *new != event.title) {
        let old = event.title.clone();
        changes.push(EventChange::Title { old, new });
    }
    if let Some(new) = asked.venue.filter(|new| *new != event.venue) {
        let old = event.venue.clone();
        changes.push(EventChange::Venue { old, new });
    }
    if let Some(new) = asked.description.filter(|new| *new != event.description) {
        let old = event.description.clone();
        changes.push(EventChange::Description { old, new });
    }
    let starts_at = asked.starts_at.unwrap_or(event.starts_at);
    let ends_at = asked.ends_at.unwrap_or(event.ends_at);
    let mut errors = ValidationErrors::default();
    check_order(&mut errors, starts_at, ends_at);
    if !errors.is_empty() {
        return Err(errors);
    }
    if starts_at != event.starts_at {
        let old = event.starts_at;
        changes.push(EventChange::StartsAt {
            old,
            new: starts_at,
        });
    }
    if ends_at != event.ends_at {
        let old = event.ends_at;
        changes.push(EventChange::EndsAt { old, new: ends_at });
    }
    Ok((changes, asked.total_tickets))
}

/// `total_tickets` changes the quantity of an event with one ticket type;
/// with several, each type's quantity is its own.
async fn resize_the_only_type(
    txn: &sea_orm::DatabaseTransaction,
    event_id: Uuid,
    delta: i32,
) -> Result<(), Error> {
    let types = inventory::event_types(txn, event_id).await?;
    let [only] = types.as_slice() else {
        return Err(Error::Conflict(
            "this event sells several ticket types: change each type's quantity instead".into(),
        ));
    };
    inventory::resize_type(txn, event_id, only.id, delta).await?;
    Ok(())
}
