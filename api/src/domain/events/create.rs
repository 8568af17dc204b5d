use entity::prelude::*;
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use uuid::Uuid;

use super::{NewEvent, WaitingRoomSettings};
use crate::domain::{Error, begin_write, now, sale::MAX_QUANTITY, seating};

/// The one type of an event created without types: free, all its tickets.
pub const GENERAL_ADMISSION: &str = "General admission";

pub async fn create(
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
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let general_admission = TicketTypeActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event.id),
        position: Set(0),
        name: Set(GENERAL_ADMISSION.to_owned()),
        description: Set(None),
        price: Set(0),
        tax_rate: Set(0),
        quantity: Set(total),
        available: Set(total),
        held: Set(0),
        booked: Set(0),
        sales_start: Set(None),
        sales_end: Set(None),
        max_per_order: Set(MAX_QUANTITY as i32),
        hidden: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    if let Some(map) = &seating {
        seating::create_seats(&txn, event.id, map, general_admission.id).await?;
    }
    txn.commit().await?;
    Ok(event)
}
