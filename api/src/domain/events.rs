use std::collections::BTreeSet;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::EventChange;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Services, ValidationErrors, begin_write, now, outbox,
    sale::BookingDetails,
    seating::{self, SeatMap, SeatMapInput},
    validation,
};

pub const MAX_TICKETS: i64 = 1_000_000;
const TITLE_MAX_CHARS: usize = 200;
const VENUE_MAX_CHARS: usize = 200;
const DESCRIPTION_MAX_CHARS: usize = 5_000;
pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;
pub const DEFAULT_HOLD_MINUTES: i64 = 10;
pub const MAX_HOLD_MINUTES: i64 = 60;
pub const DEFAULT_OFFER_MINUTES: i64 = 30;
pub const MAX_OFFER_MINUTES: i64 = 1_440;

/// A new event, every field checked.
pub struct NewEvent {
    title: String,
    description: Option<String>,
    venue: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    total_tickets: i32,
    hold_minutes: i32,
    offer_minutes: i32,
    seating: Option<SeatMap>,
    sale: SaleSettings,
}

/// When tickets go on sale, and whether through a waiting room.
#[derive(Debug, Clone, Default)]
pub struct SaleSettings {
    pub on_sale_at: Option<DateTime<Utc>>,
    pub waiting_room: Option<WaitingRoomSettings>,
}

#[derive(Debug, Clone, Copy)]
pub struct WaitingRoomSettings {
    pub enabled: bool,
    pub admit_per_minute: i32,
    pub pass_minutes: i32,
}

impl WaitingRoomSettings {
    pub const MAX_ADMIT_PER_MINUTE: i64 = 600_000;
    pub const MAX_PASS_MINUTES: i64 = 120;

    /// Checks each setting, adding to `errors`; defaults: 60 a minute, 10
    /// minutes a pass.
    pub fn parse(
        errors: &mut ValidationErrors,
        enabled: bool,
        admit_per_minute: Option<i64>,
        pass_minutes: Option<i64>,
    ) -> Option<Self> {
        let admit = validation::count(
            errors,
            "waiting_room.admit_per_minute",
            admit_per_minute.unwrap_or(60),
            Self::MAX_ADMIT_PER_MINUTE,
        );
        let pass = validation::count(
            errors,
            "waiting_room.pass_minutes",
            pass_minutes.unwrap_or(10),
            Self::MAX_PASS_MINUTES,
        );
        Some(Self {
            enabled,
            admit_per_minute: admit?,
            pass_minutes: pass?,
        })
    }
}

impl NewEvent {
    /// Checks every field, adding to `errors` (which may already hold the
    /// caller's, such as unreadable times, given here as `None`), so a client
    /// learns every problem at once. With a seat map, the tickets are its seats
    /// and `total_tickets` may be left out.
    #[expect(clippy::too_many_arguments, reason = "one per field of the request")]
    pub fn parse(
        mut errors: ValidationErrors,
        title: &str,
        description: Option<String>,
        venue: &str,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
        total_tickets: Option<i64>,
        hold_minutes: Option<i64>,
        offer_minutes: Option<i64>,
        seating: Option<SeatMapInput>,
        sale: SaleSettings,
    ) -> Result<Self, ValidationErrors> {
        let title = validation::text(&mut errors, "title", title, TITLE_MAX_CHARS);
        let venue = validation::text(&mut errors, "venue", venue, VENUE_MAX_CHARS);
        let description = self::description(&mut errors, description);
        let hold_minutes =
            self::hold_minutes(&mut errors, hold_minutes.unwrap_or(DEFAULT_HOLD_MINUTES));
        let offer_minutes =
            self::offer_minutes(&mut errors, offer_minutes.unwrap_or(DEFAULT_OFFER_MINUTES));
        let seating = seating.and_then(|map| SeatMap::parse(&mut errors, map));
        let total_tickets = match (total_tickets, &seating) {
            (None, None) => {
                errors.add(
                    "total_tickets",
                    "is required for an event without a seat map",
                );
                None
            }
            (Some(total), Some(map)) if total != i64::from(map.seat_count()) => {
                errors.add(
                    "total_tickets",
                    format!(
                        "must equal the seat map's {} seats, or be left out",
                        map.seat_count()
                    ),
                );
                None
            }
            (_, Some(map)) => Some(map.seat_count()),
            (Some(total), None) => ticket_count(&mut errors, total),
        };
        if let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) {
            check_order(&mut errors, starts_at, ends_at);
        }
        match (
            title,
            venue,
            starts_at,
            ends_at,
            total_tickets,
            hold_minutes,
            offer_minutes,
        ) {
            (
                Some(title),
                Some(venue),
                Some(starts_at),
                Some(ends_at),
                Some(total_tickets),
                Some(hold_minutes),
                Some(offer_minutes),
            ) if errors.is_empty() => Ok(Self {
                title,
                description,
                venue,
                starts_at,
                ends_at,
                total_tickets,
                hold_minutes,
                offer_minutes,
                seating,
                sale,
            }),
            _ => Err(errors),
        }
    }
}

/// What an organizer asks to change, each given field checked on its own; how
/// it fits the event as it stands is checked by [`update`].
#[derive(Debug)]
pub struct EventChanges {
    title: Option<String>,
    /// `Some(None)`: remove the description.
    description: Option<Option<String>>,
    venue: Option<String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    total_tickets: Option<i32>,
    hold_minutes: Option<i32>,
    offer_minutes: Option<i32>,
    sale: SaleSettings,
}

impl EventChanges {
    /// As [`NewEvent::parse`], for the fields given; an empty description
    /// removes it.
    #[expect(clippy::too_many_arguments, reason = "one per field of the request")]
    pub fn parse(
        mut errors: ValidationErrors,
        title: Option<&str>,
        description: Option<String>,
        venue: Option<&str>,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
        total_tickets: Option<i64>,
        hold_minutes: Option<i64>,
        offer_minutes: Option<i64>,
        sale: SaleSettings,
    ) -> Result<Self, ValidationErrors> {
        let changes = Self {
            title: title.and_then(|t| validation::text(&mut errors, "title", t, TITLE_MAX_CHARS)),
            description: description.map(|d| self::description(&mut errors, Some(d))),
            venue: venue.and_then(|v| validation::text(&mut errors, "venue", v, VENUE_MAX_CHARS)),
            starts_at,
            ends_at,
            total_tickets: total_tickets.and_then(|t| ticket_count(&mut errors, t)),
            hold_minutes: hold_minutes.and_then(|m| self::hold_minutes(&mut errors, m)),
            offer_minutes: offer_minutes.and_then(|m| self::offer_minutes(&mut errors, m)),
            sale,
        };
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

pub struct Page {
    pub items: Vec<EventModel>,
    pub next_cursor: Option<String>,
}

fn ticket_count(errors: &mut ValidationErrors, raw: i64) -> Option<i32> {
    validation::count(errors, "total_tickets", raw, MAX_TICKETS)
}

fn hold_minutes(errors: &mut ValidationErrors, raw: i64) -> Option<i32> {
    validation::count(errors, "hold_minutes", raw, MAX_HOLD_MINUTES)
}

fn offer_minutes(errors: &mut ValidationErrors, raw: i64) -> Option<i32> {
    validation::count(errors, "offer_minutes", raw, MAX_OFFER_MINUTES)
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
    event: NewEvent,
) -> Result<EventModel, Error> {
    let NewEvent {
        title,
        description,
        venue,
        starts_at,
        ends_at,
        total_tickets: total,
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
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    if let Some(map) = &seating {
        seating::create_seats(&txn, event.id, map).await?;
    }
    txn.commit().await?;
    Ok(event)
}

/// The event as this process knows it (`box_office`): at most a moment behind
/// a change made elsewhere, never behind one made here.
pub async fn get(services: &Services, id: Uuid) -> Result<EventModel, Error> {
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
        active.total_tickets = Set(total);
        active.available_tickets = Set(total - taken);
    }
    if let Some(minutes) = hold_minutes {
        active.hold_minutes = Set(minutes);
    }
    if let Some(minutes) = offer_minutes {
        active.offer_minutes = Set(minutes);
    }
    if let Some(at) = sale.on_sale_at {
        active.on_sale_at = Set(Some(at));
    }
    if let Some(room) = sale.waiting_room {
        active.waiting_room_enabled = Set(room.enabled);
        active.admit_per_minute = Set(room.admit_per_minute);
        active.pass_minutes = Set(room.pass_minutes);
    }
    active.updated_at = Set(now());
    let updated = active.update(&txn).await?;
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
            super::event_updates::notify(&txn, services, event_id, customers, changes).await?;
    }
    txn.commit().await?;
    outbox::enqueue(services, notification_ids);
    super::announce(services, event_id, Vec::new());
    let updated = if offers.is_empty() {
        updated
    } else {
        super::after_commit::offered(services, offers);
        super::queries::event(&services.db, event_id).await?
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
    // Active holds end with the event; every seat is free again.
    Hold::update_many()
        .col_expr(HoldColumn::Status, Expr::value(HoldStatus::Released))
        .col_expr(HoldColumn::EndedAt, Expr::value(Some(now)))
        .filter(HoldColumn::EventId.eq(event_id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .exec(&txn)
        .await?;
    Seat::update_many()
        .col_expr(SeatColumn::Status, Expr::value(SeatStatus::Available))
        .col_expr(SeatColumn::HoldId, Expr::value(Option::<Uuid>::None))
        .filter(SeatColumn::EventId.eq(event_id))
        .filter(SeatColumn::Status.ne(SeatStatus::Available))
        .exec(&txn)
        .await?;
    let mut active: EventActiveModel = event.clone().into();
    active.status = Set(EventStatus::Cancelled);
    active.available_tickets = Set(event.total_tickets);
    active.held_tickets = Set(0);
    active.booked_tickets = Set(0);
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;

    super::event_updates::drop_waiting(&txn, event_id).await?;
    let customers: BTreeSet<Uuid> = cancelled.iter().map(|b| b.user_id).collect();
    let notices = outbox::to_each(customers, NotificationKind::EventCancelled, event_id, None);
    let ids = outbox::write(&txn, services, notices).await?;
    txn.commit().await?;
    outbox::enqueue(services, ids);
    // Every seat is free again; subscribers re-read the map for the seats.
    super::announce(services, event_id, Vec::new());
    Ok(updated)
}

/// The owner's view of who is coming.
pub async fn attendees(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Vec<(BookingDetails, UserModel)>, Error> {
    let event = super::queries::event(db, event_id).await?;
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
    let (bookings, customers): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .filter_map(|(booking, user)| Some((booking, user?)))
        .unzip();
    let bookings = super::queries::with_seats(db, bookings).await?;
    Ok(bookings.into_iter().zip(customers).collect())
}
