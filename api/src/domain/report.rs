//! What an event sold and took, for its organizer (SPEC §14): the report's
//! sums, and one attendee row per ticket for a spreadsheet.
//!
//! Money is read from the payments and refunds that moved it; revenue per
//! type, tax and discounts from the confirmed bookings' items, at the prices
//! they were taken at. Prices include tax: a line of `amount` at `rate`
//! percent carries `amount × rate / (100 + rate)` of tax, rounded half up
//! per line.

use std::collections::{BTreeMap, HashMap};

use entity::prelude::*;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Error, queries};

const NOT_YOURS: &str = "only the event's organizer may see its sales";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub currency: String,
    pub ticket_types: Vec<TypeSales>,
    /// Taken by payments (Stripe and manual), refunded or not.
    pub gross: i64,
    /// Refunded, or being refunded.
    pub refunded: i64,
    pub net: i64,
    /// By tax rate (hundredths of a percent): the confirmed bookings' revenue
    /// split into net and tax.
    pub tax: Vec<TaxLine>,
    /// Promo code discounts on the confirmed bookings.
    pub discounts: i64,
    pub bookings: u64,
    pub cancelled: u64,
    /// Tickets admitted at the door.
    pub checked_in: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSales {
    pub id: Uuid,
    pub name: String,
    pub sold: i32,
    pub held: i32,
    pub available: i32,
    /// Of its confirmed bookings, after discounts.
    pub revenue: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxLine {
    /// Hundredths of a percent (1950 is 19.5 %).
    pub rate: i32,
    pub net: i64,
    pub tax: i64,
}

/// The tax included in `amount` at `rate` hundredths of a percent.
pub fn included_tax(amount: i64, rate: i32) -> i64 {
    let rate = i128::from(rate);
    if rate == 0 {
        return 0;
    }
    let numerator = i128::from(amount) * rate;
    let denominator = 10_000 + rate;
    ((2 * numerator + denominator) / (2 * denominator)) as i64
}

pub async fn sales(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Report, Error> {
    let event = queries::own_event(db, organizer_id, event_id, NOT_YOURS).await?;
    let types = inventory::event_types(db, event_id).await?;
    let bookings = Booking::find()
        .filter(BookingColumn::EventId.eq(event_id))
        .all(db)
        .await?;
    let confirmed: Vec<Uuid> = bookings
        .iter()
        .filter(|b| b.status == BookingStatus::Confirmed)
        .map(|b| b.id)
        .collect();
    let lines = inventory::booking_lines(db, &confirmed).await?;
    let rates: HashMap<Uuid, i32> = types.iter().map(|t| (t.id, t.tax_rate)).collect();
    let mut revenue: HashMap<Uuid, i64> = HashMap::new();
    let mut tax: BTreeMap<i32, TaxLine> = BTreeMap::new();
    let mut discounts = 0;
    for line in lines.values().flatten() {
        let quantity = i64::from(line.quantity);
        let amount = quantity * (line.unit_price - line.discount).max(0);
        discounts += quantity * line.discount;
        *revenue.entry(line.ticket_type_id).or_default() += amount;
        let rate = rates.get(&line.ticket_type_id).copied().unwrap_or(0);
        let included = included_tax(amount, rate);
        let by_rate = tax.entry(rate).or_insert(TaxLine {
            rate,
            net: 0,
            tax: 0,
        });
        by_rate.net += amount - included;
        by_rate.tax += included;
    }
    let payments = Payment::find()
        .filter(PaymentColumn::EventId.eq(event_id))
        .filter(PaymentColumn::Status.is_in([PaymentStatus::Succeeded, PaymentStatus::Refunded]))
        .all(db)
        .await?;
    let gross = payments.iter().map(|p| p.amount).sum();
    let refunded = Refund::find()
        .filter(RefundColumn::EventId.eq(event_id))
        .filter(RefundColumn::Status.ne(RefundStatus::Failed))
        .all(db)
        .await?
        .iter()
        .map(|r| r.amount)
        .sum::<i64>();
    Ok(Report {
        currency: event.currency,
        ticket_types: types
            .into_iter()
            .map(|t| TypeSales {
                revenue: revenue.get(&t.id).copied().unwrap_or(0),
                id: t.id,
                name: t.name,
                sold: t.booked,
                held: t.held,
                available: t.available,
            })
            .collect(),
        gross,
        refunded,
        net: gross - refunded,
        tax: tax.into_values().collect(),
        discounts,
        bookings: confirmed.len() as u64,
        cancelled: (bookings.len() - confirmed.len()) as u64,
        checked_in: super::door::checked_in(db, event_id).await?,
    })
}

/// One ticket of a booking, for the attendee list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendeeRow {
    /// `None` for a booking made before tickets were issued per unit.
    pub ticket_id: Option<Uuid>,
    pub booking_id: Uuid,
    pub name: String,
    pub email: String,
    pub ticket_type: String,
    pub seat: Option<String>,
    /// What was paid for it, after any discount.
    pub price: i64,
    pub status: BookingStatus,
    pub checked_in_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One row per ticket of every booking of the event, oldest booking first.
pub async fn attendees(
    db: &DatabaseConnection,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Vec<AttendeeRow>, Error> {
    let (details, customers): (Vec<_>, Vec<_>) =
        super::events::attendees(db, organizer_id, event_id)
            .await?
            .into_iter()
            .unzip();
    let booking_ids: Vec<Uuid> = details.iter().map(|d| d.booking.id).collect();
    let mut tickets = inventory::issued::of_bookings(db, &booking_ids).await?;
    let mut out = Vec::new();
    for (details, customer) in details.into_iter().zip(customers) {
        let row = |item: &super::sale::Item, seat: Option<String>| AttendeeRow {
            ticket_id: None,
            booking_id: details.booking.id,
            name: customer.name.clone(),
            email: customer.email.clone(),
            ticket_type: item.name.clone(),
            seat,
            price: (item.unit_price - item.discount).max(0),
            status: details.booking.status,
            checked_in_at: None,
        };
        match tickets.remove(&details.booking.id) {
            Some(tickets) => {
                for ticket in tickets {
                    let Some(item) = details
                        .items
                        .iter()
                        .find(|item| item.ticket_type_id == ticket.ticket_type_id)
                    else {
                        continue;
                    };
                    let seat = ticket.seat_id.and_then(|id| {
                        details
                            .seats
                            .iter()
                            .find(|s| s.id == id)
                            .map(|s| s.label.clone())
                    });
                    out.push(AttendeeRow {
                        ticket_id: Some(ticket.id),
                        checked_in_at: ticket.checked_in_at,
                        ..row(item, seat)
                    });
                }
            }
            // Booked before tickets were issued: one row per unit.
            None => {
                for item in &details.items {
                    for _ in 0..item.quantity {
                        out.push(row(item, None));
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::included_tax;

    #[test]
    fn tax_included_in_a_price_rounds_half_up_per_line() {
        assert_eq!(included_tax(11_900, 1900), 1900);
        assert_eq!(included_tax(1000, 0), 0);
        // 10.00 at 19.5 %: 163.18… cents of tax.
        assert_eq!(included_tax(1000, 1950), 163);
        assert_eq!(included_tax(0, 2000), 0);
    }
}
