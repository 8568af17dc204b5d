//! The text of each notification email, rendered from current database rows.

use entity::prelude::*;

use crate::jobs::FieldChange;

pub struct Email {
    pub subject: String,
    pub body: String,
}

fn when(event: &EventModel) -> String {
    event
        .starts_at
        .format("%A %-d %B %Y, %H:%M UTC")
        .to_string()
}

pub fn booking_confirmed(
    customer: &UserModel,
    event: &EventModel,
    booking: &BookingModel,
) -> Email {
    Email {
        subject: format!("Booking confirmed: {}", event.title),
        body: format!(
            "Hello {name},\n\n\
             your booking is confirmed.\n\n\
             Event:    {title}\n\
             Venue:    {venue}\n\
             Starts:   {starts}\n\
             Tickets:  {quantity}\n\
             Booking:  {booking_id}\n\n\
             See you there!\n",
            name = customer.name,
            title = event.title,
            venue = event.venue,
            starts = when(event),
            quantity = booking.quantity,
            booking_id = booking.id,
        ),
    }
}

pub fn booking_cancelled(
    customer: &UserModel,
    event: &EventModel,
    booking: &BookingModel,
) -> Email {
    Email {
        subject: format!("Booking cancelled: {}", event.title),
        body: format!(
            "Hello {name},\n\n\
             your booking {booking_id} for {title} ({starts}, {venue}) has been cancelled \
             and its {quantity} ticket(s) released.\n",
            name = customer.name,
            booking_id = booking.id,
            title = event.title,
            starts = when(event),
            venue = event.venue,
            quantity = booking.quantity,
        ),
    }
}

pub fn event_updated(customer: &UserModel, event: &EventModel, changes: &[FieldChange]) -> Email {
    let lines: String = changes
        .iter()
        .map(|c| format!("  {}: {} → {}\n", c.field, c.old, c.new))
        .collect();
    Email {
        subject: format!("Event changed: {}", event.title),
        body: format!(
            "Hello {name},\n\n\
             an event you hold tickets for has changed:\n\n\
             {lines}\n\
             Event:  {title}\n\
             Venue:  {venue}\n\
             Starts: {starts}\n\n\
             Your booking stays valid.\n",
            name = customer.name,
            title = event.title,
            venue = event.venue,
            starts = when(event),
        ),
    }
}
