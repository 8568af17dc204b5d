//! The rules of the product, independent of HTTP: what may be booked, by whom, and
//! what has to be written together. Nothing here knows about Rocket.

/// PostgreSQL's one-statement take, as the first step of a CTE named `taken`:
/// `$1` tickets of event `$2` move from available into `$counter`, only for an
/// event that sells that way (general admission, on sale at `$5`, no waiting
/// room) and has them; it returns `$returning`. The bookings and the holds
/// that take this path share it, so they cannot disagree about which events
/// may.
macro_rules! take_in_one_statement {
    ($counter:literal, $returning:literal) => {
        concat!(
            "WITH taken AS (
                UPDATE events
                   SET available_tickets = available_tickets - $1,
                       ",
            $counter,
            " = ",
            $counter,
            " + $1
                 WHERE id = $2 AND status = 'scheduled' AND NOT seated
                   AND NOT waiting_room_enabled AND (on_sale_at IS NULL OR on_sale_at <= $5)
                   AND available_tickets >= $1
             RETURNING ",
            $returning,
            "
            )"
        )
    };
}

pub mod bookings;
pub mod events;
pub mod holds;
pub mod idempotency;
pub mod outbox;
pub mod seating;
pub mod users;
mod validation;
pub mod waiting_room;
pub mod waitlist;

pub use validation::ValidationErrors;

use std::sync::Arc;

use platform::{ChangeFeed, Changed, Queues};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

/// Told what happens in the business as it happens; the api counts it in its
/// metrics. The domain only reports.
pub trait Observer: Send + Sync {
    fn booked(&self) {}
    fn refused_sold_out(&self) {}
    fn booking_cancelled(&self) {}
}

/// What the domain needs from the outside world, for one request.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub queues: Queues,
    /// Where availability changes are announced (`crate::live` listens).
    pub live: ChangeFeed,
    pub observer: Arc<dyn Observer>,
    /// Recorded on the notifications this request causes.
    pub request_id: Option<String>,
}

impl Services {
    pub fn new(
        db: DatabaseConnection,
        queues: Queues,
        live: ChangeFeed,
        observer: Arc<dyn Observer>,
    ) -> Self {
        Self {
            db,
            queues,
            live,
            observer,
            request_id: None,
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
    /// Between domain functions only: the one-statement path does not apply
    /// (reserved seating, a waiting room); take the tickets in a transaction.
    /// Never answered to a client.
    #[error("the event needs the transaction path")]
    NeedsTransaction,
    #[error("conflict: {0}")]
    Conflict(String),
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

/// Tells every api process, after the commit, that an event's availability
/// changed (and which seats); live subscribers read the new numbers.
pub fn announce(services: &Services, event_id: uuid::Uuid, seat_ids: Vec<uuid::Uuid>) {
    let feed = services.live.clone();
    tokio::spawn(async move { feed.publish(Changed { event_id, seat_ids }).await });
}
