//! The words of a sale, shared by every use-case that sells and by the box
//! office: what a customer asks for, what a booking or hold is with its seats,
//! the largest order, and a booking's confirmation notice.

use entity::prelude::*;
use uuid::Uuid;

use super::{ValidationErrors, outbox};

pub const MAX_QUANTITY: i64 = 10;

/// Whether the event's tickets are on sale at `at`: scheduled, and past its
/// `on_sale_at` if it has one. (A waiting room also asks for admission.)
pub fn on_sale(event: &EventModel, at: chrono::DateTime<chrono::Utc>) -> bool {
    event.status == EventStatus::Scheduled && !before_on_sale(event, at)
}

/// Whether `at` is before the event's `on_sale_at`.
pub fn before_on_sale(event: &EventModel, at: chrono::DateTime<chrono::Utc>) -> bool {
    event.on_sale_at.is_some_and(|on_sale| at < on_sale)
}

/// A booking and the seats it has (none on general admission).
#[derive(Debug, Clone)]
pub struct BookingDetails {
    pub booking: BookingModel,
    pub seats: Vec<SeatModel>,
}

pub fn quantity(raw: i64) -> Result<i32, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    super::validation::count(&mut errors, "quantity", raw, MAX_QUANTITY).ok_or(errors)
}

/// What a customer asks for: a number of tickets (best available, on a seated
/// event) or particular seats.
#[derive(Debug, Clone)]
pub enum Selection {
    Quantity(i32),
    Seats(Vec<Uuid>),
}

impl Selection {
    /// `quantity` defaults to 1; `seat_ids` are 1 to 10 distinct seats.
    pub fn parse(
        quantity: Option<i64>,
        seat_ids: Option<Vec<Uuid>>,
    ) -> Result<Self, ValidationErrors> {
        match (quantity, seat_ids) {
            (Some(_), Some(_)) => Err(ValidationErrors::single(
                "seat_ids",
                "give either quantity or seat_ids, not both",
            )),
            (_, Some(ids)) => {
                let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
                if ids.is_empty() || ids.len() > MAX_QUANTITY as usize {
                    Err(ValidationErrors::single(
                        "seat_ids",
                        format!("must list between 1 and {MAX_QUANTITY} seats"),
                    ))
                } else if distinct.len() != ids.len() {
                    Err(ValidationErrors::single("seat_ids", "lists a seat twice"))
                } else {
                    Ok(Selection::Seats(ids))
                }
            }
            (asked, None) => Ok(Selection::Quantity(self::quantity(asked.unwrap_or(1))?)),
        }
    }

    pub fn count(&self) -> i32 {
        match self {
            Selection::Quantity(n) => *n,
            Selection::Seats(ids) => ids.len() as i32,
        }
    }
}

/// A hold and the seats it took (none on general admission).
#[derive(Debug, Clone)]
pub struct HoldDetails {
    pub hold: HoldModel,
    pub seats: Vec<SeatModel>,
}

pub fn confirmation(booking: &BookingModel) -> outbox::Notice {
    outbox::Notice {
        kind: NotificationKind::BookingConfirmed,
        user_id: booking.user_id,
        event_id: booking.event_id,
        booking_id: Some(booking.id),
        hold_id: None,
        changes: None,
    }
}
