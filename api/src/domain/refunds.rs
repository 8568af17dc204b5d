//! What a booking's payment looks like to its customer and organizer, and
//! giving the money back when a paid booking is cancelled (SPEC §14).

use std::collections::HashMap;

use entity::prelude::*;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

/// A booking's payment, as its customer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingPayment {
    pub provider: PaymentProvider,
    pub status: BookingPaymentStatus,
    pub amount: i64,
    pub refunded_amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingPaymentStatus {
    Paid,
    RefundPending,
    Refunded,
    RefundFailed,
}

/// The payments of these bookings (free ones have none), with their refunds.
pub async fn of_bookings<C: ConnectionTrait>(
    db: &C,
    bookings: &[BookingModel],
) -> Result<HashMap<Uuid, BookingPayment>, DbErr> {
    let payment_ids: Vec<Uuid> = bookings.iter().filter_map(|b| b.payment_id).collect();
    if payment_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let payments = Payment::find()
        .filter(PaymentColumn::Id.is_in(payment_ids.clone()))
        .all(db)
        .await?;
    let refunds: HashMap<Uuid, RefundModel> = Refund::find()
        .filter(RefundColumn::PaymentId.is_in(payment_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|refund| (refund.payment_id, refund))
        .collect();
    Ok(payments
        .into_iter()
        .filter_map(|payment| {
            let booking_id = payment.booking_id?;
            let refund = refunds.get(&payment.id);
            let (status, refunded_amount) = match refund.map(|r| r.status) {
                None => (BookingPaymentStatus::Paid, 0),
                Some(RefundStatus::Pending | RefundStatus::Sending) => {
                    (BookingPaymentStatus::RefundPending, 0)
                }
                Some(RefundStatus::Succeeded) => (
                    BookingPaymentStatus::Refunded,
                    refund.map_or(0, |r| r.amount),
                ),
                Some(RefundStatus::Failed) => (BookingPaymentStatus::RefundFailed, 0),
            };
            Some((
                booking_id,
                BookingPayment {
                    provider: payment.provider,
                    status,
                    amount: payment.amount,
                    refunded_amount,
                    currency: payment.currency,
                },
            ))
        })
        .collect())
}

/// Refunds the paid ones of these cancelled bookings in full, in the
/// caller's transaction. Returns the notifications to push (manual refunds
/// are emailed at once; the worker emails the others once done).
pub async fn cancelled_bookings<C: ConnectionTrait>(
    db: &C,
    bookings: &[BookingModel],
    reason: RefundReason,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    let paid_ids: Vec<Uuid> = bookings
        .iter()
        .filter(|b| b.payment_id.is_some())
        .map(|b| b.id)
        .collect();
    let mut notify = Vec::new();
    for payment in inventory::payments::paid(db, paid_ids).await? {
        let booking_id = payment.booking_id;
        let (_, ids) = inventory::payments::refund(db, &payment, booking_id, reason, at).await?;
        notify.extend(ids);
    }
    Ok(notify)
}
