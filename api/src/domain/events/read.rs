use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use entity::prelude::*;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::input::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::domain::{
    Error, Services, ValidationErrors,
    queries::{self, EventDetails},
    sale::BookingDetails,
};

pub struct Page {
    pub items: Vec<EventDetails>,
    pub next_cursor: Option<String>,
}

/// The event as this process knows it (`box_office`): at most a moment behind
/// a change made elsewhere, never behind one made here.
pub async fn get(services: &Services, id: Uuid) -> Result<EventDetails, Error> {
    services.box_office.event(id).await
}

/// Keyset pagination over `(starts_at, id)`: stable under inserts, no OFFSET scans.
pub async fn list(
    db: &DatabaseConnection,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Page, Error> {
    let mut errors = ValidationErrors::default();
    let limit = match limit.map(str::parse::<u64>) {
        None => Some(DEFAULT_PAGE_SIZE),
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => Some(n),
        Some(_) => {
            errors.add(
                "limit",
                format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
            );
            None
        }
    };
    let after = match cursor.map(decode_cursor) {
        None => None,
        Some(Some(position)) => Some(position),
        Some(None) => {
            errors.add("cursor", "is not a cursor this api returned");
            None
        }
    };
    let (Some(limit), true) = (limit, errors.is_empty()) else {
        return Err(errors.into());
    };
    let mut query = Event::find()
        .order_by_asc(EventColumn::StartsAt)
        .order_by_asc(EventColumn::Id)
        .limit(limit + 1);
    if let Some((starts_at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(EventColumn::StartsAt.gt(starts_at))
                .add(
                    Condition::all()
                        .add(EventColumn::StartsAt.eq(starts_at))
                        .add(EventColumn::Id.gt(id)),
                ),
        );
    }
    let mut items = query.all(db).await?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| encode_cursor(last.starts_at, last.id))
    } else {
        None
    };
    let items = queries::with_types(db, items).await?;
    Ok(Page { items, next_cursor })
}

fn encode_cursor(starts_at: DateTime<Utc>, id: Uuid) -> String {
    B64.encode(format!("{}|{id}", starts_at.to_rfc3339()))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(B64.decode(cursor).ok()?).ok()?;
    let (starts_at, id) = raw.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(starts_at)
            .ok()?
            .with_timezone(&Utc),
        Uuid::parse_str(id).ok()?,
    ))
}

/// The owner's view of who is coming.
pub async fn attendees(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Vec<(BookingDetails, UserModel)>, Error> {
    let not_yours = "only the event's organizer may see its bookings";
    queries::own_event(db, organizer_id, event_id, not_yours).await?;
    let rows = Booking::find()
        .filter(BookingColumn::EventId.eq(event_id))
        .order_by_asc(BookingColumn::CreatedAt)
        .order_by_asc(BookingColumn::Id)
        .find_also_related(User)
        .all(db)
        .await?;
    let (bookings, customers): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .filter_map(|(booking, user)| Some((booking, user?)))
        .unzip();
    let bookings = queries::with_seats(db, bookings).await?;
    Ok(bookings.into_iter().zip(customers).collect())
}
