use std::sync::Arc;

use rocket::{
    Request, Shutdown, State, get,
    http::{ContentType, Status},
    patch, post,
    response::{
        Responder,
        stream::{Event, EventStream},
    },
    serde::json::Json,
};

use super::{
    AttendeeView, EventPageView, EventPatch, EventView, FreeRunView, Items, NewEventInput,
    QueueView, ReportView, SeatPageView, SeatStatusView,
};
use crate::http::{docs, error::ErrorBody};
use crate::{
    auth::{Customer, Organizer},
    domain::admission::Turn,
    domain::{Services, admission, events, report, seating},
    http::rate_limit::{ClientIp, RateLimiter},
    http::{ApiError, JsonBody, parse_id},
    live::{Availability, LiveHub, StreamSlot, TooManyStreams},
};
use futures::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use uuid::Uuid;

/// Create an event (organizers).
#[utoipa::path(post, path = "/api/v1/events", tag = "events", request_body = NewEventInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "The event, all tickets available", body = EventView),
        docs::AsOrganizer, docs::JsonBody, docs::OrganizerRateLimited,
    ))]
#[post("/events", data = "<body>")]
pub async fn create(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    body: JsonBody<NewEventInput>,
) -> Result<(Status, Json<EventView>), ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let event = events::create(&services.db, organizer.0, body.0.try_into()?).await?;
    Ok((Status::Created, Json(event.into())))
}

/// Events by start time, a page at a time.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of events", body = EventPageView),
        (status = 422, description = "Bad `limit` or `cursor`", body = ErrorBody),
    ))]
#[get("/events?<limit>&<cursor>")]
pub async fn list(
    services: Services,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Json<EventPageView>, ApiError> {
    let page = events::list(&services.db, limit, cursor).await?;
    Ok(Json(EventPageView {
        items: page.items.into_iter().map(EventView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One event.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = EventView),
        docs::UnknownEvent,
    ))]
#[get("/events/<id>")]
pub async fn get(services: Services, id: &str) -> Result<Json<EventView>, ApiError> {
    let event = events::get(&services, parse_id(id, "event")?).await?;
    Ok(Json(event.into()))
}

/// Change an event (its organizer). Customers holding bookings are emailed
/// what changed; a capacity change moves availability by the same amount.
#[utoipa::path(patch, path = "/api/v1/events/{id}", tag = "events", request_body = EventPatch, security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The changed event", body = EventView),
        docs::AsEventOwner, docs::JsonBody, docs::OrganizerRateLimited,
        (status = 409, description = "`conflict`: total below the tickets booked and held, a seated event's total, or a cancelled event", body = ErrorBody),
    ))]
#[patch("/events/<id>", data = "<body>")]
pub async fn update(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
    body: JsonBody<EventPatch>,
) -> Result<Json<EventView>, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let event_id = parse_id(id, "event")?;
    let event = events::update(&services, organizer.0, event_id, body.0.try_into()?).await?;
    Ok(Json(event.into()))
}

/// Cancel an event (its organizer): all its bookings are cancelled, their tickets
/// returned, and every affected customer is emailed once. Repeating it is harmless.
#[utoipa::path(post, path = "/api/v1/events/{id}/cancel", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The cancelled event", body = EventView),
        docs::AsEventOwner, docs::OrganizerRateLimited,
    ))]
#[post("/events/<id>/cancel")]
pub async fn cancel(
    organizer: Organizer,
    services: Services,
    limiter: &State<RateLimiter>,
    id: &str,
) -> Result<Json<EventView>, ApiError> {
    limiter.check_organizer_write(organizer.0).await?;
    let event = events::cancel(&services, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(event.into()))
}

/// Who booked (the event's organizer).
#[utoipa::path(get, path = "/api/v1/events/{id}/bookings", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Bookings with customer name and email", body = Items<AttendeeView>),
        docs::AsEventOwner,
    ))]
#[get("/events/<id>/bookings")]
pub async fn attendees(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<Items<AttendeeView>>, ApiError> {
    let rows = events::attendees(&services.db, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(Items {
        items: rows
            .into_iter()
            .map(|(booking, customer)| AttendeeView {
                booking: booking.into(),
                customer_name: customer.name,
                customer_email: customer.email,
            })
            .collect(),
    }))
}

/// The seat map of a seated event, best seats first, a page at a time, with
/// each seat's status (never who has it). Empty for general admission.
#[utoipa::path(get, path = "/api/v1/events/{id}/seats", tag = "events",
    params(
        ("id" = String, Path, description = "Event id"),
        ("section" = Option<String>, Query, description = "Only this section's seats"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1,000 (default 1,000)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of seats in rank order", body = SeatPageView),
        docs::UnknownEvent,
        (status = 422, description = "`section` is empty, too long or has control characters; bad `limit` or `cursor`", body = ErrorBody),
    ))]
#[get("/events/<id>/seats?<section>&<limit>&<cursor>")]
pub async fn seats(
    services: Services,
    id: &str,
    section: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Json<SeatPageView>, ApiError> {
    let page = seating::list(&services.db, parse_id(id, "event")?, section, limit, cursor).await?;
    Ok(Json(SeatPageView {
        items: page.items.into_iter().map(SeatStatusView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// What is free on a seated event's map, compactly, for a seat picker: each
/// run of adjacent available seats in a row, best first.
#[utoipa::path(get, path = "/api/v1/events/{id}/seats/free", tag = "events",
    params(
        ("id" = String, Path, description = "Event id"),
        ("section" = Option<String>, Query, description = "Only this section's seats"),
    ),
    responses(
        (status = 200, description = "Runs of available seats in rank order", body = Items<FreeRunView>),
        docs::UnknownEvent,
        (status = 422, description = "`section` is empty, too long or has control characters", body = ErrorBody),
    ))]
#[get("/events/<id>/seats/free?<section>")]
pub async fn free_seats(
    services: Services,
    id: &str,
    section: Option<&str>,
) -> Result<Json<Items<FreeRunView>>, ApiError> {
    let runs = seating::free_runs(&services.db, parse_id(id, "event")?, section).await?;
    Ok(Json(Items::of(runs)))
}

/// Live availability of one event, as Server-Sent Events: an `availability`
/// event (`{available, held, booked, status}`, and on a seated event the seats
/// that changed) on connect and after every change, made on any api process,
/// at most four a second; a heartbeat comment every 15 seconds. Signed in as a
/// customer in the event's waiting room, also a `queue` event (as
/// `GET /events/{id}/queue/me`) on connect and whenever it changes.
#[utoipa::path(get, path = "/api/v1/events/{id}/live", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "An endless `text/event-stream` of `availability` events, each with this data (and `queue` events with a `QueueView`)", content_type = "text/event-stream", body = Availability),
        docs::UnknownEvent,
    ))]
#[get("/events/<id>/live")]
pub async fn live(
    hub: &State<Arc<LiveHub>>,
    services: Services,
    customer: Option<Customer>,
    client: ClientIp,
    id: &str,
    shutdown: Shutdown,
) -> Result<SmallChunks<EventStream![Event + 'static]>, ApiError> {
    let subscription = subscribe(hub, &services, customer, &client, parse_id(id, "event")?).await?;
    let messages = live_messages(subscription, services.db, shutdown);
    let stream = EventStream! {
        for await message in messages {
            yield Event::data(message.data).event(message.name);
        }
    };
    Ok(SmallChunks(stream.heartbeat(HEARTBEAT)))
}

/// An open live stream's place and what it follows, before its first message.
pub struct LiveSubscription {
    // Held for as long as the stream is open; its place is given back when
    // the stream ends.
    slot: StreamSlot,
    event_id: Uuid,
    availability: watch::Receiver<Availability>,
    /// A customer in the event's waiting room: who, and their turn.
    turn: Option<(Uuid, Turn)>,
}

/// Opens a live stream of event `event_id` for `client` (the route's half
/// that may refuse: too many streams, an unknown event).
pub async fn subscribe(
    hub: &Arc<LiveHub>,
    services: &Services,
    customer: Option<Customer>,
    client: &ClientIp,
    event_id: Uuid,
) -> Result<LiveSubscription, ApiError> {
    let slot = hub
        .open_stream(client.key())
        .map_err(|TooManyStreams(why)| ApiError::rate_limited(why, STREAM_RETRY_AFTER))?;
    let availability = hub.watch(event_id).await?;
    let turn = match customer {
        Some(customer) => admission::turn_of(&services.db, customer.0, event_id)
            .await?
            .map(|turn| (customer.0, turn)),
        None => None,
    };
    Ok(LiveSubscription {
        slot,
        event_id,
        availability,
        turn,
    })
}

/// One message of a live stream: its event name and its JSON data.
pub struct LiveMessage {
    pub name: &'static str,
    pub data: String,
}

impl LiveMessage {
    fn of(name: &'static str, data: &impl serde::Serialize) -> Self {
        Self {
            name,
            // Plain structs of numbers, ids and names: serializing cannot fail.
            data: serde_json::to_string(data).unwrap_or_default(),
        }
    }
}

/// What a live stream sends, until the event is gone or the server stops:
/// the availability now and after each change, and a waiting customer's
/// `queue` standing whenever it changes. Heartbeats are the transport's.
pub fn live_messages(
    subscription: LiveSubscription,
    db: DatabaseConnection,
    mut shutdown: Shutdown,
) -> impl Stream<Item = LiveMessage> + Send + 'static {
    let LiveSubscription {
        slot,
        event_id,
        mut availability,
        mut turn,
    } = subscription;
    rocket::response::stream::stream! {
        let _slot = slot;
        let first = availability.borrow_and_update().clone();
        yield LiveMessage::of("availability", &first);
        let mut told = None;
        let mut clock = tokio::time::interval(QUEUE_TICK);
        loop {
            tokio::select! {
                changed = availability.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = availability.borrow_and_update().clone();
                    yield LiveMessage::of("availability", &now);
                }
                _ = clock.tick(), if turn.is_some() => {
                    let now = crate::domain::now();
                    if let Some((customer_id, current)) = &turn
                        && !current.is_settled_at(now)
                        // Boxed: the stream's own state stays small for the
                        // many streams that never wait here.
                        && let Ok(Some(fresh)) = Box::pin(admission::turn_of(&db, *customer_id, event_id)).await
                    {
                        turn = Some((*customer_id, fresh));
                    }
                    if let Some((_, current)) = &turn {
                        let view = QueueView::from(current.standing(now));
                        let key = (view.status, view.position);
                        if told != Some(key) {
                            told = Some(key);
                            yield LiveMessage::of("queue", &view);
                        }
                    }
                }
                _ = &mut shutdown => break,
            }
        }
    }
}

/// A streamed response read in chunks of at most [`SMALL_CHUNK`] bytes:
/// Rocket keeps a buffer of the chunk size for as long as a stream is open
/// (4 KiB by default), and live streams are many and their messages short.
pub struct SmallChunks<R>(R);

const SMALL_CHUNK: usize = 512;

impl<'r, 'o: 'r, R: Responder<'r, 'o>> Responder<'r, 'o> for SmallChunks<R> {
    fn respond_to(self, request: &'r Request<'_>) -> rocket::response::Result<'o> {
        let mut response = self.0.respond_to(request)?;
        response.set_max_chunk_size(SMALL_CHUNK);
        Ok(response)
    }
}

/// When to try again after too many streams.
const STREAM_RETRY_AFTER: u64 = 5;
/// How often a waiting customer's place is recomputed for their stream.
const QUEUE_TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// A comment line this often keeps an idle stream's proxies from closing it.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// What the event sold and took (its organizer): per type, money taken,
/// refunded and net, tax by rate, discounts, bookings.
#[utoipa::path(get, path = "/api/v1/events/{id}/report", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The sales report; money in the currency's minor unit", body = ReportView),
        docs::AsEventOwner,
    ))]
#[get("/events/<id>/report")]
pub async fn sales_report(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<Json<ReportView>, ApiError> {
    let report = report::sales(&services.db, organizer.0, parse_id(id, "event")?).await?;
    Ok(Json(report.into()))
}

/// Every ticket of every booking as CSV (its organizer), for a spreadsheet
/// or the door: `ticket_id, booking_id, name, email, ticket_type, seat,
/// price, status, checked_in_at`. A cell a spreadsheet would run as a
/// formula is prefixed with `'`.
#[utoipa::path(get, path = "/api/v1/events/{id}/attendees.csv", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "One row per ticket", content_type = "text/csv", body = String),
        docs::AsEventOwner,
    ))]
#[get("/events/<id>/attendees.csv")]
pub async fn attendees_csv(
    organizer: Organizer,
    services: Services,
    id: &str,
) -> Result<(ContentType, String), ApiError> {
    let rows = report::attendees(&services.db, organizer.0, parse_id(id, "event")?).await?;
    Ok((ContentType::CSV, super::csv::attendees(&rows)))
}
