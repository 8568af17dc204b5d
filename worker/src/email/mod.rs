//! What the worker emails: each notification's [`Letter`], written once and
//! rendered twice (plain text and HTML, from `templates/letter.*`), with a QR
//! code per ticket and a calendar entry where the email is about one.

mod calendar;
mod letters;
mod qr;

use askama::Template;
use lettre::{
    Message,
    message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};

pub use calendar::{CalendarMethod, calendar};
pub use letters::{
    ItemLine, booking_cancelled, booking_confirmed, event_cancelled, event_updated,
    payment_refunded, waitlist_offered, webhook_disabled,
};
pub use qr::{QrError, qr_png};

/// One email's content before it is rendered.
#[derive(Debug, Clone, Default)]
pub struct Letter {
    pub subject: String,
    /// Whom it greets.
    pub name: String,
    /// Paragraphs before the details.
    pub intro: Vec<String>,
    /// What changed, old to new.
    pub changes: Vec<Change>,
    /// The details, a label and its value per line.
    pub facts: Vec<Fact>,
    pub tickets: Vec<TicketCard>,
    /// Paragraphs after the details.
    pub outro: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub label: &'static str,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Empty on a line that continues the one above.
    pub label: &'static str,
    pub value: String,
}

impl Fact {
    pub fn new(label: &'static str, value: impl Into<String>) -> Self {
        Self {
            label,
            value: value.into(),
        }
    }

    /// The label as the text part writes it, `Venue:`, or nothing.
    pub fn heading(&self) -> String {
        if self.label.is_empty() {
            String::new()
        } else {
            format!("{}:", self.label)
        }
    }
}

/// A ticket as the email shows it: what it admits, its code, and its QR code
/// (an inline image, `cid:{content_id}`).
#[derive(Debug, Clone)]
pub struct TicketCard {
    pub label: String,
    pub code: String,
    pub content_id: String,
    pub qr: Vec<u8>,
    /// The QR image's width and height in pixels.
    pub qr_side: u32,
}

#[derive(Template)]
#[template(path = "letter.txt")]
struct TextPart<'a> {
    letter: &'a Letter,
}

/// Autoescaped: organizer and customer text is never markup here.
#[derive(Template)]
#[template(path = "letter.html")]
struct HtmlPart<'a> {
    letter: &'a Letter,
}

/// An `.ics` file to attach.
#[derive(Debug, Clone)]
pub struct CalendarFile {
    pub method: CalendarMethod,
    pub ics: String,
}

/// A rendered email, ready to be addressed.
#[derive(Debug, Clone)]
pub struct Email {
    pub letter: Letter,
    pub text: String,
    pub html: String,
    pub calendar: Option<CalendarFile>,
}

impl Email {
    pub fn new(letter: Letter, calendar: Option<CalendarFile>) -> Result<Self, askama::Error> {
        Ok(Self {
            text: TextPart { letter: &letter }.render()?,
            html: HtmlPart { letter: &letter }.render()?,
            letter,
            calendar,
        })
    }

    /// `multipart/alternative` (text, and HTML `multipart/related` with its QR
    /// images), inside `multipart/mixed` when an `.ics` is attached.
    pub fn message(
        self,
        from: Mailbox,
        to: Mailbox,
        message_id: String,
    ) -> Result<Message, lettre::error::Error> {
        let html = SinglePart::html(self.html);
        let alternative = MultiPart::alternative().singlepart(SinglePart::plain(self.text));
        let alternative = if self.letter.tickets.is_empty() {
            alternative.singlepart(html)
        } else {
            let related = self.letter.tickets.into_iter().fold(
                MultiPart::related().singlepart(html),
                |related, ticket| {
                    related.singlepart(
                        Attachment::new_inline(ticket.content_id).body(ticket.qr, png_type()),
                    )
                },
            );
            alternative.multipart(related)
        };
        let body = match self.calendar {
            None => alternative,
            Some(calendar) => MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new("event.ics".to_owned())
                    .body(calendar.ics, calendar.method.content_type()),
            ),
        };
        Message::builder()
            .from(from)
            .to(to)
            .subject(self.letter.subject)
            // Stable per notification, so a duplicate (see `delivery`) can be
            // recognised by the receiving side.
            .message_id(Some(message_id))
            .multipart(body)
    }
}

fn png_type() -> ContentType {
    ContentType::parse("image/png").expect("image/png is a media type")
}
