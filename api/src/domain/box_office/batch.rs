//! One batch's transaction, with the event row locked: tickets given in
//! arrival order to each order that still fits, priced at its types' prices
//! as they stand, then every row written together (bookings, holds, their
//! items, seats, notices, remembered responses) and the counts moved once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::prelude::*;
use inventory::{AfterCommit, Count, Line, move_tickets, per_type};
use platform::db::insert_all;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::{Answer, Order, Taking};
use crate::domain::{
    Error, admission, idempotency,
    sale::{self, BookingDetails, HoldDetails, Selection},
    seating,
};

/// What a batch did: each order's answer, what to publish once it commits,
/// and whether it took any tickets.
pub(super) struct Sold {
    pub answers: Vec<Answer>,
    /// As read with the event row locked.
    pub ticket_types: Vec<TicketTypeModel>,
    pub after: AfterCommit,
    pub took: bool,
    /// Tickets booked, by type.
    pub booked: HashMap<Uuid, i32>,
}

pub(super) async fn sell(
    txn: &DatabaseTransaction,
    event: &EventModel,
    types: Vec<TicketTypeModel>,
    orders: &[Order],
    at: DateTime<Utc>,
) -> Result<Sold, DbErr> {
    let lost = lost_claims(txn, orders).await?;
    // Behind a waiting room, only customers with a valid pass take tickets.
    let admitted = if event.waiting_room_enabled {
        let customers = orders.iter().map(|order| order.customer_id);
        Some(admission::admitted(txn, event, customers, at).await?)
    } else {
        None
    };
    let mut holding = customers_holding(txn, event.id, orders).await?;
    let mut type_left: HashMap<Uuid, i32> = types.iter().map(|t| (t.id, t.available)).collect();
    let lasting = chrono::Duration::minutes(i64::from(event.hold_minutes));
    let mut left = event.available_tickets;
    let mut answers: Vec<Answer> = Vec::with_capacity(orders.len());
    for (i, order) in orders.iter().enumerate() {
        if lost.contains(&i) {
            answers.push(Answer::ClaimLost);
            continue;
        }
        if admitted
            .as_ref()
            .is_some_and(|admitted| !admitted.contains(&order.customer_id))
        {
            answers.push(Answer::Refused(Error::NotAdmitted));
            continue;
        }
        let holds = matches!(order.taking, Taking::Hold);
        if holds && let Some(&hold_id) = holding.get(&order.customer_id) {
            answers.push(Answer::HoldExists { hold_id });
            continue;
        }
        let lines = match sale::price(&order.selection, &types, at, &[]) {
            Ok(lines) => lines,
            Err(why) => {
                answers.push(Answer::Refused(why));
                continue;
            }
        };
        let count = order.selection.count();
        // By quantity, the event as a whole; by type, the type it lacks.
        if matches!(order.selection, Selection::Quantity(_)) && count > left {
            answers.push(Answer::SoldOut { available: left });
            continue;
        }
        if let Some(short) = lines
            .iter()
            .find(|line| type_left.get(&line.ticket_type_id).copied().unwrap_or(0) < line.quantity)
        {
            answers.push(Answer::Refused(Error::TypeSoldOut {
                ticket_type_id: short.ticket_type_id,
                available: type_left.get(&short.ticket_type_id).copied().unwrap_or(0),
            }));
            continue;
        }
        // Paid tickets are booked by paying for a hold (once they are there).
        if !holds && inventory::tickets::total(&lines) > 0 {
            answers.push(Answer::Refused(Error::PaymentRequired));
            continue;
        }
        for line in &lines {
            if let Some(n) = type_left.get_mut(&line.ticket_type_id) {
                *n -= line.quantity;
            }
        }
        left -= count;
        let items = sale::items(&lines, &types);
        answers.push(if holds {
            let status = HoldStatus::Active;
            let hold = inventory::new_hold(event, order.customer_id, &lines, status, at, lasting);
            holding.insert(order.customer_id, hold.id);
            Answer::Held(HoldDetails {
                hold,
                items,
                seats: Vec::new(),
            })
        } else {
            let booking =
                inventory::new_booking(event.id, order.customer_id, &lines, &event.currency, at);
            Answer::Booked(BookingDetails {
                booking,
                items,
                seats: Vec::new(),
                payment: None,
            })
        });
    }
    let took = left != event.available_tickets;
    let booked_lines: Vec<Line> = booked(&answers)
        .flat_map(|details| sale::lines(&details.items))
        .collect();
    let booked = per_type(&booked_lines);
    let after = if took {
        write(txn, event, orders, &mut answers, &booked, at).await?
    } else {
        AfterCommit::default()
    };
    Ok(Sold {
        answers,
        ticket_types: types,
        after,
        took,
        booked,
    })
}

/// The bookings among a batch's answers, in order.
fn booked(answers: &[Answer]) -> impl Iterator<Item = &BookingDetails> {
    answers.iter().filter_map(|answer| match answer {
        Answer::Booked(details) => Some(details),
        _ => None,
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

/// The rows of a batch's successful orders, and the counts they move (`sold`:
/// the tickets its bookings take, by type). On a
/// seated event each order also gets its seats, best available of its type,
/// in arrival order (each through a hold row, as a seated booking always is).
async fn write(
    txn: &DatabaseTransaction,
    event: &EventModel,
    orders: &[Order],
    answers: &mut [Answer],
    sold: &HashMap<Uuid, i32>,
    at: DateTime<Utc>,
) -> Result<AfterCommit, DbErr> {
    let bookings: Vec<&BookingDetails> = booked(answers).collect();
    // Each booking's lines, in the order of `bookings`: for its rows now, and
    // for its tickets once its seats are known.
    let lines: Vec<Vec<Line>> = bookings.iter().map(|d| sale::lines(&d.items)).collect();
    insert_all(
        txn,
        bookings
            .iter()
            .map(|details| BookingActiveModel::from(details.booking.clone()).reset_all())
            .collect(),
    )
    .await?;
    let booking_lines: Vec<(Uuid, &[Line])> = bookings
        .iter()
        .zip(&lines)
        .map(|(details, lines)| (details.booking.id, lines.as_slice()))
        .collect();
    inventory::write_booking_lines(txn, &booking_lines).await?;
    // The hold rows: every hold, and on a seated event every booking's too
    // (confirmed at once), for its seats to point at.
    let lasting = chrono::Duration::minutes(i64::from(event.hold_minutes));
    let holds: Vec<(HoldModel, Vec<Line>)> = answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Held(details) => Some((details.hold.clone(), sale::lines(&details.items))),
            Answer::Booked(BookingDetails { booking, items, .. }) if event.seated => {
                let lines = sale::lines(items);
                let status = HoldStatus::Confirmed;
                let hold = inventory::new_hold(event, booking.user_id, &lines, status, at, lasting);
                Some((
                    HoldModel {
                        booking_id: Some(booking.id),
                        ..hold
                    },
                    lines,
                ))
            }
            _ => None,
        })
        .collect();
    insert_all(
        txn,
        holds
            .iter()
            .map(|(hold, _)| HoldActiveModel::from(hold.clone()).reset_all())
            .collect(),
    )
    .await?;
    let hold_lines: Vec<(Uuid, &[Line])> = holds
        .iter()
        .map(|(hold, lines)| (hold.id, lines.as_slice()))
        .collect();
    inventory::write_hold_lines(txn, &hold_lines).await?;
    let mut seat_ids = Vec::new();
    if event.seated {
        let mut holds = holds.iter();
        for answer in answers.iter_mut() {
            let (seats, status) = match answer {
                Answer::Booked(details) => (&mut details.seats, SeatStatus::Booked),
                Answer::Held(details) => (&mut details.seats, SeatStatus::Held),
                _ => continue,
            };
            let Some((hold, lines)) = holds.next() else {
                return Err(DbErr::Custom("a seated order without its hold".into()));
            };
            for line in lines {
                let best =
                    seating::best_available(txn, event.id, line.ticket_type_id, line.quantity)
                        .await?;
                // The event row is locked, so the free seats just read stay
                // free: a refusal here would be a bug, and fails the batch.
                let taken = seating::take(txn, event.id, hold.id, &best, status)
                    .await?
                    .map_err(|unavailable| {
                        DbErr::Custom(format!("best-available seats were taken: {unavailable:?}"))
                    })?;
                seat_ids.extend(taken.iter().map(|seat| seat.id));
                seats.extend(taken);
            }
        }
    }
    let issues: Vec<inventory::issued::Issue> = booked(answers)
        .zip(&lines)
        .map(|(details, lines)| inventory::issued::Issue {
            booking: &details.booking,
            lines,
            seats: &details.seats,
        })
        .collect();
    inventory::issued::issue(txn, &issues).await?;
    let told: Vec<_> = issues
        .iter()
        .map(|issue| inventory::webhooks::BookingData::from(issue.booking))
        .collect();
    inventory::webhooks::publish(
        txn,
        event.id,
        inventory::webhooks::Kind::BookingConfirmed,
        &told,
    )
    .await?;
    let mut after = AfterCommit::default().changed(event.id, seat_ids);
    let confirmed: Vec<(&Order, &BookingDetails)> = orders
        .iter()
        .zip(answers.iter())
        .filter_map(|(order, answer)| match answer {
            Answer::Booked(details) => Some((order, details)),
            _ => None,
        })
        .collect();
    let notices = confirmed
        .iter()
        .map(|(order, details)| {
            (
                sale::confirmation(&details.booking),
                order.request_id.clone(),
            )
        })
        .collect();
    let ids = inventory::outbox::write_each(txn, notices).await?;
    for ((order, details), notification_id) in confirmed.iter().zip(ids) {
        after = after.notify_for(notification_id, order.request_id.clone());
        if let Taking::Booking {
            remember: Some(remember),
        } = &order.taking
        {
            let (status, body) = remember.response(details);
            idempotency::save_response(txn, &remember.claim, status, &body).await?;
        }
    }
    move_tickets(txn, event.id, sold, Count::Available, Count::Booked).await?;
    let mut held = Vec::new();
    for answer in answers.iter() {
        if let Answer::Held(details) = answer {
            held.extend(sale::lines(&details.items));
            after = after.held(&details.hold);
        }
    }
    move_tickets(
        txn,
        event.id,
        &per_type(&held),
        Count::Available,
        Count::Held,
    )
    .await?;
    Ok(after)
}
