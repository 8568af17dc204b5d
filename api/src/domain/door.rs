//! The door (SPEC §15): the tickets of a booking, door devices, and checking
//! tickets in, online (one scan) and offline (a scanner's cache, then its
//! scans uploaded). A ticket is admitted by one conditional update of its
//! row, so however many doors scan it at the same moment, the database
//! admits it once; offline, the earliest scan is its entry.

use std::collections::{HashMap, HashSet};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::gather::Gather;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Error, Services, ValidationErrors, begin_write, bookings, now, queries};

/// Who scans at a door: the event's organizer, or a door device of that
/// event (its token proves it).
#[derive(Debug, Clone, Copy)]
pub enum Door {
    Organizer(Uuid),
    Device { id: Uuid, event_id: Uuid },
}

impl Door {
    /// The scanner's id (recorded on what it checks in), if it may work at
    /// this event's door.
    async fn at(self, db: &DatabaseConnection, event_id: Uuid) -> Result<Uuid, Error> {
        match self {
            Door::Device { id, event_id: its } if its == event_id => Ok(id),
            Door::Device { .. } => Err(Error::Forbidden("this door device is for another event")),
            Door::Organizer(organizer_id) => {
                let event = queries::event(db, event_id).await?;
                if event.organizer_id == organizer_id {
                    Ok(organizer_id)
                } else {
                    Err(Error::Forbidden(
                        "only the event's organizer and its doors check in",
                    ))
                }
            }
        }
    }
}

const NOT_YOURS: &str = "only the event's organizer manages its doors";

/// A door device's bearer token starts with this; the rest is 32 random
/// bytes, base64url. Only its SHA-256 is kept.
pub const DEVICE_TOKEN_PREFIX: &str = "door_";

fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// The door device a token belongs to, unless revoked.
pub async fn device_for_token(
    db: &DatabaseConnection,
    token: &str,
) -> Result<Option<DoorDeviceModel>, Error> {
    Ok(DoorDevice::find()
        .filter(DoorDeviceColumn::TokenHash.eq(token_hash(token)))
        .filter(DoorDeviceColumn::RevokedAt.is_null())
        .one(db)
        .await?)
}

/// The most characters a door device's name keeps.
pub const MAX_DEVICE_NAME_CHARS: usize = 100;

/// A new door device for the event; its token is returned here only.
pub async fn new_device(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    name: String,
) -> Result<(DoorDeviceModel, String), Error> {
    queries::own_event(&services.db, organizer_id, event_id, NOT_YOURS).await?;
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let token = format!("{DEVICE_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let device = DoorDeviceModel {
        id: Uuid::now_v7(),
        event_id,
        name,
        token_hash: token_hash(&token),
        created_at: now(),
        revoked_at: None,
    };
    let device = DoorDeviceActiveModel::from(device)
        .reset_all()
        .insert(&services.db)
        .await?;
    Ok((device, token))
}

/// Revokes a door device: its token stops working at once. Revoking it
/// again changes nothing.
pub async fn revoke_device(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    device_id: Uuid,
) -> Result<DoorDeviceModel, Error> {
    queries::own_event(&services.db, organizer_id, event_id, NOT_YOURS).await?;
    DoorDevice::update_many()
        .col_expr(DoorDeviceColumn::RevokedAt, Expr::value(Some(now())))
        .filter(DoorDeviceColumn::Id.eq(device_id))
        .filter(DoorDeviceColumn::EventId.eq(event_id))
        .filter(DoorDeviceColumn::RevokedAt.is_null())
        .exec(&services.db)
        .await?;
    DoorDevice::find_by_id(device_id)
        .filter(DoorDeviceColumn::EventId.eq(event_id))
        .one(&services.db)
        .await?
        .ok_or(Error::NotFound("door device"))
}

/// The public key a scanner verifies codes with (base64url of 32 bytes).
pub async fn public_key(services: &Services, door: Door, event_id: Uuid) -> Result<String, Error> {
    door.at(&services.db, event_id).await?;
    Ok(services.tickets.public_key())
}

/// A ticket with what a person at the door or in an inbox reads.
#[derive(Debug, Clone)]
pub struct TicketDetails {
    pub ticket: TicketModel,
    pub code: String,
    pub ticket_type: String,
    pub seat: Option<String>,
}

async fn details<C: ConnectionTrait>(
    db: &C,
    services: &Services,
    tickets: Vec<TicketModel>,
) -> Result<Vec<TicketDetails>, DbErr> {
    let types = inventory::type_names(db, tickets.iter().map(|t| t.ticket_type_id)).await?;
    let seat_ids: Vec<Uuid> = tickets.iter().filter_map(|t| t.seat_id).collect();
    let seats: HashMap<Uuid, String> = if seat_ids.is_empty() {
        HashMap::new()
    } else {
        Seat::find()
            .filter(SeatColumn::Id.is_in(seat_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.id, s.label))
            .collect()
    };
    Ok(tickets
        .into_iter()
        .map(|ticket| TicketDetails {
            code: services.tickets.code(ticket.id, ticket.event_id),
            ticket_type: types
                .get(&ticket.ticket_type_id)
                .cloned()
                .unwrap_or_default(),
            seat: ticket.seat_id.and_then(|id| seats.get(&id).cloned()),
            ticket,
        })
        .collect())
}

/// A booking's tickets, for its customer or its event's organizer.
pub async fn of_booking(
    services: &Services,
    viewer: Uuid,
    booking_id: Uuid,
) -> Result<Vec<TicketDetails>, Error> {
    bookings::get(&services.db, viewer, booking_id).await?;
    let tickets = inventory::issued::of_bookings(&services.db, &[booking_id])
        .await?
        .remove(&booking_id)
        .unwrap_or_default();
    Ok(details(&services.db, services, tickets).await?)
}

/// A ticket admitted at the door.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub ticket: TicketDetails,
    pub attendee: String,
}

/// Why a scan did not admit.
fn refused(ticket: Option<TicketModel>) -> Error {
    match ticket {
        None => Error::UnknownTicket,
        Some(ticket) if ticket.status == TicketStatus::Cancelled => Error::TicketCancelled,
        Some(ticket) => match ticket.checked_in_at {
            Some(at) => Error::AlreadyCheckedIn {
                at,
                by: ticket.checked_in_by,
            },
            None => Error::Conflict("the ticket changed while it was scanned; scan again".into()),
        },
    }
}

/// One scan at the door, now: admitted the first time, refused after.
/// The scans of one event that arrive while its previous ones are being
/// checked in go together, in one transaction (see [`check_in_all`]).
pub async fn check_in(
    services: &Services,
    door: Door,
    event_id: Uuid,
    code: &str,
) -> Result<Admitted, Error> {
    let scanner = door.at(&services.db, event_id).await?;
    let ticket_id = services
        .tickets
        .verify(code, event_id)
        .ok_or(Error::UnknownTicket)?;
    let scan = DoorScan { ticket_id, scanner };
    services
        .door_scans
        .call(event_id, scan, |scans| async move {
            match check_in_all(services, event_id, &scans).await {
                Ok(answers) => answers,
                Err(error) => super::batch_errors(&error, scans.len(), "check-ins"),
            }
        })
        .await
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a scan was never checked")))?
}

/// A ticket scanned online, by whom.
pub struct DoorScan {
    ticket_id: Uuid,
    scanner: Uuid,
}

/// This process's online scans, gathered by event: see [`check_in_all`].
pub type Scans = Gather<Uuid, DoorScan, Result<Admitted, Error>>;

/// The most scans one transaction checks in.
pub const SCANS_PER_ROUND: usize = 500;

/// Checks in scans of one event in one transaction: one conditional update
/// of their tickets per scanner, one read of the tickets refused, then what
/// the admitted ones' integrators and doors are told. Answers in scan order;
/// a ticket scanned twice in one batch is admitted to the first scan. What
/// the doors are told is read in the same transaction, so an overloaded
/// database refuses scans before it admits them, never after.
async fn check_in_all(
    services: &Services,
    event_id: Uuid,
    scans: &[DoorScan],
) -> Result<Vec<Result<Admitted, Error>>, DbErr> {
    let txn = begin_write(&services.db).await?;
    let now = now();
    let mut scanners: Vec<Uuid> = scans.iter().map(|scan| scan.scanner).collect();
    scanners.sort_unstable();
    scanners.dedup();
    let mut tickets: HashMap<Uuid, TicketModel> = HashMap::new();
    for scanner in scanners {
        let ids: Vec<Uuid> = scans
            .iter()
            .filter(|scan| scan.scanner == scanner)
            .map(|scan| scan.ticket_id)
            .collect();
        let admitted = Ticket::update_many()
            .col_expr(TicketColumn::CheckedInAt, Expr::value(Some(now)))
            .col_expr(TicketColumn::CheckedInBy, Expr::value(Some(scanner)))
            .filter(TicketColumn::Id.is_in(ids))
            .filter(TicketColumn::EventId.eq(event_id))
            .filter(TicketColumn::Status.eq(TicketStatus::Valid))
            .filter(TicketColumn::CheckedInAt.is_null())
            .exec_with_returning(&txn)
            .await?;
        tickets.extend(admitted.into_iter().map(|ticket| (ticket.id, ticket)));
    }
    // Each admitted ticket goes to the first scan of it by its scanner.
    let mut entries: Vec<TicketModel> = Vec::new();
    let mut given = HashSet::new();
    let admits: Vec<bool> = scans
        .iter()
        .map(|scan| match tickets.get(&scan.ticket_id) {
            Some(ticket)
                if ticket.checked_in_by == Some(scan.scanner) && given.insert(ticket.id) =>
            {
                entries.push(ticket.clone());
                true
            }
            _ => false,
        })
        .collect();
    let refused_ids: Vec<Uuid> = scans
        .iter()
        .map(|scan| scan.ticket_id)
        .filter(|id| !tickets.contains_key(id))
        .collect();
    if !refused_ids.is_empty() {
        let refused = Ticket::find()
            .filter(TicketColumn::Id.is_in(refused_ids))
            .filter(TicketColumn::EventId.eq(event_id))
            .all(&txn)
            .await?;
        tickets.extend(refused.into_iter().map(|ticket| (ticket.id, ticket)));
    }
    let mut entered = admit(&txn, services, event_id, entries).await?.into_iter();
    txn.commit().await?;
    Ok(scans
        .iter()
        .zip(admits)
        .map(
            |(scan, admits)| match admits.then(|| entered.next()).flatten() {
                Some(admitted) => Ok(admitted),
                None => Err(refused(tickets.get(&scan.ticket_id).cloned())),
            },
        )
        .collect())
}

/// Tickets that scans just checked in (all of one event): their
/// integrators are told (`ticket.checked_in`, in the scans' transaction),
/// and the doors are answered, in order.
async fn admit<C: ConnectionTrait>(
    db: &C,
    services: &Services,
    event_id: Uuid,
    tickets: Vec<TicketModel>,
) -> Result<Vec<Admitted>, DbErr> {
    let told: Vec<_> = tickets
        .iter()
        .map(inventory::webhooks::TicketData::from)
        .collect();
    inventory::webhooks::publish(
        db,
        event_id,
        inventory::webhooks::Kind::TicketCheckedIn,
        &told,
    )
    .await?;
    with_attendees(db, services, tickets).await
}

/// What a door is told of admitted tickets: each with its attendee, in order.
async fn with_attendees<C: ConnectionTrait>(
    db: &C,
    services: &Services,
    tickets: Vec<TicketModel>,
) -> Result<Vec<Admitted>, DbErr> {
    if tickets.is_empty() {
        return Ok(Vec::new());
    }
    let booking_ids: Vec<Uuid> = tickets.iter().map(|t| t.booking_id).collect();
    let attendees: HashMap<Uuid, String> = Booking::find()
        .filter(BookingColumn::Id.is_in(booking_ids))
        .find_also_related(User)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(booking, user)| Some((booking.id, user?.name)))
        .collect();
    Ok(details(db, services, tickets)
        .await?
        .into_iter()
        .map(|ticket| Admitted {
            attendee: attendees
                .get(&ticket.ticket.booking_id)
                .cloned()
                .unwrap_or_default(),
            ticket,
        })
        .collect())
}

/// The most scans one upload may carry (the body limit comes first).
pub const MAX_SCANS: usize = 1_000;

pub struct Scan {
    pub code: String,
    pub scanned_at: DateTime<Utc>,
}

/// Applies a scanner's offline scans, all in one transaction: each ticket's
/// entry is its earliest scan; an upload repeated changes nothing more.
/// Returns one result per scan, in order.
pub async fn upload(
    services: &Services,
    door: Door,
    event_id: Uuid,
    scans: Vec<Scan>,
) -> Result<Vec<Result<Admitted, Error>>, Error> {
    if scans.len() > MAX_SCANS {
        return Err(ValidationErrors::single(
            "scans",
            "at most 1,000 scans per upload; send the rest in another",
        )
        .into());
    }
    let scanner = door.at(&services.db, event_id).await?;
    let txn = begin_write(&services.db).await?;
    let mut outcomes = Vec::with_capacity(scans.len());
    for scan in scans {
        let Some(ticket_id) = services.tickets.verify(&scan.code, event_id) else {
            outcomes.push(Uploaded::Refused(Error::UnknownTicket));
            continue;
        };
        // Earlier than what the ticket has (or the first): this scan is its entry.
        let earlier = Condition::any()
            .add(TicketColumn::CheckedInAt.is_null())
            .add(TicketColumn::CheckedInAt.gt(scan.scanned_at));
        let entered = Ticket::update_many()
            .col_expr(
                TicketColumn::CheckedInAt,
                Expr::value(Some(scan.scanned_at)),
            )
            .col_expr(TicketColumn::CheckedInBy, Expr::value(Some(scanner)))
            .filter(TicketColumn::Id.eq(ticket_id))
            .filter(TicketColumn::EventId.eq(event_id))
            .filter(TicketColumn::Status.eq(TicketStatus::Valid))
            .filter(earlier)
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next();
        let outcome = match entered {
            Some(ticket) => Uploaded::Entry(ticket),
            None => {
                let ticket = Ticket::find_by_id(ticket_id)
                    .filter(TicketColumn::EventId.eq(event_id))
                    .one(&txn)
                    .await?;
                match ticket {
                    // This very scan, uploaded again: the same answer.
                    Some(ticket)
                        if ticket.status == TicketStatus::Valid
                            && ticket.checked_in_at == Some(scan.scanned_at)
                            && ticket.checked_in_by == Some(scanner) =>
                    {
                        Uploaded::Again(ticket)
                    }
                    ticket => Uploaded::Refused(refused(ticket)),
                }
            }
        };
        outcomes.push(outcome);
    }
    let (entries, again): (Vec<_>, Vec<_>) = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Uploaded::Entry(ticket) => Some((true, ticket.clone())),
            Uploaded::Again(ticket) => Some((false, ticket.clone())),
            Uploaded::Refused(_) => None,
        })
        .partition(|(entry, _)| *entry);
    let untag = |tickets: Vec<(bool, TicketModel)>| tickets.into_iter().map(|(_, t)| t).collect();
    let mut entries = admit(&txn, services, event_id, untag(entries))
        .await?
        .into_iter();
    let mut again = with_attendees(&txn, services, untag(again))
        .await?
        .into_iter();
    txn.commit().await?;
    let lost = || Error::Internal(anyhow::anyhow!("an uploaded scan lost its ticket"));
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Uploaded::Entry(_) => entries.next().ok_or_else(lost),
            Uploaded::Again(_) => again.next().ok_or_else(lost),
            Uploaded::Refused(error) => Err(error),
        })
        .collect())
}

/// What one uploaded scan did.
enum Uploaded {
    /// The ticket's entry (its first scan, or one earlier than it had).
    Entry(TicketModel),
    /// The ticket's entry already, from this scan uploaded before.
    Again(TicketModel),
    Refused(Error),
}

/// One page of a scanner's cache: every ticket of the event by id.
pub const PAGE: u64 = 1_000;

pub async fn cache_page(
    services: &Services,
    door: Door,
    event_id: Uuid,
    after: Option<Uuid>,
) -> Result<(Vec<TicketModel>, Option<Uuid>), Error> {
    door.at(&services.db, event_id).await?;
    let mut query = Ticket::find()
        .filter(TicketColumn::EventId.eq(event_id))
        .order_by_asc(TicketColumn::Id)
        .limit(PAGE + 1);
    if let Some(after) = after {
        query = query.filter(TicketColumn::Id.gt(after));
    }
    let mut page = query.all(&services.db).await?;
    let next = if page.len() as u64 > PAGE {
        page.truncate(PAGE as usize);
        page.last().map(|t| t.id)
    } else {
        None
    };
    Ok((page, next))
}

/// How many of the event's tickets are checked in (the report's).
pub async fn checked_in<C: ConnectionTrait>(db: &C, event_id: Uuid) -> Result<u64, Error> {
    use sea_orm::PaginatorTrait;
    Ok(Ticket::find()
        .filter(TicketColumn::EventId.eq(event_id))
        .filter(TicketColumn::CheckedInAt.is_not_null())
        .count(db)
        .await?)
}
