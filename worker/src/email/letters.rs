//! What each notification says, as a [`Letter`] (rendered by `templates/`).

use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::EventChange;

use super::{Change, Fact, Letter, TicketCard};

/// A time as a person reads it.
fn readable(at: DateTime<Utc>) -> String {
    at.format("%A %-d %B %Y, %H:%M UTC").to_string()
}

fn when(event: &EventModel) -> String {
    readable(event.starts_at)
}

/// One change: a label, then old → new.
fn describe(change: &EventChange) -> Change {
    let or_none = |text: &Option<String>| text.clone().unwrap_or_else(|| "(none)".into());
    let (label, old, new) = match change {
        EventChange::Title { old, new } => ("Title", old.clone(), new.clone()),
        EventChange::Venue { old, new } => ("Venue", old.clone(), new.clone()),
        EventChange::Description { old, new } => ("Description", or_none(old), or_none(new)),
        EventChange::StartsAt { old, new } => ("Starts", readable(*old), readable(*new)),
        EventChange::EndsAt { old, new } => ("Ends", readable(*old), readable(*new)),
    };
    Change { label, old, new }
}

/// So many tickets of one type, as an email lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLine {
    pub name: String,
    pub quantity: i32,
    pub unit_price: i64,
    /// Off each ticket.
    pub discount: i64,
}

/// An amount in a currency's minor unit, written in its major unit:
/// `1950` EUR is `19.50 EUR`, `1950` JPY is `1950 JPY`.
pub fn money(minor: i64, currency: &str) -> String {
    let digits = iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2) as u32;
    if digits == 0 {
        return format!("{minor} {currency}");
    }
    let unit = 10_i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let unit = unit.unsigned_abs();
    format!(
        "{sign}{}.{:0width$} {currency}",
        minor / unit,
        minor % unit,
        width = digits as usize
    )
}

/// A line per type (its unit price, and the discount off each), then the
/// total.
fn priced(items: &[ItemLine], total: i64, currency: &str) -> Vec<Fact> {
    let mut facts: Vec<Fact> = items
        .iter()
        .map(|item| {
            let mut line = format!(
                "{} × {} at {}",
                item.quantity,
                item.name,
                money(item.unit_price, currency)
            );
            if item.discount > 0 {
                line.push_str(&format!(", {} off each", money(item.discount, currency)));
            }
            Fact::new("", line)
        })
        .collect();
    facts.push(Fact::new("Total", money(total, currency)));
    facts
}

/// The event as every letter about it names it.
fn event_facts(event: &EventModel) -> Vec<Fact> {
    vec![
        Fact::new("Event", event.title.clone()),
        Fact::new("Venue", event.venue.clone()),
        Fact::new("Starts", when(event)),
    ]
}

fn greeting(subject: String, customer: &UserModel) -> Letter {
    Letter {
        subject,
        name: customer.name.clone(),
        ..Letter::default()
    }
}

pub fn booking_confirmed(
    customer: &UserModel,
    event: &EventModel,
    booking: &BookingModel,
    items: &[ItemLine],
    seats: &[String],
    tickets: Vec<TicketCard>,
) -> Letter {
    let mut facts = event_facts(event);
    facts.push(Fact::new("Tickets", booking.quantity.to_string()));
    facts.extend(priced(items, booking.total, &booking.currency));
    if !seats.is_empty() {
        facts.push(Fact::new("Seats", seats.join(", ")));
    }
    facts.push(Fact::new("Booking", booking.id.to_string()));
    Letter {
        intro: vec!["your booking is confirmed.".into()],
        facts,
        tickets,
        outro: vec!["See you there!".into()],
        ..greeting(format!("Booking confirmed: {}", event.title), customer)
    }
}

pub fn booking_cancelled(
    customer: &UserModel,
    event: &EventModel,
    booking: &BookingModel,
    seats: &[String],
) -> Letter {
    let released = if seats.is_empty() {
        format!("its {} ticket(s) released", booking.quantity)
    } else {
        format!("its seats ({}) released", seats.join(", "))
    };
    Letter {
        intro: vec![format!(
            "your booking {booking_id} for {title} ({starts}, {venue}) has been cancelled \
             and {released}.",
            booking_id = booking.id,
            title = event.title,
            starts = when(event),
            venue = event.venue,
        )],
        ..greeting(format!("Booking cancelled: {}", event.title), customer)
    }
}

pub fn event_cancelled(customer: &UserModel, event: &EventModel) -> Letter {
    Letter {
        intro: vec![format!(
            "we are sorry: {title} ({starts}, {venue}) has been cancelled by its \
             organizer. Your booking for it is cancelled too.",
            title = event.title,
            starts = when(event),
            venue = event.venue,
        )],
        ..greeting(format!("Event cancelled: {}", event.title), customer)
    }
}

pub fn event_updated(customer: &UserModel, event: &EventModel, changes: &[EventChange]) -> Letter {
    Letter {
        intro: vec!["an event you hold tickets for has changed:".into()],
        changes: changes.iter().map(describe).collect(),
        facts: event_facts(event),
        outro: vec![
            "Your booking stays valid; the attached calendar entry replaces the one you have."
                .into(),
        ],
        ..greeting(format!("Event changed: {}", event.title), customer)
    }
}

/// Money sent back: why, and how much.
pub fn payment_refunded(customer: &UserModel, event: &EventModel, refund: &RefundModel) -> Letter {
    let why = match refund.reason {
        RefundReason::BookingCancelled => "you cancelled your booking",
        RefundReason::EventCancelled => "the event was cancelled by its organizer",
        RefundReason::TicketsGone => {
            "your payment arrived after your hold had ended, and its tickets were no longer free"
        }
        RefundReason::AmountMismatch => "the payment did not match the price of your tickets",
        RefundReason::PaidTwice => "your tickets had already been paid for",
    };
    Letter {
        intro: vec![
            format!(
                "we have refunded {amount} for {title} ({starts}, {venue}) because {why}.",
                amount = money(refund.amount, &refund.currency),
                title = event.title,
                starts = when(event),
                venue = event.venue,
            ),
            "It may take a few days to show on your statement.".into(),
        ],
        facts: vec![Fact::new("Refund", refund.id.to_string())],
        ..greeting(format!("Refund: {}", event.title), customer)
    }
}

/// A waitlist offer: tickets held for the customer, and for how long.
pub fn waitlist_offered(
    customer: &UserModel,
    event: &EventModel,
    hold: &HoldModel,
    items: &[ItemLine],
) -> Letter {
    let minutes = (hold.expires_at - hold.created_at).num_minutes();
    Letter {
        intro: vec![format!(
            "tickets came back for {title} ({starts}, {venue}), and you were next on \
             the waitlist: {quantity} ticket(s) are held for you for {minutes} minutes, \
             until {until}.",
            title = event.title,
            starts = when(event),
            venue = event.venue,
            quantity = hold.quantity,
            until = readable(hold.expires_at),
        )],
        facts: priced(items, hold.total, &hold.currency),
        outro: vec![format!(
            "Confirm them before then to book them (hold {hold_id}); after that they \
             go to the next person in line.",
            hold_id = hold.id,
        )],
        ..greeting(
            format!("Tickets are waiting for you: {}", event.title),
            customer,
        )
    }
}

/// To an organizer: an endpoint whose deliveries kept failing is switched off.
pub fn webhook_disabled(
    organizer: &UserModel,
    endpoint: &WebhookEndpointModel,
    last_error: Option<String>,
) -> Letter {
    let mut facts = vec![
        Fact::new("Endpoint", endpoint.url.clone()),
        Fact::new("Id", endpoint.id.to_string()),
    ];
    if let Some(error) = last_error {
        facts.push(Fact::new("Last error", error));
    }
    Letter {
        intro: vec![
            "deliveries to one of your webhook endpoints kept failing for days, so we have \
             switched it off: nothing more is sent to it, and what was waiting is given up."
                .into(),
        ],
        facts,
        outro: vec![format!(
            "Once it answers again, switch it back on: PATCH /api/v1/webhooks/{} with \
             {{\"enabled\": true}}.",
            endpoint.id
        )],
        ..greeting(format!("Webhook switched off: {}", endpoint.url), organizer)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::email::Email;

    fn rendered(letter: Letter) -> Email {
        Email::new(letter, None).unwrap()
    }

    pub(crate) fn event() -> EventModel {
        let at = Utc.with_ymd_and_hms(2030, 5, 1, 19, 0, 0).unwrap();
        EventModel {
            id: Uuid::now_v7(),
            organizer_id: Uuid::now_v7(),
            title: "Night of Rust".into(),
            description: None,
            venue: "Hall A".into(),
            starts_at: at,
            ends_at: at + chrono::Duration::hours(4),
            total_tickets: 10,
            available_tickets: 10,
            held_tickets: 0,
            booked_tickets: 0,
            hold_minutes: 10,
            offer_minutes: 30,
            on_sale_at: None,
            waiting_room_enabled: false,
            admit_per_minute: 60,
            pass_minutes: 10,
            seated: false,
            status: EventStatus::Scheduled,
            currency: "EUR".into(),
            refund_until: None,
            calendar_sequence: 0,
            created_at: at,
            updated_at: at,
        }
    }

    fn customer() -> UserModel {
        UserModel {
            id: Uuid::now_v7(),
            email: "ann@example.com".into(),
            password_hash: String::new(),
            name: "Ann".into(),
            role: Role::Customer,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn an_update_lists_each_change_old_to_new() {
        let event = event();
        let changes = [
            EventChange::Venue {
                old: "Hall A".into(),
                new: "Hall B".into(),
            },
            EventChange::Title {
                old: "Old".into(),
                new: "Night of Rust".into(),
            },
            EventChange::StartsAt {
                old: event.starts_at,
                new: event.starts_at + chrono::Duration::hours(1),
            },
            EventChange::Description {
                old: None,
                new: Some("Talks".into()),
            },
        ];
        let email = rendered(event_updated(&customer(), &event, &changes));
        assert_eq!(email.letter.subject, "Event changed: Night of Rust");
        assert!(
            email.text.contains(
                "  Venue: Hall A → Hall B\n  Title: Old → Night of Rust\n  \
                 Starts: Wednesday 1 May 2030, 19:00 UTC → Wednesday 1 May 2030, 20:00 UTC\n  \
                 Description: (none) → Talks\n"
            ),
            "{}",
            email.text
        );
        assert!(email.text.starts_with("Hello Ann,"));
    }

    #[test]
    fn a_confirmation_names_what_was_booked() {
        let event = event();
        let booking = BookingModel {
            id: Uuid::now_v7(),
            event_id: event.id,
            user_id: Uuid::now_v7(),
            quantity: 3,
            total: 3 * 2000 - 250,
            currency: "EUR".into(),
            promo_code_id: None,
            promo_uses: 0,
            payment_id: None,
            status: BookingStatus::Confirmed,
            created_at: Utc::now(),
            cancelled_at: None,
        };
        let items = [
            ItemLine {
                name: "Standard".into(),
                quantity: 2,
                unit_price: 2000,
                discount: 0,
            },
            ItemLine {
                name: "Student".into(),
                quantity: 1,
                unit_price: 2000,
                discount: 250,
            },
        ];
        let email = rendered(booking_confirmed(
            &customer(),
            &event,
            &booking,
            &items,
            &[],
            Vec::new(),
        ));
        assert!(!email.text.contains("Seats:"), "{}", email.text);
        assert!(
            email.text.contains(
                "Tickets:  3\n          2 × Standard at 20.00 EUR\n          \
                 1 × Student at 20.00 EUR, 2.50 EUR off each\nTotal:    57.50 EUR\n"
            ),
            "{}",
            email.text
        );
        let seats = ["Floor A-1".to_owned(), "Floor A-2".to_owned()];
        let seated = rendered(booking_confirmed(
            &customer(),
            &event,
            &booking,
            &[],
            &seats,
            Vec::new(),
        ));
        assert!(
            seated
                .text
                .contains("Total:    57.50 EUR\nSeats:    Floor A-1, Floor A-2\nBooking:"),
            "{}",
            seated.text
        );
        let cancelled = rendered(booking_cancelled(&customer(), &event, &booking, &seats));
        assert!(
            cancelled
                .text
                .contains("its seats (Floor A-1, Floor A-2) released"),
            "{}",
            cancelled.text
        );
        for expected in [
            "Night of Rust",
            "Hall A",
            "Wednesday 1 May 2030, 19:00 UTC",
            "Tickets:  3",
            &booking.id.to_string(),
        ] {
            assert!(
                email.text.contains(expected),
                "missing {expected:?}: {}",
                email.text
            );
        }
    }

    #[test]
    fn money_is_written_in_the_currency_s_major_unit() {
        assert_eq!(money(1950, "EUR"), "19.50 EUR");
        assert_eq!(money(5, "USD"), "0.05 USD");
        assert_eq!(money(1950, "JPY"), "1950 JPY");
        assert_eq!(money(1950, "BHD"), "1.950 BHD");
        assert_eq!(money(0, "EUR"), "0.00 EUR");
    }

    #[test]
    fn an_offer_says_how_long_it_lasts() {
        let event = event();
        let at = event.starts_at - chrono::Duration::hours(1);
        let hold = HoldModel {
            id: Uuid::now_v7(),
            event_id: event.id,
            user_id: Uuid::now_v7(),
            quantity: 2,
            total: 0,
            currency: "EUR".into(),
            promo_code_id: None,
            promo_uses: 0,
            status: HoldStatus::Active,
            expires_at: at + chrono::Duration::minutes(30),
            booking_id: None,
            created_at: at,
            ended_at: None,
        };
        let items = [ItemLine {
            name: "Standard".into(),
            quantity: 2,
            unit_price: 0,
            discount: 0,
        }];
        let email = rendered(waitlist_offered(&customer(), &event, &hold, &items));
        assert_eq!(
            email.letter.subject,
            "Tickets are waiting for you: Night of Rust"
        );
        for expected in [
            "2 ticket(s) are held for you for 30 minutes",
            "until Wednesday 1 May 2030, 18:30 UTC",
            &hold.id.to_string(),
        ] {
            assert!(
                email.text.contains(expected),
                "missing {expected:?}: {}",
                email.text
            );
        }
    }
}
