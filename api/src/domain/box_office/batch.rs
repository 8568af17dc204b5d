//! One batch's transaction, with the event row locked: tickets given in
//! arrival order to each order that still fits, then every row written
//! together (bookings, holds, seats, notices, remembered responses) and the
//! counters moved once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::prelude::*;
use inventory::{AfterCommit, Count, move_tickets};
use platform::db::rows_per_insert;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, DbErr, EntityTrait, Iterable};
use uuid::Uuid;

use super::{Answer, Order, Taking};
use crate::domain::{
    idempotency,
    sale::{self, BookingDetails, HoldDetails},
    seating,
};

/// What a batch did: each order's answer, what to publish once it commits,
/// and whether it took any tickets.
pub(super) struct Sold {
    pub answers: Vec<Answer>,
    pub after: AfterCommit,
    pub took: bool,
}

pub(super) async fn sell(
    txn: &DatabaseTransaction,
    event: &EventModel,
    orders: &[Order],
    at: DateTime<Utc>,
) -> Result<Sold, DbErr> {
    let lost = lost_claims(txn, orders).await?;
    let mut holding = customers_holding(txn, event.id, orders).await?;
    let lasting = chrono::Duration::minutes(i64::from(event.hold_minutes));
    let mut left = event.available_tickets;
    let mut answers: Vec<Answer> = orders
        .iter()
        .enumerate()
        .map(|(i, order)| {
            if lost.contains(&i) {
                return Answer::ClaimLost;
            }
            let holds = matches!(order.taking, Taking::Hold);
            if holds && let Some(&hold_id) = holding.get(&order.customer_id) {
                return Answer::HoldExists { hold_id };
            }
            if order.quantity > left {
                return Answer::SoldOut { available: left };
            }
            left -= order.quantity;
            if holds {
                let status = HoldStatus::Active;
                let hold = inventory::new_hold(
                    event.id,
                    order.customer_id,
                    order.quantity,
                    status,
                    at,
                    lasting,
                );
                holding.insert(order.customer_id, hold.id);
                Answer::Held(HoldDetails {
                    hold,
                    seats: Vec::new(),
                })
            } else {
                let booking =
                    inventory::new_booking(event.id, order.customer_id, order.quantity, at);
                Answer::Booked(BookingDetails {
                    booking,
                    seats: Vec::new(),
                })
            }
        })
        .collect();
    let took = left != event.available_tickets;
    let after = if took {
        write(txn, event, orders, &mut answers, at).await?
    } else {
        AfterCommit::default()
    };
    Ok(Sold {
        answers,
        after,
        took,
    })
}

/// The orders (by index) whose `Idempotency-Key` claim a retry has taken over:
/// they write nothing. The others' claims stay locked until the batch commits
/// ([`idempotency::fence`]).
async fn lost_claims(txn: &DatabaseTransaction, orders: &[Order]) -> Result<HashSet<usize>, DbErr> {
    let mut lost = HashSet::new();
    for (i, order) in orders.iter().enumerate() {
        if let Taking::Booking {
            remember: Some(remember),
        } = &order.taking
            && !idempotency::fence(txn, &remember.claim).await?
        {
            lost.insert(i);
        }
    }
    Ok(lost)
}

/// The customers of the batch's hold orders who already hold tickets for the
/// event, and their holds. Every hold is made with the event row locked, so
/// this stays true until commit.
async fn customers_holding(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    orders: &[Order],
) -> Result<HashMap<Uuid, Uuid>, DbErr> {
    let customers = orders
        .iter()
        .filter(|order| matches!(order.taking, Taking::Hold))
        .map(|order| order.customer_id)
        .collect();
    Ok(inventory::active_holds(txn, event_id, customers)
        .await?
        .into_iter()
        .map(|(customer, hold)| (customer, hold.id))
        .collect())
}

/// The rows of a batch's successful orders, and the counters they move. On a
/// seated event each order also gets its seats, best available, in arrival
/// order (each through a hold row, as a seated booking always is).
async fn write(
    txn: &DatabaseTransaction,
    event: &EventModel,
    orders: &[Order],
    answers: &mut [Answer],
    at: DateTime<Utc>,
) -> Result<AfterCommit, DbErr> {
    let bookings: Vec<BookingModel> = answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Booked(details) => Some(details.booking.clone()),
            _ => None,
        })
        .collect();
    for chunk in bookings.chunks(rows_per_insert(BookingColumn::iter().count())) {
        Booking::insert_many(
            chunk
                .iter()
                .map(|booking| BookingActiveModel::from(booking.clone()).reset_all()),
        )
        .exec_without_returning(txn)
        .await?;
    }
    // The hold rows: every hold, and on a seated event every booking's too
    // (confirmed at once), for its seats to point at.
    let lasting = chrono::Duration::minutes(i64::from(event.hold_minutes));
    let holds: Vec<HoldModel> = answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Held(details) => Some(details.hold.clone()),
            Answer::Booked(BookingDetails { booking, .. }) if event.seated => Some(HoldModel {
                booking_id: Some(booking.id),
                ..inventory::new_hold(
                    event.id,
                    booking.user_id,
                    booking.quantity,
                    HoldStatus::Confirmed,
                    at,
                    lasting,
                )
            }),
            _ => None,
        })
        .collect();
    for chunk in holds.chunks(rows_per_insert(HoldColumn::iter().count())) {
        Hold::insert_many(
            chunk
                .iter()
                .map(|hold| HoldActiveModel::from(hold.clone()).reset_all()),
        )
        .exec_without_returning(txn)
        .await?;
    }
    let mut seat_ids = Vec::new();
    if event.seated {
        let mut holds = holds.iter();
        for answer in answers.iter_mut() {
            let (seats, status) = match answer {
                Answer::Booked(details) => (&mut details.seats, SeatStatus::Booked),
                Answer::Held(details) => (&mut details.seats, SeatStatus::Held),
                _ => continue,
            };
            let Some(hold) = holds.next() else {
                return Err(DbErr::Custom("a seated order without its hold".into()));
            };
            let best = seating::best_available(txn, event.id, hold.quantity).await?;
            // The event row is locked, so the free seats just read stay free:
            // a refusal here would be a bug, and fails the batch.
            *seats = seating::take(txn, event.id, hold.id, &best, status)
                .await?
                .map_err(|unavailable| {
                    DbErr::Custom(format!("best-available seats were taken: {unavailable:?}"))
                })?;
            seat_ids.extend(seats.iter().map(|seat| seat.id));
        }
    }
    let mut after = AfterCommit::default().changed(event.id, seat_ids);
    let booked: Vec<(&Order, &BookingDetails)> = orders
        .iter()
        .zip(answers.iter())
        .filter_map(|(order, answer)| match answer {
            Answer::Booked(details) => Some((order, details)),
            _ => None,
        })
        .collect();
    let notices = booked
        .iter()
        .map(|(order, details)| {
            (
                sale::confirmation(&details.booking),
                order.request_id.clone(),
            )
        })
        .collect();
    let ids = inventory::outbox::write_each(txn, notices).await?;
    for ((order, details), notification_id) in booked.iter().zip(ids) {
        after = after.notify_for(notification_id, order.request_id.clone());
        if let Taking::Booking {
            remember: Some(remember),
        } = &order.taking
        {
            let (status, body) = remember.response(details);
            idempotency::save_response(txn, &remember.claim, status, &body).await?;
        }
    }
    let sold = bookings.iter().map(|booking| booking.quantity).sum();
    if sold > 0 {
        move_tickets(event.id, sold, Count::Available, Count::Booked)
            .exec(txn)
            .await?;
    }
    let mut held = 0;
    for answer in answers.iter() {
        if let Answer::Held(details) = answer {
            held += details.hold.quantity;
            after = after.held(&details.hold);
        }
    }
    if held > 0 {
        move_tickets(event.id, held, Count::Available, Count::Held)
            .exec(txn)
            .await?;
    }
    Ok(after)
}
