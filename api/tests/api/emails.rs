//! The email people keep (SPEC §15), parsed as a mail client would: text and
//! HTML, a QR code per ticket that a scanner reads as the ticket's code, and
//! an `.ics` that a calendar library reads; then the update and the
//! cancellation that replace that calendar entry.

use std::collections::BTreeSet;

use icalendar::{Calendar, CalendarComponent, Component, DatePerhapsTime, EventLike};
use mail_parser::{MimeHeaders, PartType};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, id},
    smtp::Mail,
};

/// Organizer text with markup and iCalendar's own separators in it.
const TITLE: &str = "Rock & <b>Roll</b>; \"Live\", at last";
const VENUE: &str = "Hall <A>, Level 2; North\\East";

async fn tricky_event(app: &TestApp, organizer: &TestUser) -> Value {
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": TITLE,
                "description": "Doors at 18:00.\nBring <ID>.",
                "venue": VENUE,
                "starts_at": "2030-05-01T19:00:00Z",
                "ends_at": "2030-05-01T23:00:00Z",
                "total_tickets": 20,
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    event
}

async fn codes(app: &TestApp, customer: &TestUser, booking_id: &str) -> BTreeSet<String> {
    app.tickets(customer, booking_id)
        .await
        .iter()
        .map(|ticket| ticket["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Reads the QR code in a PNG, as a scanner would.
fn read_qr(png_bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("a PNG frame");
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        pixels[y * frame.line_size + x]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

/// What a mail client finds in the message.
struct Opened {
    top: String,
    text: String,
    html: String,
    /// Content id → the QR code's content.
    images: Vec<(String, String)>,
    ics: Option<(String, Calendar)>,
    size: usize,
}

fn open(mail: &Mail) -> Opened {
    let message = mail.parsed();
    let top = message
        .content_type()
        .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()))
        .unwrap_or_default();
    let mut images = Vec::new();
    let mut ics = None;
    for part in message.parts.iter() {
        let Some(kind) = part.content_type() else {
            continue;
        };
        match (kind.ctype(), kind.subtype().unwrap_or_default()) {
            ("image", "png") => {
                let (PartType::InlineBinary(bytes) | PartType::Binary(bytes)) = &part.body else {
                    panic!("an image part holds bytes")
                };
                let id = part.content_id().expect("an inline image's Content-ID");
                images.push((id.to_owned(), read_qr(bytes)));
            }
            ("text", "calendar") => {
                let method = kind.attribute("method").unwrap_or_default().to_owned();
                let text = part.text_contents().expect("the .ics is text");
                assert_eq!(part.attachment_name(), Some("event.ics"));
                ics = Some((
                    method,
                    text.parse::<Calendar>().expect("an .ics a calendar reads"),
                ));
            }
            _ => {}
        }
    }
    Opened {
        top,
        text: message.body_text(0).expect("a text part").into_owned(),
        html: message.body_html(0).expect("an HTML part").into_owned(),
        images,
        ics,
        size: mail.raw.len(),
    }
}

/// The calendar's entries: uid → (sequence, summary, location, start, status).
fn entries(calendar: &Calendar) -> Vec<(String, u32, String, String, DatePerhapsTime, String)> {
    calendar
        .components
        .iter()
        .filter_map(|component| match component {
            CalendarComponent::Event(entry) => Some((
                entry.get_uid().unwrap_or_default().to_owned(),
                entry.get_sequence().unwrap_or_default(),
                entry.get_summary().unwrap_or_default().to_owned(),
                entry.get_location().unwrap_or_default().to_owned(),
                entry.get_start().expect("DTSTART"),
                entry
                    .property_value("STATUS")
                    .unwrap_or_default()
                    .to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_confirmation_carries_a_qr_code_per_ticket_and_a_calendar_entry() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = tricky_event(&app, &organizer).await;
    let (status, booking) = app.book(&customer, id(&event), 3).await;
    assert_eq!(status, 201, "{booking}");
    let codes = codes(&app, &customer, id(&booking)).await;
    assert_eq!(codes.len(), 3);

    let mail = &app.smtp.wait_for(1).await[0];
    let opened = open(mail);
    assert_eq!(
        opened.top, "multipart/mixed",
        "alternative bodies and the .ics"
    );
    for code in &codes {
        assert!(opened.text.contains(code.as_str()), "{}", opened.text);
    }
    assert!(
        opened.text.contains(TITLE),
        "plain text is not escaped: {}",
        opened.text
    );

    // The HTML shows the organizer's text, never runs it as markup.
    assert!(
        opened
            .html
            .contains("Rock &#38; &#60;b&#62;Roll&#60;/b&#62;; &#34;Live&#34;, at last")
            || opened
                .html
                .contains("Rock &amp; &lt;b&gt;Roll&lt;/b&gt;; &quot;Live&quot;, at last"),
        "{}",
        opened.html
    );
    assert!(!opened.html.contains("<b>Roll") && !opened.html.contains("<A>"));

    // One QR image per ticket, each shown by the HTML and reading as its code.
    let read: BTreeSet<String> = opened.images.iter().map(|(_, code)| code.clone()).collect();
    assert_eq!(read, codes);
    for (content_id, _) in &opened.images {
        assert!(
            opened.html.contains(&format!("cid:{content_id}")),
            "{content_id}"
        );
    }

    let (method, calendar) = opened.ics.expect("an .ics attachment");
    assert_eq!(method, "PUBLISH");
    assert_eq!(calendar.property_value("METHOD"), Some("PUBLISH"));
    let entries = entries(&calendar);
    assert_eq!(entries.len(), 1);
    let (uid, sequence, summary, location, start, entry_status) = &entries[0];
    assert_eq!(uid, &format!("{}@booking", id(&booking)));
    assert_eq!(*sequence, 0);
    assert_eq!(summary, TITLE, "escaped in the .ics, read back whole");
    assert_eq!(location, VENUE);
    assert_eq!(entry_status, "CONFIRMED");
    let starts: chrono::DateTime<chrono::Utc> = "2030-05-01T19:00:00Z".parse().unwrap();
    assert_eq!(start, &DatePerhapsTime::DateTime(starts.into()));
    assert!(opened.size < 50_000, "{} bytes", opened.size);
}

#[tokio::test]
async fn ten_tickets_make_an_email_well_under_200_kb() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (status, booking) = app.book(&customer, id(&event), 10).await;
    assert_eq!(status, 201, "{booking}");
    let mail = &app.smtp.wait_for(1).await[0];
    let opened = open(mail);
    assert_eq!(opened.images.len(), 10);
    assert!(opened.size < 100_000, "{} bytes", opened.size);
}

#[tokio::test]
async fn an_update_replaces_the_calendar_entry_and_a_cancellation_removes_it() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = tricky_event(&app, &organizer).await;
    let (_, booking) = app.book(&customer, id(&event), 1).await;
    let confirmation = open(&app.smtp.wait_for(1).await[0]);
    let uid = format!("{}@booking", id(&booking));
    let first = entries(&confirmation.ics.expect("an .ics").1)[0].1;

    let (status, _) = app
        .patch(
            &format!("/api/v1/events/{}", id(&event)),
            Some(&organizer.token),
            json!({"venue": "Grand Hall", "starts_at": "2030-05-01T20:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200);
    let update = open(&app.smtp.wait_for(2).await[1]);
    assert!(
        update
            .text
            .contains("Venue: Hall <A>, Level 2; North\\East → Grand Hall"),
        "{}",
        update.text
    );
    let (method, calendar) = update.ics.expect("the update carries the .ics again");
    assert_eq!(method, "PUBLISH");
    let updated = &entries(&calendar)[0];
    assert_eq!(updated.0, uid, "the same entry");
    assert!(
        updated.1 > first,
        "a higher SEQUENCE: {} after {first}",
        updated.1
    );
    assert_eq!(updated.3, "Grand Hall");
    let starts: chrono::DateTime<chrono::Utc> = "2030-05-01T20:00:00Z".parse().unwrap();
    assert_eq!(updated.4, DatePerhapsTime::DateTime(starts.into()));

    let (status, _) = app
        .post(
            &format!("/api/v1/events/{}/cancel", id(&event)),
            Some(&organizer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let cancellation = open(&app.smtp.wait_for(3).await[2]);
    let (method, calendar) = cancellation.ics.expect("the cancellation carries the .ics");
    assert_eq!(method, "CANCEL");
    assert_eq!(calendar.property_value("METHOD"), Some("CANCEL"));
    let cancelled = &entries(&calendar)[0];
    assert_eq!(cancelled.0, uid);
    assert!(
        cancelled.1 > updated.1,
        "{} after {}",
        cancelled.1,
        updated.1
    );
    assert_eq!(cancelled.5, "CANCELLED");
    assert!(
        cancellation.images.is_empty(),
        "no tickets to show any more"
    );
}

#[tokio::test]
async fn a_cancelled_booking_takes_its_calendar_entry_back() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (_, kept) = app.book(&customer, id(&event), 1).await;
    let (_, cancelled) = app.book(&customer, id(&event), 2).await;
    app.smtp.wait_for(2).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&cancelled)),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mails = app.smtp.wait_for(3).await;
    let cancellation = open(
        mails
            .iter()
            .find(|mail| mail.subject().starts_with("Booking cancelled"))
            .expect("the cancellation email"),
    );
    let (method, calendar) = cancellation.ics.expect("an .ics");
    assert_eq!(method, "CANCEL");
    let entries = entries(&calendar);
    assert_eq!(entries.len(), 1, "only the cancelled booking's entry");
    assert_eq!(entries[0].0, format!("{}@booking", id(&cancelled)));
    assert_ne!(entries[0].0, format!("{}@booking", id(&kept)));
    assert_eq!(entries[0].5, "CANCELLED");
}

/// Confirmations written at the same moment (the worker reads their rows
/// together, a round at a time) each carry their own booking: sent to its
/// customer, with its tickets' codes and its calendar entry. In production
/// mode they are a backlog the worker finds on starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmations_written_together_each_carry_their_own_booking() {
    const CUSTOMERS: usize = 30;
    let mut app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let events = [
        app.event(&organizer, 100).await,
        app.event(&organizer, 100).await,
    ];
    let customers = app.customers(CUSTOMERS).await;
    let backlog = crate::helpers::production_mode();
    if backlog {
        app.stop_worker().await;
    }
    let app_ref = &app;
    let bookings = futures::future::join_all(customers.iter().enumerate().map(|(i, customer)| {
        let event_id = id(&events[i % 2]).to_owned();
        async move {
            let (status, booking) = app_ref.book(customer, &event_id, (i % 3 + 1) as i64).await;
            assert_eq!(status, 201, "{booking}");
            booking
        }
    }))
    .await;
    if backlog {
        app.start_worker(|_| {}).await;
    }

    app.smtp.wait_for(CUSTOMERS).await;
    for (customer, booking) in customers.iter().zip(&bookings) {
        let mails = app.smtp.to(&customer.email);
        assert_eq!(mails.len(), 1, "one confirmation each");
        let opened = open(&mails[0]);
        let read: BTreeSet<String> = opened.images.iter().map(|(_, code)| code.clone()).collect();
        assert_eq!(read, codes(&app, customer, id(booking)).await);
        for code in &read {
            assert!(opened.text.contains(code.as_str()));
        }
        let (_, calendar) = opened.ics.expect("an .ics attachment");
        let uids: Vec<String> = entries(&calendar)
            .into_iter()
            .map(|entry| entry.0)
            .collect();
        assert_eq!(uids, [format!("{}@booking", id(booking))]);
    }
    assert_eq!(app.smtp.messages().len(), CUSTOMERS);
}
