//! An event's ticket types after it is made (SPEC §13): listed for its
//! organizer (hidden ones too), added, changed and removed, each with the
//! event row locked so that counts move in step with sales. A type's
//! quantity moves the event's total with it; new tickets go to the waitlist
//! first.

use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{MAX_TICKETS, lock_own_event};
use crate::domain::{
    Error, Services, ValidationErrors, begin_write, now, queries,
    ticket_types::{MAX_TYPES, NewTicketType, TicketTypeChanges},
};

const NOT_YOURS: &str = "only the event's organizer may change its ticket types";

/// Every type of the organizer's event, hidden ones too, in order.
pub async fn ticket_types(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Vec<TicketTypeModel>, Error> {
    let details = queries::event_details(&services.db, event_id).await?;
    if details.event.organizer_id != organizer_id {
        return Err(Error::Forbidden(
            "only the event's organizer may see all its ticket types",
        ));
    }
    Ok(details.ticket_types)
}

/// Adds a type to a general-admission event; its tickets add to the event's.
pub async fn add_type(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    new: NewTicketType,
) -> Result<TicketTypeModel, Error> {
    let txn = begin_write(&services.db).await?;
    let event = open_event(&txn, event_id, organizer_id).await?;
    if event.seated {
        return Err(Error::Conflict(
            "a seated event's tickets are its seats; it sells one type".into(),
        ));
    }
    let types = inventory::event_types(&txn, event_id).await?;
    let mut errors = ValidationErrors::default();
    if types.len() >= MAX_TYPES {
        errors.add(
            "ticket_types",
            format!("an event sells at most {MAX_TYPES} types"),
        );
    }
    if types
        .iter()
        .any(|t| t.name.to_lowercase() == new.name.to_lowercase())
    {
        errors.add("name", "another type of this event has this name");
    }
    let quantity = new.quantity.unwrap_or(0);
    if new.quantity.is_none() {
        errors.add("quantity", "is required");
    } else if i64::from(event.total_tickets) + i64::from(quantity) > MAX_TICKETS {
        errors.add(
            "quantity",
            format!("the event would have more than {MAX_TICKETS} tickets"),
        );
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let now = now();
    let position = types.iter().map(|t| t.position + 1).max().unwrap_or(0);
    let added = TicketTypeActiveModel::from(new.into_row(event_id, position, quantity, now))
        .reset_all()
        .insert(&txn)
        .await?;
    inventory::resize_event(&txn, event_id, quantity).await?;
    finish(services, txn, event_id, quantity).await?;
    Ok(added)
}

/// Changes a type. A price applies to holds made from now on; a quantity
/// cannot go below what is held and booked.
pub async fn change_type(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    type_id: Uuid,
    changes: TicketTypeChanges,
) -> Result<TicketTypeModel, Error> {
    let txn = begin_write(&services.db).await?;
    let event = open_event(&txn, event_id, organizer_id).await?;
    let types = inventory::event_types(&txn, event_id).await?;
    let current = types
        .iter()
        .find(|t| t.id == type_id)
        .cloned()
        .ok_or(Error::NotFound("ticket type"))?;
    let mut errors = ValidationErrors::default();
    if let Some(name) = &changes.name
        && types
            .iter()
            .any(|t| t.id != type_id && t.name.to_lowercase() == name.to_lowercase())
    {
        errors.add("name", "another type of this event has this name");
    }
    let start = changes.sales_start.or(current.sales_start);
    let end = changes.sales_end.or(current.sales_end);
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        errors.add("sales_end", "must be after sales_start");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let delta = changes.quantity.map_or(0, |q| q - current.quantity);
    if delta != 0 && event.seated {
        return Err(Error::Conflict(
            "a seated event's tickets are its seats; its seat map cannot be changed".into(),
        ));
    }
    if let Some(quantity) = changes.quantity
        && quantity < current.held + current.booked
    {
        return Err(Error::Conflict(format!(
            "{} tickets of this type are held or booked; its quantity cannot go below that",
            current.held + current.booked
        )));
    }
    if i64::from(event.total_tickets) + i64::from(delta) > MAX_TICKETS {
        return Err(ValidationErrors::single(
            "quantity",
            format!("the event would have more than {MAX_TICKETS} tickets"),
        )
        .into());
    }
    let mut active: TicketTypeActiveModel = current.clone().into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(description) = changes.description {
        active.description = Set(description);
    }
    if let Some(price) = changes.price {
        active.price = Set(price);
    }
    if changes.sales_start.is_some() {
        active.sales_start = Set(start);
    }
    if changes.sales_end.is_some() {
        active.sales_end = Set(end);
    }
    if let Some(max) = changes.max_per_order {
        active.max_per_order = Set(max);
    }
    // Counts first: the update below answers with the row as it ends.
    inventory::resize_type(&txn, event_id, type_id, delta).await?;
    active.updated_at = Set(now());
    let changed = active.update(&txn).await?;
    finish(services, txn, event_id, delta).await?;
    Ok(changed)
}

/// Removes a type that was never held or booked (else it can be hidden or
/// its sales closed); an event keeps at least one.
pub async fn remove_type(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    type_id: Uuid,
) -> Result<(), Error> {
    let txn = begin_write(&services.db).await?;
    let event = open_event(&txn, event_id, organizer_id).await?;
    let types = inventory::event_types(&txn, event_id).await?;
    let current = types
        .iter()
        .find(|t| t.id == type_id)
        .cloned()
        .ok_or(Error::NotFound("ticket type"))?;
    if types.len() == 1 || event.seated {
        return Err(Error::Conflict(
            "an event sells at least one ticket type".into(),
        ));
    }
    let ever_held = HoldItem::find()
        .filter(HoldItemColumn::TicketTypeId.eq(type_id))
        .count(&txn)
        .await?
        > 0;
    let ever_booked = BookingItem::find()
        .filter(BookingItemColumn::TicketTypeId.eq(type_id))
        .count(&txn)
        .await?
        > 0;
    if ever_held || ever_booked {
        return Err(Error::Conflict(
            "tickets of this type were held or booked; hide it or end its sales instead".into(),
        ));
    }
    WaitlistEntry::update_many()
        .col_expr(
            WaitlistEntryColumn::TicketTypeId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(WaitlistEntryColumn::TicketTypeId.eq(type_id))
        .exec(&txn)
        .await?;
    TicketType::delete_by_id(type_id).exec(&txn).await?;
    inventory::resize_event(&txn, event_id, -current.quantity).await?;
    finish(services, txn, event_id, 0).await?;
    Ok(())
}

/// The organizer's event, locked, if it can still change.
async fn open_event(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    organizer_id: Uuid,
) -> Result<EventModel, Error> {
    let event = lock_own_event(txn, event_id, organizer_id, NOT_YOURS).await?;
    if event.status == EventStatus::Cancelled {
        return Err(Error::Conflict(
            "the event is cancelled and can no longer be changed".into(),
        ));
    }
    Ok(event)
}

/// New tickets (`added` > 0) go to the waitlist first; then the commit, and
/// the change announced.
async fn finish(
    services: &Services,
    txn: DatabaseTransaction,
    event_id: Uuid,
    added: i32,
) -> Result<(), Error> {
    let offers = if added > 0 {
        inventory::waitlist::offer_returned(&txn, event_id).await?
    } else {
        Vec::new()
    };
    txn.commit().await?;
    let after = services.after_commit().offered(&offers);
    services.publish(after.changed(event_id, Vec::new()));
    Ok(())
}
