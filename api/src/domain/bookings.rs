//! Taking and returning tickets. Every path keeps, at every commit,
//! `available_tickets + Σ quantity(confirmed bookings) == total_tickets`.

use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    Error, Services, ValidationErrors, begin_write,
    idempotency::{self, Remember},
    now, outbox,
};

pub const MAX_QUANTITY: i64 = 10;

fn quantity(raw: i64) -> Result<i32, ValidationErrors> {
    if (1..=MAX_QUANTITY).contains(&raw) {
        Ok(raw as i32)
    } else {
        Err(ValidationErrors::single(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}"),
        ))
    }
}

/// Books tickets for a customer, or fails having written nothing.
pub async fn book(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    quantity: i64,
    remember: Option<Remember<BookingModel>>,
) -> Result<BookingModel, Error> {
    let quantity = self::quantity(quantity)?;
    // Complete before it is written, so that its response can be recorded in the
    // same statement.
    let booking = BookingModel {
        id: Uuid::now_v7(),
        event_id,
        user_id: customer_id,
        quantity,
        status: BookingStatus::Confirmed,
        created_at: now(),
        cancelled_at: None,
    };
    let remembered = remember.map(|r| r.response(&booking));
    let booked = match services.db.get_database_backend() {
        DbBackend::Postgres => book_in_one_statement(services, booking, remembered).await?,
        _ => book_in_transaction(services, booking, remembered).await?,
    };
    match booked {
        Some((booking, notification_id)) => {
            services.observer.booked();
            outbox::enqueue(services, vec![notification_id]);
            Ok(booking)
        }
        None => {
            let why = why_not_booked(&services.db, event_id).await;
            if matches!(why, Error::SoldOut { .. }) {
                services.observer.refused_sold_out();
            }
            Err(why)
        }
    }
}

/// PostgreSQL: decrement, booking row, outbox row and (with a key) the remembered
/// response in one statement, so the event row is locked for one statement's
/// duration and no client round trip happens while it is held. Under a stampede
/// this is what keeps throughput up.
async fn book_in_one_statement(
    services: &Services,
    booking: BookingModel,
    remembered: Option<(String, u16, String)>,
) -> Result<Option<(BookingModel, Uuid)>, Error> {
    const SQL: &str = r#"
        WITH taken AS (
            UPDATE events
               SET available_tickets = available_tickets - $1
             WHERE id = $2 AND status = 'scheduled' AND available_tickets >= $1
         RETURNING id
        ), booking AS (
            INSERT INTO bookings (id, event_id, user_id, quantity, status, created_at)
            SELECT $3, id, $4, $1, 'confirmed', $5 FROM taken
            RETURNING id, event_id, user_id, quantity, status, created_at, cancelled_at
        ), notice AS (
            INSERT INTO notifications
                   (id, kind, user_id, event_id, booking_id, status, attempts,
                    next_attempt_at, enqueued_at, created_at, request_id)
            SELECT $6, 'booking_confirmed', user_id, event_id, id, 'pending', 0, $5, $5, $5, $7
              FROM booking
        ), remembered AS (
            UPDATE idempotency_keys
               SET status = 'completed', response_status = $10, response_body = $9
              FROM booking
             WHERE idempotency_keys.user_id = $4 AND idempotency_keys.key = $8
               AND idempotency_keys.status = 'in_flight'
        )
        SELECT id, event_id, user_id, quantity, status, created_at, cancelled_at FROM booking"#;
    let notification_id = Uuid::now_v7();
    let (key, status, response) = match remembered {
        Some((key, status, response)) => (Some(key), Some(i32::from(status)), Some(response)),
        None => (None, None, None),
    };
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        SQL,
        [
            booking.quantity.into(),
            booking.event_id.into(),
            booking.id.into(),
            booking.user_id.into(),
            booking.created_at.into(),
            notification_id.into(),
            services.request_id.clone().into(),
            key.into(),
            response.into(),
            status.into(),
        ],
    );
    let booked = Booking::find()
        .from_raw_sql(statement)
        .one(&services.db)
        .await?;
    Ok(booked.map(|b| (b, notification_id)))
}

/// SQLite has no data-modifying CTEs; it serialises writers anyway, so a short
/// immediate transaction is equivalent.
async fn book_in_transaction(
    services: &Services,
    booking: BookingModel,
    remembered: Option<(String, u16, String)>,
) -> Result<Option<(BookingModel, Uuid)>, Error> {
    let txn = begin_write(&services.db).await?;
    let taken = Event::update_many()
        .col_expr(
            EventColumn::AvailableTickets,
            Expr::col(EventColumn::AvailableTickets).sub(booking.quantity),
        )
        .filter(EventColumn::Id.eq(booking.event_id))
        .filter(EventColumn::Status.eq(EventStatus::Scheduled))
        .filter(EventColumn::AvailableTickets.gte(booking.quantity))
        .exec(&txn)
        .await?;
    if taken.rows_affected == 0 {
        return Ok(None);
    }
    // `reset_all` marks every field as set: an insert of a complete model.
    let booking = BookingActiveModel::from(booking)
        .reset_all()
        .insert(&txn)
        .await?;
    let ids = outbox::write(&txn, services, vec![confirmation(&booking)]).await?;
    if let Some((key, status, response)) = remembered {
        idempotency::save_response(&txn, booking.user_id, &key, status, &response).await?;
    }
    txn.commit().await?;
    Ok(ids.first().map(|&id| (booking, id)))
}

fn confirmation(booking: &BookingModel) -> outbox::Notice {
    outbox::Notice {
        kind: NotificationKind::BookingConfirmed,
        user_id: booking.user_id,
        event_id: booking.event_id,
        booking_id: Some(booking.id),
        changes: None,
    }
}

/// Nothing was taken: say why. Read after the fact, so the count is a hint, not
/// a promise.
async fn why_not_booked(db: &DatabaseConnection, event_id: Uuid) -> Error {
    match Event::find_by_id(event_id).one(db).await {
        Ok(None) => Error::NotFound("event"),
        Ok(Some(event)) if event.status == EventStatus::Cancelled => Error::EventCancelled,
        Ok(Some(event)) => Error::SoldOut {
            available: event.available_tickets,
        },
        Err(error) => error.into(),
    }
}

pub async fn list_own(
    db: &DatabaseConnection,
    customer_id: Uuid,
) -> Result<Vec<BookingModel>, Error> {
    Ok(Booking::find()
        .filter(BookingColumn::UserId.eq(customer_id))
        .order_by_desc(BookingColumn::CreatedAt)
        .order_by_desc(BookingColumn::Id)
        .all(db)
        .await?)
}

/// Visible to the customer who made it and the organizer of its event; to anyone
/// else it does not exist.
pub async fn get(
    db: &DatabaseConnection,
    viewer: Uuid,
    booking_id: Uuid,
) -> Result<BookingModel, Error> {
    let booking = Booking::find_by_id(booking_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("booking"))?;
    if booking.user_id == viewer {
        return Ok(booking);
    }
    let organizes = Event::find_by_id(booking.event_id)
        .filter(EventColumn::OrganizerId.eq(viewer))
        .one(db)
        .await?
        .is_some();
    if organizes {
        Ok(booking)
    } else {
        Err(Error::NotFound("booking"))
    }
}

/// Cancels a customer's own booking and returns its tickets, exactly once: a
/// repeat (or a concurrent duplicate) finds it already cancelled and changes nothing.
pub async fn cancel(
    services: &Services,
    customer_id: Uuid,
    booking_id: Uuid,
) -> Result<BookingModel, Error> {
    let txn = begin_write(&services.db).await?;
    let booking = Booking::find_by_id(booking_id)
        .filter(BookingColumn::UserId.eq(customer_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("booking"))?;
    if booking.status == BookingStatus::Cancelled {
        return Ok(booking);
    }
    // Lock order is event, then booking, on every path that touches both; the
    // reverse order here could deadlock against an event-wide change.
    Event::find_by_id(booking.event_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let cancelled = Booking::update_many()
        .col_expr(BookingColumn::Status, Expr::value(BookingStatus::Cancelled))
        .col_expr(BookingColumn::CancelledAt, Expr::value(Some(now())))
        .filter(BookingColumn::Id.eq(booking_id))
        .filter(BookingColumn::Status.eq(BookingStatus::Confirmed))
        .exec_with_returning(&txn)
        .await?
        .into_iter()
        .next();
    let Some(cancelled) = cancelled else {
        // A concurrent cancel won; it returned the tickets.
        drop(txn);
        return Booking::find_by_id(booking_id)
            .one(&services.db)
            .await?
            .ok_or(Error::NotFound("booking"));
    };
    Event::update_many()
        .col_expr(
            EventColumn::AvailableTickets,
            Expr::col(EventColumn::AvailableTickets).add(cancelled.quantity),
        )
        .filter(EventColumn::Id.eq(cancelled.event_id))
        .exec(&txn)
        .await?;
    let ids = outbox::write(
        &txn,
        services,
        vec![outbox::Notice {
            kind: NotificationKind::BookingCancelled,
            ..confirmation(&cancelled)
        }],
    )
    .await?;
    txn.commit().await?;
    services.observer.booking_cancelled();
    outbox::enqueue(services, ids);
    Ok(cancelled)
}
