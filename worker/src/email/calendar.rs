//! The `.ics` an email carries (RFC 5545): one `VEVENT` per booking, whose
//! `UID` is the booking's, so a later update or cancellation replaces the
//! entry the customer's calendar already has.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use icalendar::{Calendar, Component, EventLike, EventStatus as EntryStatus};
use lettre::message::header::ContentType;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarMethod {
    /// The entry as it now stands (a confirmation or an update).
    Publish,
    /// The entry is gone (a cancellation).
    Cancel,
}

impl CalendarMethod {
    fn as_str(self) -> &'static str {
        match self {
            CalendarMethod::Publish => "PUBLISH",
            CalendarMethod::Cancel => "CANCEL",
        }
    }

    pub fn content_type(self) -> ContentType {
        ContentType::parse(&format!(
            "text/calendar; charset=utf-8; method={}",
            self.as_str()
        ))
        .expect("a text/calendar media type")
    }
}

/// The entry's version: the event's, so every change the customer is told
/// of (and the cancellation) replaces what their calendar holds.
fn sequence(event: &EventModel) -> u32 {
    u32::try_from(event.calendar_sequence).unwrap_or(0)
}

/// Organizer text as an iCalendar TEXT value: the library escapes `\ , ;` and
/// line feeds; a carriage return would end the line, so it becomes a line feed.
fn text(value: &str) -> String {
    value.replace("\r\n", "\n").replace('\r', "\n")
}

/// The calendar of `bookings` at `event`, as `method` says, stamped `now`.
pub fn calendar(
    event: &EventModel,
    bookings: &[Uuid],
    organizer: &str,
    method: CalendarMethod,
    now: DateTime<Utc>,
) -> String {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", "-//booking//tickets//EN"))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", method.as_str()));
    for booking in bookings {
        let mut entry = icalendar::Event::new();
        entry
            .uid(&format!("{booking}@booking"))
            .timestamp(now)
            .sequence(sequence(event))
            .summary(&text(&event.title))
            .location(&text(&event.venue))
            .starts(event.starts_at)
            .ends(event.ends_at)
            .status(match method {
                CalendarMethod::Publish => EntryStatus::Confirmed,
                CalendarMethod::Cancel => EntryStatus::Cancelled,
            })
            .append_property(("ORGANIZER", format!("mailto:{organizer}").as_str()));
        if let Some(description) = &event.description {
            entry.description(&text(description));
        }
        calendar.push(entry.done());
    }
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use icalendar::{CalendarComponent, DatePerhapsTime};

    use super::*;
    use crate::email::letters::tests::event;

    #[test]
    fn organizer_text_cannot_add_lines_or_properties() {
        let mut event = event();
        event.title = "Rust; Night, \\ Special\r\nATTENDEE:mailto:x@evil.example".into();
        event.venue = "Hall A\nMETHOD:REQUEST".into();
        let booking = Uuid::now_v7();
        let now = Utc.with_ymd_and_hms(2030, 4, 1, 8, 0, 0).unwrap();
        let ics = calendar(
            &event,
            &[booking],
            "tickets@example.com",
            CalendarMethod::Publish,
            now,
        );
        for line in ics.split("\r\n") {
            assert!(
                !line.starts_with("ATTENDEE") && !line.starts_with("METHOD:REQUEST"),
                "{ics}"
            );
        }
        let parsed: Calendar = ics.parse().unwrap();
        let CalendarComponent::Event(entry) = &parsed.components[0] else {
            panic!("{ics}")
        };
        assert_eq!(
            entry.get_summary(),
            Some("Rust; Night, \\ Special\nATTENDEE:mailto:x@evil.example")
        );
        assert_eq!(entry.get_location(), Some("Hall A\nMETHOD:REQUEST"));
        assert_eq!(entry.get_uid(), Some(format!("{booking}@booking").as_str()));
        assert_eq!(
            entry.get_start(),
            Some(DatePerhapsTime::DateTime(event.starts_at.into()))
        );
        assert_eq!(parsed.property_value("METHOD"), Some("PUBLISH"));
    }

    #[test]
    fn a_cancellation_says_so() {
        let mut event = event();
        event.calendar_sequence = 3;
        let ics = calendar(
            &event,
            &[Uuid::now_v7()],
            "t@example.com",
            CalendarMethod::Cancel,
            Utc::now(),
        );
        for line in [
            "METHOD:CANCEL\r\n",
            "STATUS:CANCELLED\r\n",
            "SEQUENCE:3\r\n",
        ] {
            assert!(ics.contains(line), "{line:?} in {ics}");
        }
    }
}
