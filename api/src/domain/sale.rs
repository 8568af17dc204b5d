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

/// A booking, its tickets by type and the seats it has (none on general
/// admission).
#[derive(Debug, Clone)]
pub struct BookingDetails {
    pub booking: BookingModel,
    pub items: Vec<Item>,
    pub seats: Vec<SeatModel>,
    /// `None`: free.
    pub payment: Option<super::refunds::BookingPayment>,
}

/// So many tickets of one type, at the unit price they were taken at, less
/// a promo code's discount on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub ticket_type_id: Uuid,
    pub name: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub discount: i64,
}

/// The lines with their types' names.
pub fn items(lines: &[inventory::Line], types: &[TicketTypeModel]) -> Vec<Item> {
    lines
        .iter()
        .map(|line| Item {
            ticket_type_id: line.ticket_type_id,
            name: types
                .iter()
                .find(|t| t.id == line.ticket_type_id)
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            discount: line.discount,
        })
        .collect()
}

impl Item {
    pub fn line(&self) -> inventory::Line {
        inventory::Line {
            ticket_type_id: self.ticket_type_id,
            quantity: self.quantity,
            unit_price: self.unit_price,
            discount: self.discount,
        }
    }
}

/// The lines of the items.
pub fn lines(items: &[Item]) -> Vec<inventory::Line> {
    items.iter().map(Item::line).collect()
}

pub fn quantity(raw: i64) -> Result<i32, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    super::validation::count(&mut errors, "quantity", raw, MAX_QUANTITY).ok_or(errors)
}

/// What a customer asks for: a number of tickets of the one type on sale,
/// so many of each type, or particular seats (each of its section's type).
/// By quantity or type, a seated event gives the best available seats.
#[derive(Debug, Clone)]
pub enum Selection {
    Quantity(i32),
    Items(Vec<(Uuid, i32)>),
    Seats(Vec<Uuid>),
}

/// What a customer asks to hold or book: the tickets, and a promo code.
#[derive(Debug, Clone)]
pub struct Ask {
    pub selection: Selection,
    pub promo_code: Option<String>,
}

impl Selection {
    /// `quantity` defaults to 1; `items` name distinct types, 1 to 10
    /// tickets in all; `seat_ids` are 1 to 10 distinct seats. One of them.
    pub fn parse(
        quantity: Option<i64>,
        items: Option<Vec<(Uuid, i64)>>,
        seat_ids: Option<Vec<Uuid>>,
    ) -> Result<Self, ValidationErrors> {
        match (quantity, items, seat_ids) {
            (Some(_), Some(_), _) | (_, Some(_), Some(_)) => Err(ValidationErrors::single(
                "items",
                "give one of quantity, items or seat_ids",
            )),
            (Some(_), None, Some(_)) => Err(ValidationErrors::single(
                "seat_ids",
                "give either quantity or seat_ids, not both",
            )),
            (None, Some(items), None) => Self::items(items),
            (_, None, Some(ids)) => {
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
            (asked, None, None) => Ok(Selection::Quantity(self::quantity(asked.unwrap_or(1))?)),
        }
    }

    fn items(items: Vec<(Uuid, i64)>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut total: i64 = 0;
        let mut checked = Vec::with_capacity(items.len());
        for (i, (ticket_type_id, quantity)) in items.into_iter().enumerate() {
            let field = format!("items[{i}].quantity");
            if let Some(n) = super::validation::count(&mut errors, &field, quantity, MAX_QUANTITY) {
                total += i64::from(n);
                checked.push((ticket_type_id, n));
            }
            if !seen.insert(ticket_type_id) {
                errors.add(&format!("items[{i}].ticket_type_id"), "names a type twice");
            }
        }
        if checked.is_empty() && errors.is_empty() {
            errors.add("items", "must list at least one ticket type");
        }
        if total > MAX_QUANTITY {
            errors.add("items", format!("at most {MAX_QUANTITY} tickets in all"));
        }
        if errors.is_empty() {
            Ok(Selection::Items(checked))
        } else {
            Err(errors)
        }
    }

    /// How many tickets it asks for.
    pub fn count(&self) -> i32 {
        match self {
            Selection::Quantity(n) => *n,
            Selection::Items(items) => items.iter().map(|(_, n)| n).sum(),
            Selection::Seats(ids) => ids.len() as i32,
        }
    }
}

/// Whether a ticket type sells at `at`: inside its sales window.
pub fn type_on_sale(ticket_type: &TicketTypeModel, at: chrono::DateTime<chrono::Utc>) -> bool {
    ticket_type.sales_start.is_none_or(|start| start <= at)
        && ticket_type.sales_end.is_none_or(|end| at < end)
}

/// The priced lines a selection by quantity or by type asks for, from the
/// event's types as they stand (prices fixed now), or why it cannot be sold:
/// an unknown or hidden type, more than a type's `max_per_order`, a type
/// outside its sales window, or a bare quantity when several types are on
/// sale. Hidden types are sold only when `unlocked` (by a promo code). Seats
/// are priced by `seating`.
pub fn price(
    selection: &Selection,
    types: &[TicketTypeModel],
    at: chrono::DateTime<chrono::Utc>,
    unlocked: &[Uuid],
) -> Result<Vec<inventory::Line>, super::Error> {
    let sold = |t: &TicketTypeModel| !t.hidden || unlocked.contains(&t.id);
    let asked: Vec<(Uuid, i32)> = match selection {
        Selection::Items(items) => items.clone(),
        Selection::Quantity(n) => {
            let listed: Vec<&TicketTypeModel> = types.iter().filter(|t| sold(t)).collect();
            let on_sale: Vec<&&TicketTypeModel> =
                listed.iter().filter(|t| type_on_sale(t, at)).collect();
            let only: &TicketTypeModel = match (listed.as_slice(), on_sale.as_slice()) {
                ([only], _) => only,
                (_, [only]) => only,
                _ => {
                    return Err(ValidationErrors::single(
                        "items",
                        "this event sells several ticket types: name them in items",
                    )
                    .into());
                }
            };
            vec![(only.id, *n)]
        }
        Selection::Seats(_) => {
            return Err(super::Error::Internal(anyhow::anyhow!(
                "seats are priced by their sections"
            )));
        }
    };
    let mut lines = Vec::with_capacity(asked.len());
    for (i, (ticket_type_id, quantity)) in asked.into_iter().enumerate() {
        let field = format!("items[{i}].ticket_type_id");
        let Some(ticket_type) = types.iter().find(|t| t.id == ticket_type_id && sold(t)) else {
            return Err(
                ValidationErrors::single(&field, "no such ticket type for this event").into(),
            );
        };
        if quantity > ticket_type.max_per_order {
            let field = format!("items[{i}].quantity");
            let most = ticket_type.max_per_order;
            return Err(ValidationErrors::single(
                &field,
                format!("at most {most} of this type per order"),
            )
            .into());
        }
        if !type_on_sale(ticket_type, at) {
            return Err(super::Error::TypeNotOnSale { ticket_type_id });
        }
        lines.push(inventory::Line {
            ticket_type_id,
            quantity,
            unit_price: ticket_type.price,
            discount: 0,
        });
    }
    Ok(lines)
}

/// A hold, its tickets by type and the seats it took (none on general
/// admission).
#[derive(Debug, Clone)]
pub struct HoldDetails {
    pub hold: HoldModel,
    pub items: Vec<Item>,
    pub seats: Vec<SeatModel>,
}

pub fn confirmation(booking: &BookingModel) -> outbox::Notice {
    outbox::Notice::confirmation(booking)
}
