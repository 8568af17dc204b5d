//! A notification's email, written from the rows as they are when it is sent
//! (a job carries ids only).

use std::{collections::HashMap, sync::Arc};

use entity::prelude::*;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use ticket_code::Signer;
use uuid::Uuid;

use inventory::Line;
use platform::{EventChange, gather::Gather};

use crate::{
    email::{self, CalendarFile, CalendarMethod, Email, ItemLine, Letter, TicketCard},
    gather,
};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0} no longer exists")]
    Missing(&'static str),
    #[error("malformed changes: {0}")]
    Changes(#[from] serde_json::Error),
    #[error("{0}")]
    Qr(#[from] email::QrError),
    #[error("rendering the email: {0}")]
    Render(#[from] askama::Error),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl ComposeError {
    /// Only a database error may pass; the rest would fail the same way again.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ComposeError::Db(_))
    }
}

pub struct Composer {
    db: DatabaseConnection,
    /// Signs the codes the tickets' QR codes carry.
    tickets: Arc<Signer>,
    /// The address calendar entries name as their organizer (the sender's).
    organizer: String,
    /// The rows of the confirmations being written at the same moment, read
    /// together: a few statements per round instead of six per email.
    confirmations: Gather<(), Uuid, Result<Option<Confirmation>, DbErr>>,
}

/// What a booking's confirmation is written from.
struct Confirmation {
    booking: BookingModel,
    customer: Option<UserModel>,
    event: Option<EventModel>,
    lines: Vec<Line>,
    tickets: Vec<TicketModel>,
    type_names: HashMap<Uuid, String>,
}

/// The most bookings one round of confirmation reads covers.
const CONFIRMATIONS_PER_ROUND: usize = 256;

impl Composer {
    pub fn new(db: DatabaseConnection, tickets: Arc<Signer>, organizer: String) -> Self {
        Self {
            db,
            tickets,
            organizer,
            confirmations: Gather::new(CONFIRMATIONS_PER_ROUND),
        }
    }

    /// Whom `notification` goes to, and what it says.
    pub async fn compose(
        &self,
        notification: &NotificationModel,
    ) -> Result<(UserModel, Email), ComposeError> {
        if let (NotificationKind::BookingConfirmed, Some(booking_id)) =
            (notification.kind, notification.booking_id)
        {
            return self.confirmation(booking_id).await;
        }
        let customer = User::find_by_id(notification.user_id)
            .one(&self.db)
            .await?
            .ok_or(ComposeError::Missing("the customer"))?;
        let event = Event::find_by_id(notification.event_id)
            .one(&self.db)
            .await?
            .ok_or(ComposeError::Missing("the event"))?;
        let booking = match notification.booking_id {
            Some(id) => Some(
                Booking::find_by_id(id)
                    .one(&self.db)
                    .await?
                    .ok_or(ComposeError::Missing("the booking"))?,
            ),
            None => None,
        };
        let (letter, calendar): (Letter, Option<(CalendarMethod, Vec<Uuid>)>) =
            match (notification.kind, &booking) {
                (NotificationKind::BookingCancelled, Some(booking)) => {
                    let seats = self.seat_labels(booking.id).await?;
                    (
                        email::booking_cancelled(&customer, &event, booking, &seats),
                        Some((CalendarMethod::Cancel, vec![booking.id])),
                    )
                }
                (NotificationKind::EventCancelled, _) => (
                    email::event_cancelled(&customer, &event),
                    Some((
                        CalendarMethod::Cancel,
                        self.bookings_of(&customer, &event, None).await?,
                    )),
                ),
                (NotificationKind::WaitlistOffered, _) => {
                    let hold_id = notification
                        .hold_id
                        .ok_or(ComposeError::Missing("the offer"))?;
                    let hold = Hold::find_by_id(hold_id)
                        .one(&self.db)
                        .await?
                        .ok_or(ComposeError::Missing("the offer"))?;
                    let lines = inventory::hold_lines(&self.db, &[hold.id])
                        .await?
                        .remove(&hold.id)
                        .unwrap_or_default();
                    let names = inventory::type_names(
                        &self.db,
                        lines.iter().map(|line| line.ticket_type_id),
                    )
                    .await?;
                    let items = item_lines(&lines, &names);
                    (
                        email::waitlist_offered(&customer, &event, &hold, &items),
                        None,
                    )
                }
                (NotificationKind::EventUpdated, _) => {
                    let changes: Vec<EventChange> = match &notification.changes {
                        Some(json) => serde_json::from_value(json.clone())?,
                        None => Vec::new(),
                    };
                    let confirmed = Some(BookingStatus::Confirmed);
                    (
                        email::event_updated(&customer, &event, &changes),
                        Some((
                            CalendarMethod::Publish,
                            self.bookings_of(&customer, &event, confirmed).await?,
                        )),
                    )
                }
                (NotificationKind::PaymentRefunded, _) => {
                    let refund_id = notification
                        .refund_id
                        .ok_or(ComposeError::Missing("the refund"))?;
                    let refund = Refund::find_by_id(refund_id)
                        .one(&self.db)
                        .await?
                        .ok_or(ComposeError::Missing("the refund"))?;
                    (email::payment_refunded(&customer, &event, &refund), None)
                }
                (NotificationKind::WebhookDisabled, _) => {
                    let endpoint_id = notification
                        .webhook_endpoint_id
                        .ok_or(ComposeError::Missing("the webhook endpoint"))?;
                    let endpoint = WebhookEndpoint::find_by_id(endpoint_id)
                        .one(&self.db)
                        .await?
                        .ok_or(ComposeError::Missing("the webhook endpoint"))?;
                    let last_error = WebhookMessage::find()
                        .filter(WebhookMessageColumn::EndpointId.eq(endpoint_id))
                        .order_by_desc(WebhookMessageColumn::CreatedAt)
                        .one(&self.db)
                        .await?
                        .and_then(|message| message.last_error);
                    (
                        email::webhook_disabled(&customer, &endpoint, last_error),
                        None,
                    )
                }
                // A confirmation with a booking was written above.
                (NotificationKind::BookingConfirmed, _) | (_, None) => {
                    return Err(ComposeError::Missing("the booking"));
                }
            };
        self.written(customer, &event, letter, calendar)
    }

    /// A booking's confirmation: its tickets, each with its code and QR code,
    /// and the calendar entry.
    async fn confirmation(&self, booking_id: Uuid) -> Result<(UserModel, Email), ComposeError> {
        let Confirmation {
            booking,
            customer,
            event,
            lines,
            tickets,
            type_names,
        } = self
            .confirmations
            .call((), booking_id, |booking_ids| async move {
                match read_confirmations(&self.db, &booking_ids).await {
                    Ok(mut read) => booking_ids.iter().map(|id| Ok(read.remove(id))).collect(),
                    Err(error) => gather::each_failed(&error, booking_ids.len()),
                }
            })
            .await
            .unwrap_or_else(|| Err(gather::lost()))?
            .ok_or(ComposeError::Missing("the booking"))?;
        let customer = customer.ok_or(ComposeError::Missing("the customer"))?;
        let event = event.ok_or(ComposeError::Missing("the event"))?;
        let items = item_lines(&lines, &type_names);
        // A booking made before tickets existed has none; its seats are its hold's.
        let (seats, tickets) = if tickets.is_empty() {
            (self.seat_labels(booking.id).await?, Vec::new())
        } else {
            self.ticket_cards(&tickets, &type_names).await?
        };
        let letter = email::booking_confirmed(&customer, &event, &booking, &items, &seats, tickets);
        let calendar = Some((CalendarMethod::Publish, vec![booking.id]));
        self.written(customer, &event, letter, calendar)
    }

    /// The email of `letter`, with the calendar entries of `calendar`'s
    /// bookings if there are any.
    fn written(
        &self,
        customer: UserModel,
        event: &EventModel,
        letter: Letter,
        calendar: Option<(CalendarMethod, Vec<Uuid>)>,
    ) -> Result<(UserModel, Email), ComposeError> {
        let calendar =
            calendar
                .filter(|(_, bookings)| !bookings.is_empty())
                .map(|(method, bookings)| CalendarFile {
                    method,
                    ics: email::calendar(
                        event,
                        &bookings,
                        &self.organizer,
                        method,
                        platform::db::now(),
                    ),
                });
        Ok((customer, Email::new(letter, calendar)?))
    }

    /// The customer's bookings at the event (in `status`, if given), each a
    /// calendar entry. Looked up by customer alone: one customer has few
    /// bookings, while an event's are what a fan-out to all its customers
    /// would scan once per email if the planner chose the event's index.
    async fn bookings_of(
        &self,
        customer: &UserModel,
        event: &EventModel,
        status: Option<BookingStatus>,
    ) -> Result<Vec<Uuid>, DbErr> {
        let bookings: Vec<(Uuid, Uuid, BookingStatus)> = Booking::find()
            .select_only()
            .column(BookingColumn::Id)
            .column(BookingColumn::EventId)
            .column(BookingColumn::Status)
            .filter(BookingColumn::UserId.eq(customer.id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut ids: Vec<Uuid> = bookings
            .into_iter()
            .filter(|(_, event_id, booking_status)| {
                *event_id == event.id && status.is_none_or(|wanted| wanted == *booking_status)
            })
            .map(|(id, ..)| id)
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The labels of the tickets' seats, best first (none on general
    /// admission), and each ticket with its code and QR code.
    async fn ticket_cards(
        &self,
        tickets: &[TicketModel],
        type_names: &HashMap<Uuid, String>,
    ) -> Result<(Vec<String>, Vec<TicketCard>), ComposeError> {
        let seat_ids: Vec<Uuid> = tickets.iter().filter_map(|t| t.seat_id).collect();
        let seats: Vec<(Uuid, String)> = if seat_ids.is_empty() {
            Vec::new()
        } else {
            Seat::find()
                .select_only()
                .column(SeatColumn::Id)
                .column(SeatColumn::Label)
                .filter(SeatColumn::Id.is_in(seat_ids))
                .order_by_asc(SeatColumn::Position)
                .into_tuple()
                .all(&self.db)
                .await?
        };
        let label_of: HashMap<Uuid, &String> =
            seats.iter().map(|(id, label)| (*id, label)).collect();
        let cards = tickets
            .iter()
            .enumerate()
            .map(|(index, ticket)| {
                let code = self.tickets.code(ticket.id, ticket.event_id);
                let (qr, qr_side) = email::qr_png(&code)?;
                let kind = type_names
                    .get(&ticket.ticket_type_id)
                    .cloned()
                    .unwrap_or_default();
                let label = match ticket.seat_id.and_then(|seat| label_of.get(&seat)) {
                    Some(seat) => format!("{kind}, {seat}"),
                    None => kind,
                };
                Ok(TicketCard {
                    label,
                    code,
                    content_id: format!("ticket-{}.{}@booking", index + 1, ticket.id),
                    qr,
                    qr_side,
                })
            })
            .collect::<Result<_, ComposeError>>()?;
        Ok((seats.into_iter().map(|(_, label)| label).collect(), cards))
    }

    /// The labels of a booking's seats, best first, from its hold; none on
    /// general admission.
    async fn seat_labels(&self, booking_id: Uuid) -> Result<Vec<String>, DbErr> {
        let Some(hold) = Hold::find()
            .filter(HoldColumn::BookingId.eq(booking_id))
            .one(&self.db)
            .await?
        else {
            return Ok(Vec::new());
        };
        let seat_ids: Vec<Uuid> = HoldSeat::find()
            .select_only()
            .column(HoldSeatColumn::SeatId)
            .filter(HoldSeatColumn::HoldId.eq(hold.id))
            .into_tuple()
            .all(&self.db)
            .await?;
        if seat_ids.is_empty() {
            return Ok(Vec::new());
        }
        Seat::find()
            .select_only()
            .column(SeatColumn::Label)
            .filter(SeatColumn::Id.is_in(seat_ids))
            .order_by_asc(SeatColumn::Position)
            .into_tuple()
            .all(&self.db)
            .await
    }
}

/// The lines with their types' names, for an email.
fn item_lines(lines: &[inventory::Line], type_names: &HashMap<Uuid, String>) -> Vec<ItemLine> {
    lines
        .iter()
        .map(|line| ItemLine {
            name: type_names
                .get(&line.ticket_type_id)
                .cloned()
                .unwrap_or_default(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            discount: line.discount,
        })
        .collect()
}

/// The confirmations' rows for these bookings, by booking: one statement per
/// table for them all.
async fn read_confirmations(
    db: &DatabaseConnection,
    booking_ids: &[Uuid],
) -> Result<HashMap<Uuid, Confirmation>, DbErr> {
    let bookings = Booking::find()
        .filter(BookingColumn::Id.is_in(booking_ids.iter().copied()))
        .all(db)
        .await?;
    let customers: HashMap<Uuid, UserModel> = User::find()
        .filter(UserColumn::Id.is_in(bookings.iter().map(|b| b.user_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|user| (user.id, user))
        .collect();
    let events: HashMap<Uuid, EventModel> = Event::find()
        .filter(EventColumn::Id.is_in(bookings.iter().map(|b| b.event_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|event| (event.id, event))
        .collect();
    let mut lines = inventory::booking_lines(db, booking_ids).await?;
    let mut tickets = inventory::issued::of_bookings(db, booking_ids).await?;
    let type_ids = lines
        .values()
        .flatten()
        .map(|line| line.ticket_type_id)
        .chain(
            tickets
                .values()
                .flatten()
                .map(|ticket| ticket.ticket_type_id),
        );
    let names = inventory::type_names(db, type_ids).await?;
    Ok(bookings
        .into_iter()
        .map(|booking| {
            let lines = lines.remove(&booking.id).unwrap_or_default();
            let tickets = tickets.remove(&booking.id).unwrap_or_default();
            let type_names = lines
                .iter()
                .map(|line| line.ticket_type_id)
                .chain(tickets.iter().map(|ticket| ticket.ticket_type_id))
                .filter_map(|id| Some((id, names.get(&id)?.clone())))
                .collect();
            let confirmation = Confirmation {
                customer: customers.get(&booking.user_id).cloned(),
                event: events.get(&booking.event_id).cloned(),
                lines,
                tickets,
                type_names,
                booking,
            };
            (confirmation.booking.id, confirmation)
        })
        .collect())
}
