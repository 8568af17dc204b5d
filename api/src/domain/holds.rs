//! Holds and checkout (SPEC §8): tickets set aside for a customer for the
//! event's `hold_minutes`, then confirmed into a booking, released, or expired.
//!
//! Taking tickets is a conditional update of the event's counters
//! (`available -= n, held += n` only while `available >= n`), in the same
//! transaction as the hold row and its seats, or, for a quantity, in a batch
//! of the event's concurrent requests (`box_office`); the database keeps
//! `available + held + booked == total`. Ending a hold is `inventory`'s, shared
//! with the worker that expires holds. Lock order on every path: hold, event,
//! seats (a new hold has no row to lock yet: event, then seats).

use chrono::Duration;
use entity::prelude::*;
use inventory::{Count, move_tickets};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Services, ValidationErrors, after_commit, begin_write,
    box_office::{Answer, Order, Taking},
    idempotency::{self, Remember},
    now, outbox, queries,
    sale::{self, BookingDetails, HoldDetails, Selection},
    seating,
};

/// Holds tickets for a customer, or fails having written nothing.
pub async fn create(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    selection: Selection,
) -> Result<HoldDetails, Error> {
    let result = match selection {
        Selection::Seats(_) => {
            hold_in_transaction(services, customer_id, event_id, selection).await
        }
        Selection::Quantity(quantity) => {
            services
                .box_office
                .refusing_sold_out(event_id, quantity, async {
                    match hold_in_batch(services, customer_id, event_id, quantity).await? {
                        Some(details) => Ok(details),
                        None => {
                            hold_in_transaction(services, customer_id, event_id, selection).await
                        }
                    }
                })
                .await
        }
    };
    match result {
        // The one-hold rule comes first, whichever path (or memory) saw the
        // event sold out: a customer's own hold is the answer to act on.
        Err(Error::SoldOut { .. } | Error::SeatsUnavailable(_)) => {
            match active_hold(&services.db, customer_id, event_id).await? {
                Some(hold) => Err(Error::HoldExists { hold_id: hold.id }),
                None => result,
            }
        }
        result => result,
    }
}

/// Particular seats, or admission through a waiting room: checked and taken
/// in a transaction of the hold's own.
async fn hold_in_transaction(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    selection: Selection,
) -> Result<HoldDetails, Error> {
    let (txn, hold, seats) = take(
        services,
        customer_id,
        event_id,
        selection,
        HoldStatus::Active,
    )
    .await?;
    txn.commit().await?;
    after_commit::schedule_expiry(services, &hold);
    super::announce(
        services,
        event_id,
        seats.iter().map(|seat| seat.id).collect(),
    );
    Ok(HoldDetails { hold, seats })
}

/// A hold and its confirmation in one transaction: how a seated or
/// waiting-room event is booked in one step.
pub(super) async fn book_through_hold(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    selection: Selection,
    remember: Option<Remember<BookingDetails>>,
) -> Result<BookingDetails, Error> {
    let (txn, hold, seats) = take(
        services,
        customer_id,
        event_id,
        selection,
        HoldStatus::Confirmed,
    )
    .await?;
    let booking = BookingModel {
        id: Uuid::now_v7(),
        event_id,
        user_id: customer_id,
        quantity: hold.quantity,
        status: BookingStatus::Confirmed,
        created_at: hold.created_at,
        cancelled_at: None,
    };
    let (details, notification_id) =
        record_booking(&txn, services, &hold, booking, seats, remember).await?;
    txn.commit().await?;
    services.observer.booked();
    outbox::enqueue(services, vec![notification_id]);
    super::announce(
        services,
        event_id,
        details.seats.iter().map(|seat| seat.id).collect(),
    );
    Ok(details)
}

/// In the event's next batch (`box_office`). `None`: the event needs a
/// transaction of its own (a waiting room).
async fn hold_in_batch(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    quantity: i32,
) -> Result<Option<HoldDetails>, Error> {
    let order = Order {
        customer_id,
        quantity,
        taking: Taking::Hold {
            hold_id: Uuid::now_v7(),
        },
        request_id: services.request_id.clone(),
    };
    match services.box_office.take(event_id, order).await? {
        Answer::Held { hold, seats } => Ok(Some(HoldDetails { hold, seats })),
        Answer::SoldOut { available } => Err(Error::SoldOut { available }),
        Answer::HoldExists { hold_id } => Err(Error::HoldExists { hold_id }),
        Answer::Booked { .. } | Answer::ClaimLost => Err(Error::Internal(anyhow::anyhow!(
            "a hold's batch answered as for a booking"
        ))),
        Answer::NotHere => {
            match super::box_office::why_not_sold(&services.db, event_id, true).await {
                Error::NeedsTransaction => Ok(None),
                why => Err(why),
            }
        }
    }
}

/// Takes the tickets in a transaction it leaves open for the caller to finish:
/// the counters (the event row stays locked from here to commit), the hold row
/// in `status`, and on a seated event its seats.
async fn take(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    selection: Selection,
    status: HoldStatus,
) -> Result<(DatabaseTransaction, HoldModel, Vec<SeatModel>), Error> {
    let count = selection.count();
    let booking = status == HoldStatus::Confirmed;
    let txn = begin_write(&services.db).await?;
    let event = Event::find_by_id(event_id)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("event"))?;
    if event.status == EventStatus::Cancelled {
        return Err(Error::EventCancelled);
    }
    super::waiting_room::check_admission(&txn, &event, customer_id).await?;
    if matches!(selection, Selection::Seats(_)) && !event.seated {
        return Err(ValidationErrors::single(
            "seat_ids",
            "this event has general admission; ask for a quantity",
        )
        .into());
    }
    // The event row stays locked from here to commit.
    let into = if booking { Count::Booked } else { Count::Held };
    let taken = move_tickets(event_id, count, Count::Available, into)
        .filter(EventColumn::Status.eq(EventStatus::Scheduled))
        .filter(EventColumn::AvailableTickets.gte(count))
        .exec(&txn)
        .await?;
    if taken.rows_affected == 0 {
        drop(txn);
        let why = super::box_office::why_not_sold(&services.db, event_id, false).await;
        // Fewer free than asked for: some of the asked-for seats are taken.
        if let (Error::SoldOut { .. }, Selection::Seats(ids)) = (&why, &selection) {
            return Err(Error::SeatsUnavailable(
                seating::unavailable(&services.db, event_id, ids).await?,
            ));
        }
        return Err(why);
    }
    let now = now();
    let hold = HoldActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event_id),
        user_id: Set(customer_id),
        quantity: Set(count),
        status: Set(status),
        expires_at: Set(now + Duration::minutes(i64::from(event.hold_minutes))),
        booking_id: Set(None),
        created_at: Set(now),
        ended_at: Set(booking.then_some(now)),
    };
    let hold = match hold.insert(&txn).await {
        Ok(hold) => hold,
        Err(error) if is_second_active_hold(&error) => {
            drop(txn);
            return Err(existing_hold(&services.db, customer_id, event_id).await);
        }
        Err(error) => return Err(error.into()),
    };
    let seats = if event.seated {
        let wanted = match &selection {
            Selection::Seats(ids) => ids.clone(),
            Selection::Quantity(n) => seating::best_available(&txn, event_id, *n).await?,
        };
        let seat_status = if booking {
            SeatStatus::Booked
        } else {
            SeatStatus::Held
        };
        match seating::take(&txn, event_id, hold.id, &wanted, seat_status).await? {
            Ok(seats) => seats,
            Err(unavailable) => {
                drop(txn);
                return Err(Error::SeatsUnavailable(unavailable));
            }
        }
    } else {
        Vec::new()
    };
    Ok((txn, hold, seats))
}

/// Inside a transaction that took the tickets: the booking row, its hold's
/// `booking_id`, the confirmation notice and the remembered response.
async fn record_booking(
    txn: &DatabaseTransaction,
    services: &Services,
    hold: &HoldModel,
    booking: BookingModel,
    seats: Vec<SeatModel>,
    remember: Option<Remember<BookingDetails>>,
) -> Result<(BookingDetails, Uuid), Error> {
    if let Some(remember) = &remember
        && !idempotency::fence(txn, &remember.claim).await?
    {
        // A retry took the key over; it does the work, this writes nothing.
        return Err(Error::StillInFlight);
    }
    let booking = BookingActiveModel::from(booking)
        .reset_all()
        .insert(txn)
        .await?;
    Hold::update_many()
        .col_expr(HoldColumn::BookingId, Expr::value(Some(booking.id)))
        .filter(HoldColumn::Id.eq(hold.id))
        .exec(txn)
        .await?;
    let details = BookingDetails { booking, seats };
    let ids = outbox::write(txn, services, vec![sale::confirmation(&details.booking)]).await?;
    if let Some(remember) = remember {
        let (status, response) = remember.response(&details);
        idempotency::save_response(txn, &remember.claim, status, &response).await?;
    }
    let notification_id = ids.first().copied().unwrap_or_default();
    Ok((details, notification_id))
}

fn is_second_active_hold(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The customer's active hold on the event, if any (at most one: a unique
/// index says so).
pub(super) async fn active_hold<C: sea_orm::ConnectionTrait>(
    db: &C,
    customer_id: Uuid,
    event_id: Uuid,
) -> Result<Option<HoldModel>, DbErr> {
    Hold::find()
        .filter(HoldColumn::EventId.eq(event_id))
        .filter(HoldColumn::UserId.eq(customer_id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .one(db)
        .await
}

async fn existing_hold(db: &DatabaseConnection, customer_id: Uuid, event_id: Uuid) -> Error {
    match active_hold(db, customer_id, event_id).await {
        Ok(Some(hold)) => Error::HoldExists { hold_id: hold.id },
        // Ended in the meantime: the client may simply try again.
        Ok(None) => {
            Error::Conflict("your previous hold on this event just ended; try again".into())
        }
        Err(error) => error.into(),
    }
}

/// The customer's own hold; anyone else's does not exist.
async fn own(
    db: &DatabaseConnection,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<HoldModel, Error> {
    Hold::find_by_id(hold_id)
        .filter(HoldColumn::UserId.eq(customer_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("hold"))
}

pub async fn get(
    db: &DatabaseConnection,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<HoldDetails, Error> {
    let hold = own(db, customer_id, hold_id).await?;
    details(db, hold).await
}

/// The most holds [`list_own`] returns: the newest.
pub const LIST_LIMIT: u64 = 100;

/// A customer's own holds, newest first (up to [`LIST_LIMIT`]), all or only
/// those in `status`: how a waitlist offer is found without its email.
pub async fn list_own(
    db: &DatabaseConnection,
    customer_id: Uuid,
    status: Option<HoldStatus>,
) -> Result<Vec<HoldDetails>, Error> {
    let mut query = Hold::find()
        .filter(HoldColumn::UserId.eq(customer_id))
        .order_by_desc(HoldColumn::CreatedAt)
        .order_by_desc(HoldColumn::Id)
        .limit(LIST_LIMIT);
    if let Some(status) = status {
        query = query.filter(HoldColumn::Status.eq(status));
    }
    let holds = query.all(db).await?;
    let ids: Vec<Uuid> = holds.iter().map(|hold| hold.id).collect();
    let mut seats = super::queries::of_holds(db, &ids).await?;
    Ok(holds
        .into_iter()
        .map(|hold| HoldDetails {
            seats: seats.remove(&hold.id).unwrap_or_default(),
            hold,
        })
        .collect())
}

async fn details(db: &DatabaseConnection, hold: HoldModel) -> Result<HoldDetails, Error> {
    let seats = super::queries::of_holds(db, &[hold.id])
        .await?
        .remove(&hold.id)
        .unwrap_or_default();
    Ok(HoldDetails { hold, seats })
}

/// A hold's state changes at most a few times; a few rereads always settle.
const SETTLE_ATTEMPTS: usize = 4;

/// Confirms an active hold into a booking. A repeat returns the same booking; a
/// hold past its time is expired here (if the worker has not yet) and refused.
pub async fn confirm(
    services: &Services,
    customer_id: Uuid,
    hold_id: Uuid,
    remember: Option<Remember<BookingDetails>>,
) -> Result<BookingDetails, Error> {
    let mut remember = remember;
    for _ in 0..SETTLE_ATTEMPTS {
        let hold = own(&services.db, customer_id, hold_id).await?;
        match hold.status {
            HoldStatus::Confirmed => {
                let booking_id = hold.booking_id.ok_or(Error::NotFound("booking"))?;
                let details = queries::details(&services.db, booking_id).await?;
                // A new key for an old confirmation: its repeats answer the same.
                if let Some(remember) = &remember {
                    let (status, response) = remember.response(&details);
                    idempotency::save_response(&services.db, &remember.claim, status, &response)
                        .await?;
                }
                return Ok(details);
            }
            HoldStatus::Released => return Err(released()),
            HoldStatus::Expired => return Err(Error::HoldExpired),
            HoldStatus::Active if hold.expires_at <= now() => {
                let ending = inventory::Ending::Expired;
                if let Some(ended) =
                    inventory::end_hold(&services.db, hold.id, ending, now()).await?
                {
                    super::announce(services, hold.event_id, ended.seat_ids);
                    super::after_commit::offered(services, ended.offers);
                }
            }
            HoldStatus::Active => {
                if let Some((details, notification_id)) =
                    confirm_active(services, &hold, &mut remember).await?
                {
                    services.observer.booked();
                    outbox::enqueue(services, vec![notification_id]);
                    let seats = details.seats.iter().map(|seat| seat.id).collect();
                    super::announce(services, hold.event_id, seats);
                    return Ok(details);
                }
            }
        }
    }
    Err(Error::Conflict(
        "the hold changed while confirming it; try again".into(),
    ))
}

fn released() -> Error {
    Error::Conflict("this hold was released; hold tickets again".into())
}

/// `None`: the hold stopped being active (expired or released) before this
/// could confirm it, and nothing was written.
async fn confirm_active(
    services: &Services,
    hold: &HoldModel,
    remember: &mut Option<Remember<BookingDetails>>,
) -> Result<Option<(BookingDetails, Uuid)>, Error> {
    let now = now();
    let txn = begin_write(&services.db).await?;
    let confirmed = Hold::update_many()
        .col_expr(HoldColumn::Status, Expr::value(HoldStatus::Confirmed))
        .col_expr(HoldColumn::EndedAt, Expr::value(Some(now)))
        .filter(HoldColumn::Id.eq(hold.id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .filter(HoldColumn::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if confirmed.rows_affected == 0 {
        return Ok(None);
    }
    move_tickets(hold.event_id, hold.quantity, Count::Held, Count::Booked)
        .exec(&txn)
        .await?;
    seating::book_held(&txn, hold.id).await?;
    let seats = super::queries::of_holds(&txn, &[hold.id])
        .await?
        .remove(&hold.id)
        .unwrap_or_default();
    let booking = BookingModel {
        id: Uuid::now_v7(),
        event_id: hold.event_id,
        user_id: hold.user_id,
        quantity: hold.quantity,
        status: BookingStatus::Confirmed,
        created_at: now,
        cancelled_at: None,
    };
    let recorded = record_booking(&txn, services, hold, booking, seats, remember.take()).await?;
    txn.commit().await?;
    Ok(Some(recorded))
}

/// Releases an active hold; its tickets go back on sale at once. Releasing a
/// released hold returns it unchanged.
pub async fn release(
    services: &Services,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<HoldDetails, Error> {
    for _ in 0..SETTLE_ATTEMPTS {
        let hold = own(&services.db, customer_id, hold_id).await?;
        match hold.status {
            HoldStatus::Released => return details(&services.db, hold).await,
            HoldStatus::Confirmed => {
                return Err(Error::Conflict(
                    "this hold is confirmed; cancel its booking instead".into(),
                ));
            }
            HoldStatus::Expired => return Err(Error::HoldExpired),
            HoldStatus::Active => {
                let ending = if hold.expires_at <= now() {
                    inventory::Ending::Expired
                } else {
                    inventory::Ending::Released
                };
                if let Some(ended) =
                    inventory::end_hold(&services.db, hold.id, ending, now()).await?
                {
                    super::announce(services, hold.event_id, ended.seat_ids);
                    super::after_commit::offered(services, ended.offers);
                    if ending == inventory::Ending::Released {
                        return details(&services.db, ended.hold).await;
                    }
                }
            }
        }
    }
    Err(Error::Conflict(
        "the hold changed while releasing it; try again".into(),
    ))
}
