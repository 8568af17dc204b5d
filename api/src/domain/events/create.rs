use entity::prelude::*;
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use uuid::Uuid;

use super::{NewEvent, WaitingRoomSettings};
use crate::domain::{
    Error, begin_write, now,
    queries::{self, EventDetails},
    sale::MAX_QUANTITY,
    seating,
    ticket_types::NewTicketType,
};

/// The one type of an event created without types: free, all its tickets.
pub const GENERAL_ADMISSION: &str = "General admission";

pub async fn create(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event: NewEvent,
) -> Result<EventDetails, Error> {
    let event = create_event(db, organizer_id, event).await?;
    queries::event_details(db, event.id).await
}

async fn create_event(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event: NewEvent,
) -> Result<EventModel, Error> {
    let NewEvent {
        title,
        description,
        venue,
        starts_at,
        ends_at,
        total_tickets: total,
        ticket_types,
        currency,
        hold_minutes,
        offer_minutes,
        seating,
        sale,
    } = event;
    let room = sale.waiting_room.unwrap_or(WaitingRoomSettings {
        enabled: false,
        admit_per_minute: 60,
        pass_minutes: 10,
    });
    let now = now();
    let txn = begin_write(db).await?;
    let event = EventActiveModel {
        id: Set(Uuid::now_v7()),
        organizer_id: Set(organizer_id),
        title: Set(title),
        description: Set(description),
        venue: Set(venue),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
        total_tickets: Set(total),
        available_tickets: Set(total),
        held_tickets: Set(0),
        booked_tickets: Set(0),
        hold_minutes: Set(hold_minutes),
        offer_minutes: Set(offer_minutes),
        on_sale_at: Set(sale.on_sale_at),
        waiting_room_enabled: Set(room.enabled),
        admit_per_minute: Set(room.admit_per_minute),
        pass_minutes: Set(room.pass_minutes),
        seated: Set(seating.is_some()),
        status: Set(EventStatus::Scheduled),
        currency: Set(currency.code().to_owned()),
        refund_until: Set(sale.refund_until),
        calendar_sequence: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let ticket_types = ticket_types.unwrap_or_else(|| {
        vec![NewTicketType {
            name: GENERAL_ADMISSION.to_owned(),
            description: None,
            price: 0,
            quantity: Some(total),
            tax_rate: 0,
            sales_start: None,
            sales_end: None,
            max_per_order: MAX_QUANTITY as i32,
            hidden: false,
        }]
    });
    let mut type_ids = Vec::with_capacity(ticket_types.len());
    for (position, ticket_type) in ticket_types.into_iter().enumerate() {
        let quantity = ticket_type.quantity.unwrap_or(total);
        let name = ticket_type.name.clone();
        let row = ticket_type.into_row(event.id, position as i32, quantity, now);
        type_ids.push((name, row.id));
        TicketTypeActiveModel::from(row)
            .reset_all()
            .insert(&txn)
            .await?;
    }
    if let Some(map) = &seating {
        // Each section's named type; without names, the one type.
        let section_types: Vec<Uuid> = map
            .sections()
            .map(|(_, named)| {
                type_ids
                    .iter()
                    .find(|(name, _)| named.is_none_or(|named| named == name))
                    .map(|(_, id)| *id)
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("a section without its type")))
            })
            .collect::<Result<_, _>>()?;
        seating::create_seats(&txn, event.id, map, &section_types).await?;
    }
    txn.commit().await?;
    Ok(event)
}
