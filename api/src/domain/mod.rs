//! The rules of the product, independent of HTTP: what may be booked, by whom, and
//! what has to be written together. Nothing here knows about Rocket.

pub mod admission;
pub mod after_commit;
pub mod bookings;
pub mod box_office;
pub mod checkout;
pub mod door;
mod event_cache;
pub mod event_updates;
pub mod events;
pub mod holds;
pub mod idempotency;
pub mod money;
pub mod outbox;
pub mod payments;
pub mod promo_codes;
pub mod promotion;
pub mod queries;
pub mod refunds;
pub mod report;
pub mod sale;
pub mod seating;
pub mod ticket_types;
pub mod users;
mod validation;
pub mod waiting_room;
pub mod waitlist;
pub mod webhooks;

pub use validation::{ValidationErrors, moment, text};

use std::sync::Arc;

use platform::{ChangeFeed, Queues};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

/// Told what happens in the business as it happens; the api counts it in its
/// metrics. The domain only reports.
pub trait Observer: Send + Sync {
    fn booked(&self) {}
    fn refused_sold_out(&self) {}
    fn booking_cancelled(&self) {}
    /// A payment event, by provider and outcome (`payments_total`).
    fn payment(&self, _provider: &'static str, _outcome: &'static str) {}
}

/// What the domain needs from the outside world, for one request.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub queues: Queues,
    pub observer: Arc<dyn Observer>,
    /// This process's batches, what it knows of each event, and where
    /// changes are announced (`crate::live` listens).
    pub box_office: Arc<box_office::BoxOffice>,
    /// This process's late joins to waiting rooms, batched per event.
    pub late_joins: Arc<waiting_room::LateJoins>,
    /// This process's scans at the doors, batched per event.
    pub door_scans: Arc<door::Scans>,
    /// Recorded on the notifications this request causes.
    pub request_id: Option<String>,
    /// How long an event-update email waits for further changes to the event
    /// before it goes out (`event_updates`); zero sends each change at once.
    pub event_update_delay: std::time::Duration,
    /// Card payments; `None`: only the organizer's manual payments.
    pub stripe: Option<Arc<stripe_client::Stripe>>,
    /// Signs and checks ticket codes (the deployment's key).
    pub tickets: Arc<ticket_code::Signer>,
    /// Where webhook endpoints may point (`WEBHOOK_ALLOW_HTTP`,
    /// `WEBHOOK_ALLOW_PRIVATE`); by default public `https://` only.
    pub webhook_destinations: webhook::DestinationRules,
}

impl Services {
    pub fn new(
        db: DatabaseConnection,
        queues: Queues,
        live: ChangeFeed,
        observer: Arc<dyn Observer>,
        event_update_delay: std::time::Duration,
        stripe: Option<Arc<stripe_client::Stripe>>,
        tickets: Arc<ticket_code::Signer>,
    ) -> Self {
        Self {
            box_office: box_office::BoxOffice::open(db.clone(), queues.clone(), live),
            late_joins: Arc::new(waiting_room::LateJoins::new(waiting_room::MAX_JOINS)),
            door_scans: Arc::new(door::Scans::new(door::SCANS_PER_ROUND)),
            db,
            queues,
            observer,
            request_id: None,
            event_update_delay,
            stripe,
            tickets,
            webhook_destinations: webhook::DestinationRules::default(),
        }
    }

    pub fn for_request(&self, request_id: String) -> Self {
        Self {
            request_id: Some(request_id),
            ..self.clone()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input")]
    Validation(ValidationErrors),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("email taken")]
    EmailTaken,
    #[error("sold out ({available} left)")]
    SoldOut { available: i32 },
    #[error("not enough of ticket type {ticket_type_id} ({available} left)")]
    TypeSoldOut {
        ticket_type_id: uuid::Uuid,
        available: i32,
    },
    #[error("ticket type {ticket_type_id} is not on sale now")]
    TypeNotOnSale { ticket_type_id: uuid::Uuid },
    #[error("event cancelled")]
    EventCancelled,
    #[error("seats unavailable: {0:?}")]
    SeatsUnavailable(Vec<uuid::Uuid>),
    #[error("the customer already holds tickets for this event: {hold_id}")]
    HoldExists { hold_id: uuid::Uuid },
    #[error("the hold has expired")]
    HoldExpired,
    #[error("not on sale yet")]
    NotOnSale,
    #[error("no valid admission pass")]
    NotAdmitted,
    #[error("conflict: {0}")]
    Conflict(String),
    /// Paid tickets are booked by paying for a hold (SPEC §14).
    #[error("payment required")]
    PaymentRequired,
    #[error("the refund window closed at {0}")]
    RefundWindowClosed(chrono::DateTime<chrono::Utc>),
    /// The payment provider could not be reached or refused the request.
    #[error("payment provider: {0}")]
    PaymentProvider(String),
    /// A provider webhook whose signature does not hold.
    #[error("bad webhook signature: {0}")]
    BadSignature(String),
    /// A code that is not one of this event's tickets (forged, altered,
    /// another event's, or garbage).
    #[error("unknown ticket")]
    UnknownTicket,
    #[error("the ticket is cancelled")]
    TicketCancelled,
    #[error("already checked in at {at}")]
    AlreadyCheckedIn {
        at: chrono::DateTime<chrono::Utc>,
        /// The door device (or organizer) that checked it in.
        by: Option<uuid::Uuid>,
    },
    #[error("idempotency key reused for a different request")]
    IdempotencyMismatch,
    #[error("a request with this idempotency key is still in flight")]
    StillInFlight,
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// Too much of a bounded resource is in use (password hashing); try later.
    #[error("busy: {0}")]
    Busy(&'static str),
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// What each request of a batch that failed is answered (the database's
/// error once per request: `DbErr` is not `Clone`).
pub(super) fn batch_error(error: &DbErr, batch: &str) -> Error {
    if is_unavailable(error) {
        Error::Unavailable(DbErr::Custom(error.to_string()))
    } else {
        Error::Internal(anyhow::anyhow!("{batch}: {error}"))
    }
}

/// [`batch_error`] for each of a failed batch's `count` requests.
pub(super) fn batch_errors<T>(error: &DbErr, count: usize, batch: &str) -> Vec<Result<T, Error>> {
    (0..count).map(|_| Err(batch_error(error, batch))).collect()
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) {
            Error::Unavailable(error)
        } else {
            Error::Internal(error.into())
        }
    }
}

impl From<crate::auth::password::PasswordError> for Error {
    fn from(error: crate::auth::password::PasswordError) -> Self {
        match error {
            crate::auth::password::PasswordError::Busy => {
                Error::Busy("too many sign-ins at once; try again in a few seconds")
            }
            other => Error::Internal(other.into()),
        }
    }
}

impl From<ValidationErrors> for Error {
    fn from(errors: ValidationErrors) -> Self {
        Error::Validation(errors)
    }
}

/// Connection-level failures, and PostgreSQL giving up one side of a deadlock
/// (`40P01`; an event cancelled while its holds are confirmed), mean "try again
/// later", not "bug".
fn is_unavailable(error: &DbErr) -> bool {
    if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = error
        && let sea_orm::sqlx::Error::Database(db) = e.as_ref()
        && db.code().as_deref() == Some("40P01")
    {
        return true;
    }
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::WorkerCrashed
        ),
        _ => false,
    }
}

pub use platform::db::now;

pub use platform::db::begin_write;
