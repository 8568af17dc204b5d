//! What a payment's outcome does (SPEC §14), shared by the api (the
//! provider's webhook, the organizer's manual payment) and the worker
//! (reconciliation of payments whose webhook never came).
//!
//! A payment is applied once: its row is locked first and its status moves
//! only forward (`pending` or `failed` → `succeeded` → `refunded`), so a
//! repeated, late, reordered or concurrent report finds it applied and
//! changes nothing. A payment that succeeded always ends as a booking or a
//! refund, in the same transaction that records it:
//!
//! - its hold still active (even past its time, while the worker has not yet
//!   ended it): the hold becomes the booking;
//! - its hold ended unpaid: the same tickets (the same seats) are taken again
//!   if they are free (`hold_seats` keeps which seats), else the payment is
//!   refunded;
//! - its hold already booked by another payment, the event cancelled, or an
//!   amount or currency other than the hold's: refunded.
//!
//! Lock order: the payment, the hold, the event, seats.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::db::begin_write;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QuerySelect, sea_query::Expr, sea_query::OnConflict,
};
use uuid::Uuid;

use crate::{
    AfterCommit, Count, hold_lines, move_tickets, new_booking, outbox, per_type, take_promo_uses,
    take_tickets, write_booking_lines,
};

/// What the provider says happened to a payment.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub amount: i64,
    pub currency: &'a str,
}

/// What applying a report did.
#[derive(Debug)]
pub enum Applied {
    /// The hold is booked; the confirmation is in the outbox.
    Booked {
        booking_id: Uuid,
        after: AfterCommit,
    },
    /// The money goes back (a refund row for the worker, or recorded at once
    /// for a manual payment).
    Refunding {
        refund: RefundModel,
        after: AfterCommit,
    },
    /// Marked failed.
    Failed,
    /// Already applied, or no longer applicable: nothing changed.
    Unchanged,
    /// No payment of ours has this reference.
    Unknown,
}

impl Applied {
    /// For `payments_total{outcome}`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Applied::Booked { .. } => "booked",
            Applied::Refunding { .. } => "refunded",
            Applied::Failed => "failed",
            Applied::Unchanged => "repeat",
            Applied::Unknown => "unknown",
        }
    }

    pub fn into_after_commit(self) -> AfterCommit {
        match self {
            Applied::Booked { after, .. } | Applied::Refunding { after, .. } => after,
            _ => AfterCommit::default(),
        }
    }
}

async fn locked_payment(
    txn: &DatabaseTransaction,
    provider_ref: &str,
) -> Result<Option<PaymentModel>, DbErr> {
    Payment::find()
        .filter(PaymentColumn::ProviderRef.eq(provider_ref))
        .lock_exclusive()
        .one(txn)
        .await
}

/// The payment with this reference, locked; or why there is nothing to
/// apply (none of ours, or applied already).
async fn unapplied(
    txn: &DatabaseTransaction,
    provider_ref: &str,
) -> Result<Result<PaymentModel, Applied>, DbErr> {
    Ok(match locked_payment(txn, provider_ref).await? {
        None => Err(Applied::Unknown),
        Some(payment)
            if matches!(
                payment.status,
                PaymentStatus::Succeeded | PaymentStatus::Refunded
            ) =>
        {
            Err(Applied::Unchanged)
        }
        Some(payment) => Ok(payment),
    })
}

/// The provider took the money for the payment with this reference.
pub async fn succeeded(
    db: &DatabaseConnection,
    provider_ref: &str,
    report: Report<'_>,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> Result<Applied, DbErr> {
    let after = || AfterCommit::caused_by(request_id.clone());
    let txn = begin_write(db).await?;
    let payment = match unapplied(&txn, provider_ref).await? {
        Ok(payment) => payment,
        Err(applied) => return Ok(applied),
    };
    let matches =
        report.amount == payment.amount && report.currency.eq_ignore_ascii_case(&payment.currency);
    if matches && let Some(applied) = book(&txn, &payment, after(), at).await? {
        txn.commit().await?;
        return Ok(applied);
    }
    // Nothing was booked: whatever the attempt wrote goes, and the money goes
    // back. The payment row is locked again in a transaction of its own.
    drop(txn);
    let txn = begin_write(db).await?;
    let payment = match unapplied(&txn, provider_ref).await? {
        Ok(payment) => payment,
        Err(applied) => return Ok(applied),
    };
    let reason = if !matches {
        RefundReason::AmountMismatch
    } else {
        why_not_booked(&txn, &payment).await?
    };
    set_status(&txn, payment.id, PaymentStatus::Succeeded, None, at).await?;
    let (refund, notified) = refund(&txn, &payment, None, reason, at).await?;
    txn.commit().await?;
    Ok(Applied::Refunding {
        refund,
        after: after().notify(notified),
    })
}

/// The provider declined the payment: the hold stays, and the customer may
/// start another payment.
pub async fn failed(db: &DatabaseConnection, provider_ref: &str) -> Result<Applied, DbErr> {
    let payment = Payment::find()
        .filter(PaymentColumn::ProviderRef.eq(provider_ref))
        .one(db)
        .await?;
    let Some(payment) = payment else {
        return Ok(Applied::Unknown);
    };
    Ok(if fail_attempt(db, payment.id, Utc::now()).await? {
        Applied::Failed
    } else {
        Applied::Unchanged
    })
}

/// Marks a pending attempt failed: declined, or never made at the provider.
/// `false`: it was no longer pending, and nothing changed.
pub async fn fail_attempt<C: ConnectionTrait>(
    db: &C,
    payment_id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let marked = Payment::update_many()
        .col_expr(PaymentColumn::Status, Expr::value(PaymentStatus::Failed))
        .col_expr(PaymentColumn::UpdatedAt, Expr::value(at))
        .filter(PaymentColumn::Id.eq(payment_id))
        .filter(PaymentColumn::Status.eq(PaymentStatus::Pending))
        .exec(db)
        .await?;
    Ok(marked.rows_affected == 1)
}

/// A payment recorded by the organizer: written and applied in one
/// transaction. `None`: the hold could not be booked (its tickets are gone,
/// or it is booked already) and nothing was written.
pub async fn paid_manually(
    db: &DatabaseConnection,
    hold: &HoldModel,
    reference: String,
    after: AfterCommit,
    at: DateTime<Utc>,
) -> Result<Option<(Uuid, AfterCommit)>, DbErr> {
    let txn = begin_write(db).await?;
    // Written as taken: a Stripe attempt may be pending for the same hold
    // (one pending attempt per hold), and should it succeed too, it is
    // refunded as `paid_twice`.
    let payment = PaymentModel {
        provider: PaymentProvider::Manual,
        status: PaymentStatus::Succeeded,
        reference: Some(reference),
        ..new_payment(hold, at)
    };
    PaymentActiveModel::from(payment.clone())
        .reset_all()
        .insert(&txn)
        .await?;
    match book(&txn, &payment, after, at).await? {
        Some(Applied::Booked { booking_id, after }) => {
            txn.commit().await?;
            Ok(Some((booking_id, after)))
        }
        _ => Ok(None),
    }
}

/// A new attempt at paying for `hold`, for its whole total.
pub fn new_payment(hold: &HoldModel, at: DateTime<Utc>) -> PaymentModel {
    PaymentModel {
        id: Uuid::now_v7(),
        hold_id: hold.id,
        event_id: hold.event_id,
        user_id: hold.user_id,
        booking_id: None,
        provider: PaymentProvider::Stripe,
        status: PaymentStatus::Pending,
        amount: hold.total,
        currency: hold.currency.clone(),
        provider_ref: None,
        client_secret: None,
        reference: None,
        created_at: at,
        updated_at: at,
    }
}

/// Books the payment's hold. `None`: it cannot be, and the caller rolls back
/// whatever this wrote.
async fn book(
    txn: &DatabaseTransaction,
    payment: &PaymentModel,
    after: AfterCommit,
    at: DateTime<Utc>,
) -> Result<Option<Applied>, DbErr> {
    let Some(hold) = Hold::find_by_id(payment.hold_id)
        .lock_exclusive()
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let lines = hold_lines(txn, &[hold.id])
        .await?
        .remove(&hold.id)
        .unwrap_or_default();
    let wanted = per_type(&lines);
    let seat_ids: Vec<Uuid> = match hold.status {
        HoldStatus::Confirmed => return Ok(None),
        HoldStatus::Active => {
            let confirmed = Hold::update_many()
                .col_expr(HoldColumn::Status, Expr::value(HoldStatus::Confirmed))
                .col_expr(HoldColumn::EndedAt, Expr::value(Some(at)))
                .filter(HoldColumn::Id.eq(hold.id))
                .filter(HoldColumn::Status.eq(HoldStatus::Active))
                .exec(txn)
                .await?;
            if confirmed.rows_affected == 0 {
                return Ok(None);
            }
            move_tickets(txn, hold.event_id, &wanted, Count::Held, Count::Booked).await?;
            crate::book_held_seats(txn, hold.id).await?
        }
        HoldStatus::Expired | HoldStatus::Released => {
            let Some(seat_ids) = retake(txn, &hold, &wanted, at).await? else {
                return Ok(None);
            };
            seat_ids
        }
    };
    let booking = BookingModel {
        promo_code_id: hold.promo_code_id,
        promo_uses: hold.promo_uses,
        payment_id: Some(payment.id),
        ..new_booking(hold.event_id, hold.user_id, &lines, &hold.currency, at)
    };
    BookingActiveModel::from(booking.clone())
        .reset_all()
        .insert(txn)
        .await?;
    write_booking_lines(txn, &[(booking.id, &lines)]).await?;
    let seats = if seat_ids.is_empty() {
        Vec::new()
    } else {
        Seat::find()
            .filter(SeatColumn::Id.is_in(seat_ids.clone()))
            .all(txn)
            .await?
    };
    let issue = crate::issued::Issue {
        booking: &booking,
        lines: &lines,
        seats: &seats,
    };
    crate::issued::issue(txn, &[issue]).await?;
    let told = [crate::webhooks::BookingData::from(&booking)];
    crate::webhooks::publish(
        txn,
        booking.event_id,
        crate::webhooks::Kind::BookingConfirmed,
        &told,
    )
    .await?;
    Hold::update_many()
        .col_expr(HoldColumn::BookingId, Expr::value(Some(booking.id)))
        .filter(HoldColumn::Id.eq(hold.id))
        .exec(txn)
        .await?;
    set_status(
        txn,
        payment.id,
        PaymentStatus::Succeeded,
        Some(booking.id),
        at,
    )
    .await?;
    let ids = outbox::write(txn, None, vec![outbox::Notice::confirmation(&booking)]).await?;
    Ok(Some(Applied::Booked {
        booking_id: booking.id,
        after: after.notify(ids).changed(hold.event_id, seat_ids),
    }))
}

/// Takes an ended hold's tickets again, from those on sale: the same types
/// and, on a seated event, the same seats; its promo code's uses too. `None`:
/// something is no longer free (the caller rolls back).
async fn retake(
    txn: &DatabaseTransaction,
    hold: &HoldModel,
    wanted: &std::collections::HashMap<Uuid, i32>,
    at: DateTime<Utc>,
) -> Result<Option<Vec<Uuid>>, DbErr> {
    let event = Event::find_by_id(hold.event_id).one(txn).await?;
    if event.is_none_or(|event| event.status == EventStatus::Cancelled) {
        return Ok(None);
    }
    if take_tickets(txn, hold.event_id, wanted, Count::Booked)
        .await?
        .is_err()
    {
        return Ok(None);
    }
    if let Some(code_id) = hold.promo_code_id
        && hold.promo_uses > 0
        && !take_promo_uses(txn, code_id, hold.promo_uses).await?
    {
        return Ok(None);
    }
    // The hold's seats are kept after it ended (`hold_seats`).
    let seat_ids: Vec<Uuid> = HoldSeat::find()
        .filter(HoldSeatColumn::HoldId.eq(hold.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|link| link.seat_id)
        .collect();
    if !seat_ids.is_empty() {
        let taken = Seat::update_many()
            .col_expr(SeatColumn::Status, Expr::value(SeatStatus::Booked))
            .col_expr(SeatColumn::HoldId, Expr::value(Some(hold.id)))
            .filter(SeatColumn::Id.is_in(seat_ids.clone()))
            .filter(SeatColumn::EventId.eq(hold.event_id))
            .filter(SeatColumn::Status.eq(SeatStatus::Available))
            .exec(txn)
            .await?;
        if taken.rows_affected != seat_ids.len() as u64 {
            return Ok(None);
        }
    }
    Hold::update_many()
        .col_expr(HoldColumn::Status, Expr::value(HoldStatus::Confirmed))
        .col_expr(HoldColumn::EndedAt, Expr::value(Some(at)))
        .filter(HoldColumn::Id.eq(hold.id))
        .exec(txn)
        .await?;
    Ok(Some(seat_ids))
}

/// Why a payment that came in could not be booked, for its refund.
async fn why_not_booked(
    txn: &DatabaseTransaction,
    payment: &PaymentModel,
) -> Result<RefundReason, DbErr> {
    let hold = Hold::find_by_id(payment.hold_id).one(txn).await?;
    if hold.is_some_and(|hold| hold.status == HoldStatus::Confirmed) {
        return Ok(RefundReason::PaidTwice);
    }
    let cancelled = Event::find_by_id(payment.event_id)
        .one(txn)
        .await?
        .is_some_and(|event| event.status == EventStatus::Cancelled);
    Ok(if cancelled {
        RefundReason::EventCancelled
    } else {
        RefundReason::TicketsGone
    })
}

async fn set_status<C: ConnectionTrait>(
    db: &C,
    payment_id: Uuid,
    status: PaymentStatus,
    booking_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut update = Payment::update_many()
        .col_expr(PaymentColumn::Status, Expr::value(status))
        .col_expr(PaymentColumn::UpdatedAt, Expr::value(at));
    if let Some(booking_id) = booking_id {
        update = update.col_expr(PaymentColumn::BookingId, Expr::value(Some(booking_id)));
    }
    update
        .filter(PaymentColumn::Id.eq(payment_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a succeeded payment back in full, once: a second call returns the
/// first refund. A Stripe refund is a row for the worker to carry out; a
/// manual one is recorded as done at once (the organizer pays it back) and
/// its email is written here. Returns the refund and the ids of the
/// notifications to push.
pub async fn refund<C: ConnectionTrait>(
    db: &C,
    payment: &PaymentModel,
    booking_id: Option<Uuid>,
    reason: RefundReason,
    at: DateTime<Utc>,
) -> Result<(RefundModel, Vec<Uuid>), DbErr> {
    let manual = payment.provider == PaymentProvider::Manual;
    let row = RefundModel {
        id: Uuid::now_v7(),
        payment_id: payment.id,
        booking_id,
        event_id: payment.event_id,
        user_id: payment.user_id,
        amount: payment.amount,
        currency: payment.currency.clone(),
        reason,
        status: if manual {
            RefundStatus::Succeeded
        } else {
            RefundStatus::Pending
        },
        attempts: 0,
        next_attempt_at: at,
        locked_until: None,
        provider_ref: None,
        last_error: None,
        created_at: at,
        finished_at: manual.then_some(at),
    };
    let inserted = Refund::insert(RefundActiveModel::from(row.clone()).reset_all())
        .on_conflict(
            OnConflict::column(RefundColumn::PaymentId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        let existing = Refund::find()
            .filter(RefundColumn::PaymentId.eq(payment.id))
            .one(db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the payment's refund".into()))?;
        return Ok((existing, Vec::new()));
    }
    if !manual {
        return Ok((row, Vec::new()));
    }
    platform::metrics::REFUNDS
        .with_label_values(&["recorded"])
        .inc();
    let ids = refunded(db, &row, at).await?;
    Ok((row, ids))
}

/// The money went back (a refund made, or recorded for a manual payment):
/// its payment is `refunded` and its customer's email written. Returns the
/// notification's id, for the caller to push once committed.
pub async fn refunded<C: ConnectionTrait>(
    db: &C,
    refund: &RefundModel,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    set_status(db, refund.payment_id, PaymentStatus::Refunded, None, at).await?;
    let told = [crate::webhooks::RefundData::from(refund)];
    crate::webhooks::publish(
        db,
        refund.event_id,
        crate::webhooks::Kind::PaymentRefunded,
        &told,
    )
    .await?;
    outbox::write(db, None, vec![refunded_notice(refund)]).await
}

/// The email that tells a customer their money went back.
fn refunded_notice(refund: &RefundModel) -> outbox::Notice {
    outbox::Notice {
        kind: NotificationKind::PaymentRefunded,
        user_id: refund.user_id,
        event_id: refund.event_id,
        booking_id: refund.booking_id,
        hold_id: None,
        changes: None,
        refund_id: Some(refund.id),
        webhook_endpoint_id: None,
    }
}

/// The succeeded payments of these bookings, for refunding them.
pub async fn paid<C: ConnectionTrait>(
    db: &C,
    booking_ids: Vec<Uuid>,
) -> Result<Vec<PaymentModel>, DbErr> {
    if booking_ids.is_empty() {
        return Ok(Vec::new());
    }
    Payment::find()
        .filter(PaymentColumn::BookingId.is_in(booking_ids))
        .filter(PaymentColumn::Status.eq(PaymentStatus::Succeeded))
        .all(db)
        .await
}
