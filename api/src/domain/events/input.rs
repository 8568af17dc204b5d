//! What a new event, or a change to one, may say: each field checked, every
//! problem reported at once.

use chrono::{DateTime, Utc};

use crate::domain::{
    ValidationErrors,
    money::Currency,
    seating::{SeatMap, SeatMapInput},
    ticket_types::{NewTicketType, TicketTypeDraft},
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
    pub(super) title: String,
    pub(super) description: Option<String>,
    pub(super) venue: String,
    pub(super) starts_at: DateTime<Utc>,
    pub(super) ends_at: DateTime<Utc>,
    pub(super) total_tickets: i32,
    /// `None`: one free type holding every ticket.
    pub(super) ticket_types: Option<Vec<NewTicketType>>,
    pub(super) currency: Currency,
    pub(super) hold_minutes: i32,
    pub(super) offer_minutes: i32,
    pub(super) seating: Option<SeatMap>,
    pub(super) sale: SaleSettings,
}

/// When tickets go on sale, and whether through a waiting room.
#[derive(Debug, Clone, Default)]
pub struct SaleSettings {
    pub on_sale_at: Option<DateTime<Utc>>,
    pub waiting_room: Option<WaitingRoomSettings>,
    /// Paid bookings cancelled by their customers are refunded until then
    /// (SPEC §14); unset, until the event starts.
    pub refund_until: Option<DateTime<Utc>>,
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
        ticket_types: Option<Vec<TicketTypeDraft>>,
        currency: Option<&str>,
        hold_minutes: Option<i64>,
        offer_minutes: Option<i64>,
        seating: Option<SeatMapInput>,
        sale: SaleSettings,
    ) -> Result<Self, ValidationErrors> {
        let currency = match currency {
            Some(raw) => Currency::parse(&mut errors, "currency", raw),
            None => Some(Currency::DEFAULT),
        };
        let title = validation::text(&mut errors, "title", title, TITLE_MAX_CHARS);
        let venue = validation::text(&mut errors, "venue", venue, VENUE_MAX_CHARS);
        let description = self::description(&mut errors, description);
        let hold_minutes =
            self::hold_minutes(&mut errors, hold_minutes.unwrap_or(DEFAULT_HOLD_MINUTES));
        let offer_minutes =
            self::offer_minutes(&mut errors, offer_minutes.unwrap_or(DEFAULT_OFFER_MINUTES));
        let seating = seating.and_then(|map| SeatMap::parse(&mut errors, map));
        let ticket_types = match (ticket_types, &seating) {
            (None, Some(map)) => {
                for (i, (_, named)) in map.sections().enumerate() {
                    if named.is_some() {
                        errors.add(
                            &format!("seating.sections[{i}].ticket_type"),
                            "names a type, but the event lists no ticket_types",
                        );
                    }
                }
                None
            }
            (None, None) => None,
            (Some(drafts), Some(map)) => {
                NewTicketType::parse_all(&mut errors, drafts, false, MAX_TICKETS)
                    .map(|types| seated_types(&mut errors, types, map))
            }
            (Some(drafts), None) => {
                NewTicketType::parse_all(&mut errors, drafts, true, MAX_TICKETS)
            }
        };
        let total_tickets = match (total_tickets, &seating) {
            _ if let Some(types) = &ticket_types => {
                let sum: i64 = types.iter().filter_map(|t| t.quantity).map(i64::from).sum();
                match total_tickets {
                    Some(total) if total != sum => {
                        errors.add(
                            "total_tickets",
                            format!("must equal the ticket types' {sum} tickets, or be left out"),
                        );
                        None
                    }
                    _ => ticket_count(&mut errors, sum),
                }
            }
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
            currency,
            hold_minutes,
            offer_minutes,
        ) {
            (
                Some(title),
                Some(venue),
                Some(starts_at),
                Some(ends_at),
                Some(total_tickets),
                Some(currency),
                Some(hold_minutes),
                Some(offer_minutes),
            ) if errors.is_empty() => Ok(Self {
                title,
                description,
                venue,
                starts_at,
                ends_at,
                total_tickets,
                ticket_types,
                currency,
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
    pub(super) title: Option<String>,
    /// `Some(None)`: remove the description.
    pub(super) description: Option<Option<String>>,
    pub(super) venue: Option<String>,
    pub(super) starts_at: Option<DateTime<Utc>>,
    pub(super) ends_at: Option<DateTime<Utc>>,
    pub(super) total_tickets: Option<i32>,
    pub(super) hold_minutes: Option<i32>,
    pub(super) offer_minutes: Option<i32>,
    pub(super) sale: SaleSettings,
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

/// A seated event's types: each section names one of them, each has at least
/// one section, and a type's quantity is its sections' seats (given, it must
/// agree).
fn seated_types(
    errors: &mut ValidationErrors,
    mut types: Vec<NewTicketType>,
    map: &SeatMap,
) -> Vec<NewTicketType> {
    let mut seats = vec![0; types.len()];
    for (i, (section_seats, named)) in map.sections().enumerate() {
        let field = format!("seating.sections[{i}].ticket_type");
        match named.and_then(|name| types.iter().position(|t| t.name == name)) {
            Some(index) => seats[index] += section_seats,
            None => errors.add(&field, "must name one of the event's ticket_types"),
        }
    }
    for (i, (ticket_type, seats)) in types.iter_mut().zip(seats).enumerate() {
        let field = format!("ticket_types[{i}].quantity");
        match ticket_type.quantity {
            _ if seats == 0 => errors.add(&field, "no section sells this type"),
            Some(given) if given != seats => errors.add(
                &field,
                format!("must equal its sections' {seats} seats, or be left out"),
            ),
            _ => ticket_type.quantity = Some(seats),
        }
    }
    types
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

pub(super) fn check_order(
    errors: &mut ValidationErrors,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) {
    if ends_at <= starts_at {
        errors.add("ends_at", "must be after starts_at");
    }
}
