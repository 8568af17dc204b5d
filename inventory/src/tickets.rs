//! Where an event's tickets are: each ticket type's three counts (and the
//! event's, their sums), the one way tickets move between them, and the rows
//! that say which tickets a hold or booking has.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

/// The three counts tickets are in; per type they add up to its quantity,
/// per event to its total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Available,
    /// In active holds.
    Held,
    /// In confirmed bookings.
    Booked,
}

impl Count {
    fn event_column(self) -> EventColumn {
        match self {
            Count::Available => EventColumn::AvailableTickets,
            Count::Held => EventColumn::HeldTickets,
            Count::Booked => EventColumn::BookedTickets,
        }
    }

    fn type_column(self) -> TicketTypeColumn {
        match self {
            Count::Available => TicketTypeColumn::Available,
            Count::Held => TicketTypeColumn::Held,
            Count::Booked => TicketTypeColumn::Booked,
        }
    }
}

/// So many tickets of one type, at a unit price (in the event currency's
/// minor unit) and a discount off each ticket, both fixed when they were
/// taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub ticket_type_id: Uuid,
    pub quantity: i32,
    pub unit_price: i64,
    pub discount: i64,
}

/// How many tickets the lines hold.
pub fn quantity(lines: &[Line]) -> i32 {
    lines.iter().map(|line| line.quantity).sum()
}

/// What the lines cost: Σ quantity × (unit price − discount).
pub fn total(lines: &[Line]) -> i64 {
    lines
        .iter()
        .map(|line| i64::from(line.quantity) * (line.unit_price - line.discount))
        .sum()
}

/// The lines' tickets per type, for a batch that moves many at once.
pub fn per_type<'a>(lines: impl IntoIterator<Item = &'a Line>) -> HashMap<Uuid, i32> {
    let mut counts = HashMap::new();
    for line in lines {
        *counts.entry(line.ticket_type_id).or_insert(0) += line.quantity;
    }
    counts
}

/// Moves tickets of the given types (`type id → n`) from one count to another,
/// on the event (locking its row, if this transaction has not yet) and then on
/// each type. The caller has checked that they are there; the database's
/// CHECKs refuse the transaction otherwise. A type removed since the caller
/// read it fails the transaction: on PostgreSQL no foreign key stops the
/// items the caller wrote of it (migration 17), this does.
pub async fn move_tickets(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    counts: &HashMap<Uuid, i32>,
    from: Count,
    to: Count,
) -> Result<(), DbErr> {
    let n: i32 = counts.values().sum();
    if n == 0 {
        return Ok(());
    }
    event_update(event_id, n, from, to).exec(txn).await?;
    for (&ticket_type_id, &n) in counts {
        let moved = type_update(ticket_type_id, n, from, to).exec(txn).await?;
        if moved.rows_affected == 0 {
            return Err(DbErr::RecordNotUpdated);
        }
    }
    Ok(())
}

/// Takes available tickets of the given types into `into`, if every type has
/// enough and the event is on sale; the event row stays locked to the commit.
/// `Err`: the type (none: the event) that has too few, and nothing moved here
/// that the caller's rollback would not undo.
pub async fn take_tickets(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    counts: &HashMap<Uuid, i32>,
    into: Count,
) -> Result<Result<(), Option<Uuid>>, DbErr> {
    let n: i32 = counts.values().sum();
    let taken = event_update(event_id, n, Count::Available, into)
        .filter(EventColumn::Status.eq(EventStatus::Scheduled))
        .filter(EventColumn::AvailableTickets.gte(n))
        .exec(txn)
        .await?;
    if taken.rows_affected == 0 {
        return Ok(Err(None));
    }
    for (&ticket_type_id, &n) in counts {
        let taken = type_update(ticket_type_id, n, Count::Available, into)
            .filter(TicketTypeColumn::EventId.eq(event_id))
            .filter(TicketTypeColumn::Available.gte(n))
            .exec(txn)
            .await?;
        if taken.rows_affected == 0 {
            return Ok(Err(Some(ticket_type_id)));
        }
    }
    Ok(Ok(()))
}

/// A type's quantity moves by `delta`, its available tickets with it, and
/// the event's total and available with them (the caller has checked that
/// nothing held or booked is taken away; the CHECKs refuse it otherwise).
pub async fn resize_type(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    ticket_type_id: Uuid,
    delta: i32,
) -> Result<(), DbErr> {
    if delta == 0 {
        return Ok(());
    }
    TicketType::update_many()
        .col_expr(
            TicketTypeColumn::Quantity,
            Expr::col(TicketTypeColumn::Quantity).add(delta),
        )
        .col_expr(
            TicketTypeColumn::Available,
            Expr::col(TicketTypeColumn::Available).add(delta),
        )
        .col_expr(
            TicketTypeColumn::UpdatedAt,
            Expr::value(platform::db::now()),
        )
        .filter(TicketTypeColumn::Id.eq(ticket_type_id))
        .exec(txn)
        .await?;
    resize_event(txn, event_id, delta).await
}

/// The event's total and available tickets move by `delta`: a type's
/// quantity changed, or a whole type was added or removed.
pub async fn resize_event(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    delta: i32,
) -> Result<(), DbErr> {
    if delta == 0 {
        return Ok(());
    }
    Event::update_many()
        .col_expr(
            EventColumn::TotalTickets,
            Expr::col(EventColumn::TotalTickets).add(delta),
        )
        .col_expr(
            EventColumn::AvailableTickets,
            Expr::col(EventColumn::AvailableTickets).add(delta),
        )
        .col_expr(EventColumn::UpdatedAt, Expr::value(platform::db::now()))
        .filter(EventColumn::Id.eq(event_id))
        .exec(txn)
        .await?;
    Ok(())
}

fn event_update(event_id: Uuid, n: i32, from: Count, to: Count) -> sea_orm::UpdateMany<Event> {
    let (from, to) = (from.event_column(), to.event_column());
    Event::update_many()
        .col_expr(from, Expr::col(from).sub(n))
        .col_expr(to, Expr::col(to).add(n))
        .filter(EventColumn::Id.eq(event_id))
}

fn type_update(
    ticket_type_id: Uuid,
    n: i32,
    from: Count,
    to: Count,
) -> sea_orm::UpdateMany<TicketType> {
    let (from, to) = (from.type_column(), to.type_column());
    TicketType::update_many()
        .col_expr(from, Expr::col(from).sub(n))
        .col_expr(to, Expr::col(to).add(n))
        .filter(TicketTypeColumn::Id.eq(ticket_type_id))
}

/// A new hold row for the lines, made `at` and lasting `lasting`; confirmed
/// at once (`status` other than active) when it is how a booking takes its
/// seats or passes a waiting room.
pub fn new_hold(
    event: &EventModel,
    customer_id: Uuid,
    lines: &[Line],
    status: HoldStatus,
    at: DateTime<Utc>,
    lasting: chrono::Duration,
) -> HoldModel {
    HoldModel {
        id: Uuid::now_v7(),
        event_id: event.id,
        user_id: customer_id,
        quantity: quantity(lines),
        total: total(lines),
        currency: event.currency.clone(),
        promo_code_id: None,
        promo_uses: 0,
        status,
        expires_at: at + lasting,
        booking_id: None,
        created_at: at,
        ended_at: (status != HoldStatus::Active).then_some(at),
    }
}

/// A new confirmed booking row for the lines.
pub fn new_booking(
    event_id: Uuid,
    customer_id: Uuid,
    lines: &[Line],
    currency: &str,
    at: DateTime<Utc>,
) -> BookingModel {
    BookingModel {
        id: Uuid::now_v7(),
        event_id,
        user_id: customer_id,
        quantity: quantity(lines),
        total: total(lines),
        currency: currency.to_owned(),
        promo_code_id: None,
        promo_uses: 0,
        payment_id: None,
        status: BookingStatus::Confirmed,
        created_at: at,
        cancelled_at: None,
    }
}

/// Writes which tickets each hold has.
pub async fn write_hold_lines<C: ConnectionTrait>(
    db: &C,
    holds: &[(Uuid, &[Line])],
) -> Result<(), DbErr> {
    let rows: Vec<HoldItemActiveModel> = holds
        .iter()
        .flat_map(|(hold_id, lines)| {
            lines.iter().map(|line| {
                HoldItemActiveModel::from(HoldItemModel {
                    hold_id: *hold_id,
                    ticket_type_id: line.ticket_type_id,
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    discount: line.discount,
                })
                .reset_all()
            })
        })
        .collect();
    platform::db::insert_all(db, rows).await
}

/// Writes which tickets each booking has.
pub async fn write_booking_lines<C: ConnectionTrait>(
    db: &C,
    bookings: &[(Uuid, &[Line])],
) -> Result<(), DbErr> {
    let rows: Vec<BookingItemActiveModel> = bookings
        .iter()
        .flat_map(|(booking_id, lines)| {
            lines.iter().map(|line| {
                BookingItemActiveModel::from(BookingItemModel {
                    booking_id: *booking_id,
                    ticket_type_id: line.ticket_type_id,
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    discount: line.discount,
                })
                .reset_all()
            })
        })
        .collect();
    platform::db::insert_all(db, rows).await
}

/// Each hold's lines, by hold.
pub async fn hold_lines<C: ConnectionTrait>(
    db: &C,
    hold_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Line>>, DbErr> {
    let mut lines: HashMap<Uuid, Vec<Line>> = HashMap::new();
    if hold_ids.is_empty() {
        return Ok(lines);
    }
    for item in HoldItem::find()
        .filter(HoldItemColumn::HoldId.is_in(hold_ids.iter().copied()))
        .all(db)
        .await?
    {
        lines.entry(item.hold_id).or_default().push(Line {
            ticket_type_id: item.ticket_type_id,
            quantity: item.quantity,
            unit_price: item.unit_price,
            discount: item.discount,
        });
    }
    Ok(lines)
}

/// The names of these ticket types, by id.
pub async fn type_names<C: ConnectionTrait>(
    db: &C,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, DbErr> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(TicketType::find()
        .select_only()
        .column(TicketTypeColumn::Id)
        .column(TicketTypeColumn::Name)
        .filter(TicketTypeColumn::Id.is_in(ids))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Each booking's lines, by booking.
pub async fn booking_lines<C: ConnectionTrait>(
    db: &C,
    booking_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Line>>, DbErr> {
    let mut lines: HashMap<Uuid, Vec<Line>> = HashMap::new();
    if booking_ids.is_empty() {
        return Ok(lines);
    }
    for item in BookingItem::find()
        .filter(BookingItemColumn::BookingId.is_in(booking_ids.iter().copied()))
        .all(db)
        .await?
    {
        lines.entry(item.booking_id).or_default().push(Line {
            ticket_type_id: item.ticket_type_id,
            quantity: item.quantity,
            unit_price: item.unit_price,
            discount: item.discount,
        });
    }
    Ok(lines)
}

/// An event's ticket types, in their order.
pub async fn types_of<C: ConnectionTrait>(
    db: &C,
    event_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<TicketTypeModel>>, DbErr> {
    use sea_orm::QueryOrder;
    let mut types: HashMap<Uuid, Vec<TicketTypeModel>> = HashMap::new();
    if event_ids.is_empty() {
        return Ok(types);
    }
    for ticket_type in TicketType::find()
        .filter(TicketTypeColumn::EventId.is_in(event_ids.iter().copied()))
        .order_by_asc(TicketTypeColumn::EventId)
        .order_by_asc(TicketTypeColumn::Position)
        .all(db)
        .await?
    {
        types
            .entry(ticket_type.event_id)
            .or_default()
            .push(ticket_type);
    }
    Ok(types)
}

/// Takes `uses` of a promo code, if it has them left. `false`: used up, and
/// nothing changed.
pub async fn take_promo_uses<C: ConnectionTrait>(
    db: &C,
    promo_code_id: Uuid,
    uses: i32,
) -> Result<bool, DbErr> {
    let taken = PromoCode::update_many()
        .col_expr(
            PromoCodeColumn::Used,
            Expr::col(PromoCodeColumn::Used).add(uses),
        )
        .filter(PromoCodeColumn::Id.eq(promo_code_id))
        .filter(
            Expr::col(PromoCodeColumn::MaxUses)
                .is_null()
                .or(Expr::col(PromoCodeColumn::Used)
                    .add(uses)
                    .lte(Expr::col(PromoCodeColumn::MaxUses))),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Gives a promo code back the uses a hold or booking took, when it ends
/// unconfirmed or is cancelled.
pub async fn return_promo_uses<C: ConnectionTrait>(
    db: &C,
    promo_code_id: Option<Uuid>,
    uses: i32,
) -> Result<(), DbErr> {
    let Some(promo_code_id) = promo_code_id.filter(|_| uses > 0) else {
        return Ok(());
    };
    PromoCode::update_many()
        .col_expr(
            PromoCodeColumn::Used,
            Expr::col(PromoCodeColumn::Used).sub(uses),
        )
        .filter(PromoCodeColumn::Id.eq(promo_code_id))
        .exec(db)
        .await?;
    Ok(())
}

/// One event's ticket types, in their order.
pub async fn event_types<C: ConnectionTrait>(
    db: &C,
    event_id: Uuid,
) -> Result<Vec<TicketTypeModel>, DbErr> {
    Ok(types_of(db, &[event_id])
        .await?
        .remove(&event_id)
        .unwrap_or_default())
}
