//! Events as their organizers make and change them (SPEC §4, §8-10): what a
//! new event or a change may say (`input`), creating one, reading them,
//! changing one, cancelling one. Every change to an event starts by locking
//! its row ([`lock_own_event`]), so the lock order is always the same.

mod cancel;
mod change;
mod create;
mod input;
mod read;
mod types;

pub use cancel::cancel;
pub use change::update;
pub use create::create;
pub use input::{
    DEFAULT_HOLD_MINUTES, DEFAULT_OFFER_MINUTES, DEFAULT_PAGE_SIZE, EventChanges, MAX_HOLD_MINUTES,
    MAX_OFFER_MINUTES, MAX_PAGE_SIZE, MAX_TICKETS, NewEvent, SaleSettings, WaitingRoomSettings,
};
pub use read::{Page, attendees, get, list};
pub use types::{add_type, change_type, remove_type, ticket_types};

use entity::prelude::*;
use sea_orm::{DatabaseTransaction, EntityTrait, QuerySelect};
use uuid::Uuid;

use crate::domain::Error;

/// Locks the event row for the rest of the transaction, for its organizer only.
/// Every change to an event starts here, so the lock order is always the same.
pub(in crate::domain) async fn lock_own_event(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    organizer_id: Uuid,
    not_yours: &'static str,
) -> Result<EventModel, Error> {
    let event = Event::find_by_id(event_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(Error::NotFound("event"))?;
    if event.organizer_id != organizer_id {
        return Err(Error::Forbidden(not_yours));
    }
    Ok(event)
}
