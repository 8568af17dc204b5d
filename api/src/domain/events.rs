use std::collections::BTreeSet;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, SubsecRound, Utc};
use entity::prelude::*;
use platform::EventChange;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Error, Services, ValidationErrors, begin_write, now, outbox, validation};

pub const MAX_TICKETS: i64 = 1_000_000;
const TITLE_MAX_CHARS: usize = 200;
const VENUE_MAX_CHARS: usize = 200;
const DESCRIPTION_MAX_CHARS: usize = 5_000;
pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventInput {
    #[schema(example = "Night of Rust", min_length = 1, max_length = 200)]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(example = "Hall A", min_length = 1, max_length = 200)]
    pub venue: String,
    /// RFC 3339; stored and returned in UTC.
    #[schema(example = "2030-05-01T19:00:00Z", format = DateTime)]
    pub starts_at: String,
    /// RFC 3339, after `starts_at`.
    #[schema(example = "2030-05-01T23:00:00Z", format = DateTime)]
    pub ends_at: String,
    #[schema(example = 100, minimum = 1, maximum = 1_000_000)]
    pub total_tickets: i64,
}

/// Absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// An empty string removes it.
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub venue: Option<String>,
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// Not below the tickets already sold.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub total_tickets: Option<i64>,
}

pub struct Page {
    pub items: Vec<EventModel>,
    pub next_cursor: Option<String>,
}

fn timestamp(errors: &mut ValidationErrors, field: &str, raw: &str) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(t) => Some(t.with_timezone(&Utc).trunc_subsecs(6)),
        Err(_) => {
            errors.add(
                field,
                "must be an RFC 3339 timestamp, e.g. 2030-05-01T19:30:00Z",
            );
            None
        }
    }
}

fn ticket_count(errors: &mut ValidationErrors, raw: i64) -> Option<i32> {
    if (1..=MAX_TICKETS).contains(&raw) {
        i32::try_from(raw).ok()
    } else {
        errors.add(
            "total_tickets",
            format!("must be between 1 and {MAX_TICKETS}"),
        );
        None
    }
}

fn description(errors: &mut ValidationErrors, raw: Option<String>) -> Option<String> {
    validation::checked_text(
        errors,
        "description",
        &raw?,
        validation::Lines::Multi,
        DESCRIPTION_MAX_CHARS,
    )
    .filter(|d| !d.is_empty())
}

fn check_order(errors: &mut ValidationErrors, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) {
    if ends_at <= starts_at {
        errors.add("ends_at", "must be after starts_at");
    }
}

pub async fn create(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    input: NewEventInput,
) -> Result<EventModel, Error> {
    let mut errors = ValidationErrors::default();
    let title = validation::text(&mut errors, "title", &input.title, TITLE_MAX_CHARS);
    let venue = validation::text(&mut errors, "venue", &input.venue, VENUE_MAX_CHARS);
    let description = description(&mut errors, input.description);
    let starts_at = timestamp(&mut errors, "starts_at", &input.starts_at);
    let ends_at = timestamp(&mut errors, "ends_at", &input.ends_at);
    let total = ticket_count(&mut errors, input.total_tickets);
    if let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) {
        check_order(&mut errors, starts_at, ends_at);
    }
    let (Some(title), Some(venue), Some(starts_at), Some(ends_at), Some(total), true) =
        (title, venue, starts_at, ends_at, total, errors.is_empty())
    else {
        return Err(errors.into());
    };
    let now = now();
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
        status: Set(EventStatus::Scheduled),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(event)
}

pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<EventModel, Error> {
    Event::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("event"))
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

/// Applies a patch as the owning organizer. Holding the event row lock for the
/// whole transaction makes the capacity change and the fan-out list consistent
/// with concurrent bookings.
pub async fn update(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    patch: EventPatch,
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
    let (changes, new_total) = diff(&event, patch)?;
    let sold = event.total_tickets - event.available_tickets;
    if let Some(total) = new_total
        && total < sold
    {
        return Err(Error::Conflict(format!(
            "{sold} tickets are already sold; total_tickets cannot go below that"
        )));
    }
    if changes.is_empty() && new_total.is_none_or(|t| t == event.total_tickets) {
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
        active.total_tickets = Set(total);
        active.available_tickets = Set(event.available_tickets + (total - event.total_tickets));
    }
    active.updated_at = Set(now());
    let updated = active.update(&txn).await?;

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
        let notices = event_notices(
            customers,
            NotificationKind::EventUpdated,
            event_id,
            Some(changes),
        );
        notification_ids = outbox::write(&txn, services, notices).await?;
    }
    txn.commit().await?;
    outbox::enqueue(services, notification_ids);
    Ok(updated)
}

/// Validates a patch against the current event and lists what really changes,
/// old and new. `total_tickets` is returned apart: customers are not told about
/// capacity changes.
fn diff(
    event: &EventModel,
    patch: EventPatch,
) -> Result<(Vec<EventChange>, Option<i32>), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut changes = Vec::new();
    if let Some(new) = patch
        .title
        .and_then(|t| validation::text(&mut errors, "title", &t, TITLE_MAX_CHARS))
        .filter(|new| *new != event.title)
    {
        let old = event.title.clone();
        changes.push(EventChange::Title { old, new });
    }
    if let Some(new) = patch
        .venue
        .and_then(|v| validation::text(&mut errors, "venue", &v, VENUE_MAX_CHARS))
        .filter(|new| *new != event.venue)
    {
        let old = event.venue.clone();
        changes.push(EventChange::Venue { old, new });
    }
    if patch.description.is_some() {
        let new = description(&mut errors, patch.description);
        if new != event.description {
            let old = event.description.clone();
            changes.push(EventChange::Description { old, new });
        }
    }
    let starts_at = match patch.starts_at {
        Some(raw) => timestamp(&mut errors, "starts_at", &raw),
        None => Some(event.starts_at),
    };
    let ends_at = match patch.ends_at {
        Some(raw) => timestamp(&mut errors, "ends_at", &raw),
        None => Some(event.ends_at),
    };
    if let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) {
        check_order(&mut errors, starts_at, ends_at);
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
    }
    let total = patch
        .total_tickets
        .and_then(|t| ticket_count(&mut errors, t));
    if errors.is_empty() {
        Ok((changes, total))
    } else {
        Err(errors)
    }
}

/// Locks the event row for the rest of the transaction, for its organizer only.
/// Every change to an event starts here, so the lock order is always the same.
async fn lock_own_event(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    organizer_id: Uuid,
    not_yours: &'static str,
) -> Result<EventModel, Error> {
    let event = Event::find_by_id(event_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(Error::NotFound("event"))?;
    if event.organizer_id != organizer_id {
        return Err(Error::Forbidden(not_yours));
    }
    Ok(event)
}

/// One notice per customer about the event as a whole.
fn event_notices(
    customers: impl IntoIterator<Item = Uuid>,
    kind: NotificationKind,
    event_id: Uuid,
    changes: Option<Vec<EventChange>>,
) -> Vec<outbox::Notice> {
    customers
        .into_iter()
        .map(|user_id| outbox::Notice {
            kind,
            user_id,
            event_id,
            booking_id: None,
            changes: changes.clone(),
        })
        .collect()
}

/// Cancels an event as its organizer: in one transaction every confirmed booking
/// is cancelled, its tickets returned, and each affected customer gets one
/// notice. Cancelling a cancelled event changes nothing and emails nobody.
pub async fn cancel(
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
    let returned: i32 = cancelled.iter().map(|b| b.quantity).sum();
    let mut active: EventActiveModel = event.clone().into();
    active.status = Set(EventStatus::Cancelled);
    active.available_tickets = Set(event.available_tickets + returned);
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;

    let customers: BTreeSet<Uuid> = cancelled.iter().map(|b| b.user_id).collect();
    let notices = event_notices(customers, NotificationKind::EventCancelled, event_id, None);
    let ids = outbox::write(&txn, services, notices).await?;
    txn.commit().await?;
    outbox::enqueue(services, ids);
    Ok(updated)
}

/// The owner's view of who is coming.
pub async fn attendees(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Vec<(BookingModel, UserModel)>, Error> {
    let event = get(db, event_id).await?;
    if event.organizer_id != organizer_id {
        return Err(Error::Forbidden(
            "only the event's organizer may see its bookings",
        ));
    }
    let rows = Booking::find()
        .filter(BookingColumn::EventId.eq(event_id))
        .order_by_asc(BookingColumn::CreatedAt)
        .order_by_asc(BookingColumn::Id)
        .find_also_related(User)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(booking, user)| Some((booking, user?)))
        .collect())
}
