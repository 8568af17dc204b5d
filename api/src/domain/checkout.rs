//! Taking tickets (SPEC §8, §9): every booking and hold a customer asks for
//! goes through [`take`], which decides once how the tickets are taken.
//!
//! - **In the event's next batch** (`box_office`): a quantity, on an event on
//!   sale without a waiting room.
//! - **In a transaction of the order's own**: particular seats, or an event
//!   behind a waiting room (admission is per customer). The counters move
//!   first, in a conditional update that keeps the event row locked to the
//!   commit; then the hold row (confirmed at once for a booking), its seats,
//!   and for a booking the booking with its notice and remembered response.
//!
//! Lock order: event, then seats (a new hold has no row to lock yet).

use entity::prelude::*;
use inventory::{Count, per_type};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Services, ValidationErrors, admission, begin_write,
    box_office::{self, Answer, Taking},
    idempotency::{self, Remember},
    now, outbox, promotion,
    sale::{self, BookingDetails, HoldDetails, Selection},
    seating,
};

/// What a customer asks to take.
pub struct Order {
    pub customer_id: Uuid,
    pub selection: Selection,
    /// As the customer typed it.
    pub promo_code: Option<String>,
    pub kind: Kind,
}

pub enum Kind {
    /// Booked at once; with a key, its response is remembered in the same
    /// transaction.
    Booking {
        remember: Option<Remember<BookingDetails>>,
    },
    /// Held for the event's `hold_minutes`.
    Hold,
}

pub enum Taken {
    Booked(BookingDetails),
    Held(HoldDetails),
}

/// Takes the order's tickets, or fails having written nothing. A customer who
/// asks to hold tickets while holding some is told of the hold (the one-hold
/// rule comes first, whichever path, or memory, saw the event sold out).
pub async fn take(services: &Services, event_id: Uuid, order: Order) -> Result<Taken, Error> {
    let (customer_id, booking) = (
        order.customer_id,
        matches!(order.kind, Kind::Booking { .. }),
    );
    // The transaction's path is boxed where the batch's is the usual one:
    // inline, its state would be room in every request's future (1,000
    // connections booking held 22 KiB each, most of it this).
    let result = match order.selection {
        // A promo code's uses are taken one customer at a time.
        _ if order.promo_code.is_some() => {
            Box::pin(in_transaction(services, event_id, order)).await
        }
        Selection::Seats(_) => Box::pin(in_transaction(services, event_id, order)).await,
        Selection::Quantity(_) | Selection::Items(_) => {
            let selection = order.selection.clone();
            let selling = in_batch(services, event_id, order);
            services
                .box_office
                .refusing_sold_out(event_id, &selection, selling)
                .await
        }
    };
    match result {
        Ok(Taken::Booked(details)) => {
            services.observer.booked();
            Ok(Taken::Booked(details))
        }
        Err(Error::SoldOut { .. } | Error::TypeSoldOut { .. } | Error::SeatsUnavailable(_))
            if !booking =>
        {
            match inventory::active_hold(&services.db, customer_id, event_id).await? {
                Some(hold) => Err(Error::HoldExists { hold_id: hold.id }),
                None => result,
            }
        }
        Err(Error::SoldOut { .. } | Error::TypeSoldOut { .. }) => {
            services.observer.refused_sold_out();
            result
        }
        result => result,
    }
}

async fn in_batch(services: &Services, event_id: Uuid, order: Order) -> Result<Taken, Error> {
    let taking = match &order.kind {
        Kind::Booking { remember } => Taking::Booking {
            remember: remember.clone(),
        },
        Kind::Hold => Taking::Hold,
    };
    let batch_order = box_office::Order {
        customer_id: order.customer_id,
        selection: order.selection.clone(),
        taking,
        request_id: services.request_id.clone(),
    };
    match services.box_office.take(event_id, batch_order).await? {
        Answer::Booked(details) => Ok(Taken::Booked(details)),
        Answer::Held(details) => Ok(Taken::Held(details)),
        Answer::SoldOut { available } => Err(Error::SoldOut { available }),
        Answer::Refused(why) => Err(why),
        Answer::HoldExists { hold_id } => Err(Error::HoldExists { hold_id }),
        Answer::ClaimLost => Err(Error::StillInFlight),
        Answer::NotHere => {
            let event = super::queries::event(&services.db, event_id).await?;
            // It came on sale after the batch looked.
            if sale::on_sale(&event, now()) {
                Box::pin(in_transaction(services, event_id, order)).await
            } else {
                Err(why_not_sold(&event))
            }
        }
    }
}

/// Why an event sold nothing: read after the fact, so the count is a hint,
/// not a promise.
fn why_not_sold(event: &EventModel) -> Error {
    if event.status == EventStatus::Cancelled {
        Error::EventCancelled
    } else if sale::before_on_sale(event, now()) {
        Error::NotOnSale
    } else {
        Error::SoldOut {
            available: event.available_tickets,
        }
    }
}

async fn in_transaction(services: &Services, event_id: Uuid, order: Order) -> Result<Taken, Error> {
    let Order {
        customer_id,
        selection,
        promo_code,
        kind,
    } = order;
    let status = match kind {
        Kind::Booking { .. } => HoldStatus::Confirmed,
        Kind::Hold => HoldStatus::Active,
    };
    let (txn, details) = take_in(
        services,
        customer_id,
        event_id,
        &selection,
        promo_code.as_deref(),
        status,
    )
    .await?;
    let seat_ids = details.seats.iter().map(|seat| seat.id).collect();
    match kind {
        Kind::Hold => {
            txn.commit().await?;
            let after = services.after_commit().held(&details.hold);
            services.publish(after.changed(event_id, seat_ids));
            Ok(Taken::Held(details))
        }
        Kind::Booking { remember } => {
            let HoldDetails { hold, items, seats } = details;
            let lines = sale::lines(&items);
            let booking = BookingModel {
                promo_code_id: hold.promo_code_id,
                promo_uses: hold.promo_uses,
                ..inventory::new_booking(
                    event_id,
                    customer_id,
                    &lines,
                    &hold.currency,
                    hold.created_at,
                )
            };
            let (details, notification_id) =
                record_booking(&txn, services, &hold, booking, items, seats, remember).await?;
            txn.commit().await?;
            let after = services.after_commit().notify(vec![notification_id]);
            services.publish(after.changed(event_id, seat_ids));
            Ok(Taken::Booked(details))
        }
    }
}

/// Takes the tickets in a transaction it leaves open for the caller to finish:
/// the counts, the hold row in `status` with its items, and on a seated event
/// its seats.
async fn take_in(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    selection: &Selection,
    promo_code: Option<&str>,
    status: HoldStatus,
) -> Result<(DatabaseTransaction, HoldDetails), Error> {
    let txn = begin_write(&services.db).await?;
    let event = Event::find_by_id(event_id)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("event"))?;
    if event.status == EventStatus::Cancelled {
        return Err(Error::EventCancelled);
    }
    admission::check_admission(&txn, &event, customer_id).await?;
    if matches!(selection, Selection::Seats(_)) && !event.seated {
        return Err(ValidationErrors::single(
            "seat_ids",
            "this event has general admission; ask for a quantity",
        )
        .into());
    }
    let types = inventory::event_types(&txn, event_id).await?;
    let at = now();
    let promotion = match promo_code {
        Some(code) => Some(promotion::find(&txn, event_id, code, at).await?),
        None => None,
    };
    let unlocked = promotion.as_ref().map_or(&[][..], |p| &p.unlocks[..]);
    let mut lines = match selection {
        Selection::Seats(ids) => seating::price(&txn, event_id, ids, &types).await??,
        _ => sale::price(selection, &types, at, unlocked)?,
    };
    let uses = match &promotion {
        Some(promotion) => promotion.apply(&mut lines)?,
        None => 0,
    };
    let into = match status {
        HoldStatus::Active => Count::Held,
        _ => Count::Booked,
    };
    // The event row stays locked from here to commit.
    let short = match inventory::take_tickets(&txn, event_id, &per_type(&lines), into).await? {
        Ok(()) => None,
        Err(Some(ticket_type_id)) => Some(ticket_type_id),
        // By type, the type it lacks (the event's count is their sum).
        Err(None) if matches!(selection, Selection::Items(_)) => {
            lines.first().map(|line| line.ticket_type_id)
        }
        Err(None) => {
            drop(txn);
            let why = why_not_sold(&super::queries::event(&services.db, event_id).await?);
            // Fewer free than asked for: some of the asked-for seats are taken.
            if let (Error::SoldOut { .. }, Selection::Seats(ids)) = (&why, selection) {
                return Err(Error::SeatsUnavailable(
                    seating::unavailable(&services.db, event_id, ids).await?,
                ));
            }
            return Err(why);
        }
    };
    if let Some(short) = short {
        drop(txn);
        let types = inventory::event_types(&services.db, event_id).await?;
        let lacking = lines.iter().find_map(|line| {
            let t = types.iter().find(|t| t.id == line.ticket_type_id)?;
            (t.available < line.quantity).then_some((t.id, t.available))
        });
        let (ticket_type_id, available) = lacking.unwrap_or((short, 0));
        return Err(Error::TypeSoldOut {
            ticket_type_id,
            available,
        });
    }
    if status == HoldStatus::Confirmed && inventory::tickets::total(&lines) > 0 {
        // Paid tickets are booked by paying for a hold (once they are there).
        drop(txn);
        return Err(Error::PaymentRequired);
    }
    // After the event row: the code's row is locked second on every path.
    if let Some(promotion) = &promotion
        && !promotion.take_uses(&txn, uses).await?
    {
        drop(txn);
        return Err(promotion::Promotion::used_up());
    }
    let lasting = chrono::Duration::minutes(i64::from(event.hold_minutes));
    let hold = HoldModel {
        promo_code_id: promotion.as_ref().map(|p| p.code.id),
        promo_uses: uses,
        ..inventory::new_hold(&event, customer_id, &lines, status, at, lasting)
    };
    if let Err(error) = HoldActiveModel::from(hold.clone())
        .reset_all()
        .insert(&txn)
        .await
    {
        drop(txn);
        return Err(if is_second_active_hold(&error) {
            existing_hold(&services.db, customer_id, event_id).await
        } else {
            error.into()
        });
    }
    inventory::write_hold_lines(&txn, &[(hold.id, &lines)]).await?;
    let seat_status = match status {
        HoldStatus::Active => SeatStatus::Held,
        _ => SeatStatus::Booked,
    };
    let mut seats = Vec::new();
    if event.seated {
        let mut wanted = Vec::new();
        match selection {
            Selection::Seats(ids) => wanted.push(ids.clone()),
            _ => {
                for line in &lines {
                    wanted.push(
                        seating::best_available(&txn, event_id, line.ticket_type_id, line.quantity)
                            .await?,
                    );
                }
            }
        }
        for ids in wanted {
            match seating::take(&txn, event_id, hold.id, &ids, seat_status).await? {
                Ok(taken) => seats.extend(taken),
                Err(unavailable) => {
                    drop(txn);
                    return Err(Error::SeatsUnavailable(unavailable));
                }
            }
        }
    }
    let items = sale::items(&lines, &types);
    Ok((txn, HoldDetails { hold, items, seats }))
}

/// Inside a transaction that took the tickets (here, or a hold's
/// confirmation): the booking row with its items, its hold's `booking_id`,
/// the confirmation notice and the remembered response. Returns the notice's
/// id.
pub(super) async fn record_booking(
    txn: &DatabaseTransaction,
    services: &Services,
    hold: &HoldModel,
    booking: BookingModel,
    items: Vec<sale::Item>,
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
    let lines = sale::lines(&items);
    inventory::write_booking_lines(txn, &[(booking.id, &lines)]).await?;
    let issue = inventory::issued::Issue {
        booking: &booking,
        lines: &lines,
        seats: &seats,
    };
    inventory::issued::issue(txn, &[issue]).await?;
    let told = [inventory::webhooks::BookingData::from(&booking)];
    inventory::webhooks::publish(
        txn,
        booking.event_id,
        inventory::webhooks::Kind::BookingConfirmed,
        &told,
    )
    .await?;
    Hold::update_many()
        .col_expr(HoldColumn::BookingId, Expr::value(Some(booking.id)))
        .filter(HoldColumn::Id.eq(hold.id))
        .exec(txn)
        .await?;
    let details = BookingDetails {
        booking,
        items,
        seats,
        payment: None,
    };
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

async fn existing_hold(db: &DatabaseConnection, customer_id: Uuid, event_id: Uuid) -> Error {
    match inventory::active_hold(db, customer_id, event_id).await {
        Ok(Some(hold)) => Error::HoldExists { hold_id: hold.id },
        // Ended in the meantime: the client may simply try again.
        Ok(None) => {
            Error::Conflict("your previous hold on this event just ended; try again".into())
        }
        Err(error) => error.into(),
    }
}
