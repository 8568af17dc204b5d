//! Paying for a hold (SPEC §14): a Stripe PaymentIntent per attempt, the
//! provider's signed webhook that applies its outcome, and a payment the
//! organizer took elsewhere. What an outcome does to the hold is
//! `inventory::payments`', shared with the worker's reconciliation.

use chrono::Utc;
use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, SqlErr,
    sea_query::Expr,
};
use stripe_client::{NewPaymentIntent, PaymentIntent, WebhookEvent};
use uuid::Uuid;

use super::{
    Error, Services, ValidationErrors, begin_write, holds, now, queries, sale::BookingDetails,
};

/// Starting a payment keeps the hold at least this long from then, once.
const PAY_WITHIN: chrono::Duration = chrono::Duration::minutes(5);

/// Starts paying for the customer's hold, or returns the attempt already
/// under way. The amount is the hold's total; the attempt's id is its
/// PaymentIntent's idempotency key, so no two attempts can share one.
pub async fn start(
    services: &Services,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<PaymentModel, Error> {
    let hold = holds::own(&services.db, customer_id, hold_id).await?;
    if hold.total == 0 {
        return Err(Error::Conflict(
            "this hold is free: confirm it, no payment is needed".into(),
        ));
    }
    let Some(stripe) = services.stripe.as_deref() else {
        return Err(Error::Conflict(
            "card payments are not set up for this service; the organizer can record a payment taken elsewhere".into(),
        ));
    };
    match hold.status {
        HoldStatus::Confirmed => {
            return Err(Error::Conflict("this hold is paid and booked".into()));
        }
        HoldStatus::Released => {
            return Err(Error::Conflict(
                "this hold was released; hold tickets again".into(),
            ));
        }
        HoldStatus::Expired => return Err(Error::HoldExpired),
        HoldStatus::Active if hold.expires_at <= now() => return Err(Error::HoldExpired),
        HoldStatus::Active => {}
    }
    if let Some(pending) = pending(services, hold.id).await? {
        return Ok(pending);
    }
    let at = now();
    let payment = inventory::payments::new_payment(&hold, at);
    let txn = begin_write(&services.db).await?;
    if let Err(error) = PaymentActiveModel::from(payment.clone())
        .reset_all()
        .insert(&txn)
        .await
    {
        drop(txn);
        // Another request started one a moment ago.
        if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            return pending(services, hold.id)
                .await?
                .ok_or(Error::StillInFlight);
        }
        return Err(error.into());
    }
    let attempts = Payment::find()
        .filter(PaymentColumn::HoldId.eq(hold.id))
        .count(&txn)
        .await?;
    let until = at + PAY_WITHIN;
    let extended = attempts == 1 && hold.expires_at < until;
    if extended {
        Hold::update_many()
            .col_expr(HoldColumn::ExpiresAt, Expr::value(until))
            .filter(HoldColumn::Id.eq(hold.id))
            .filter(HoldColumn::Status.eq(HoldStatus::Active))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    if extended {
        let hold = HoldModel {
            expires_at: until,
            ..hold.clone()
        };
        services.publish(services.after_commit().held(&hold));
    }
    let metadata = [
        ("payment_id", payment.id.to_string()),
        ("hold_id", hold.id.to_string()),
    ];
    let created = stripe
        .create_payment_intent(NewPaymentIntent {
            amount: payment.amount,
            currency: &payment.currency,
            idempotency_key: &payment.id.to_string(),
            metadata: &metadata,
        })
        .await;
    let intent = match created {
        Ok(intent) => intent,
        Err(error) => {
            inventory::payments::fail_attempt(&services.db, payment.id, now()).await?;
            services.observer.payment("stripe", "provider_error");
            return Err(Error::PaymentProvider(error.to_string()));
        }
    };
    let mut active: PaymentActiveModel = payment.into();
    active.provider_ref = sea_orm::Set(Some(intent.id));
    active.client_secret = sea_orm::Set(intent.client_secret);
    active.updated_at = sea_orm::Set(now());
    let payment = active.update(&services.db).await?;
    services.observer.payment("stripe", "started");
    Ok(payment)
}

/// The hold's attempt under way, once its PaymentIntent exists; a moment
/// before that, "try again".
async fn pending(services: &Services, hold_id: Uuid) -> Result<Option<PaymentModel>, Error> {
    let pending = Payment::find()
        .filter(PaymentColumn::HoldId.eq(hold_id))
        .filter(PaymentColumn::Status.eq(PaymentStatus::Pending))
        .one(&services.db)
        .await?;
    match pending {
        Some(payment) if payment.provider_ref.is_none() => Err(Error::StillInFlight),
        pending => Ok(pending),
    }
}

/// What became of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Applied,
    /// A type we do not act on, a PaymentIntent not ours, or a repeat.
    Ignored,
}

/// Applies a Stripe webhook whose signature holds; anything else changes
/// nothing. Each event is applied once however often it comes.
pub async fn stripe_webhook(
    services: &Services,
    payload: &[u8],
    signature: Option<&str>,
) -> Result<Received, Error> {
    let Some(stripe) = services.stripe.as_deref() else {
        return Err(Error::NotFound("webhook"));
    };
    stripe
        .verify_webhook(payload, signature, Utc::now().timestamp())
        .map_err(|why| Error::BadSignature(why.to_string()))?;
    let event: WebhookEvent = serde_json::from_slice(payload)
        .map_err(|_| ValidationErrors::single("body", "not a Stripe event"))?;
    let intent = || {
        serde_json::from_value::<PaymentIntent>(event.data.object.clone())
            .map_err(|_| ValidationErrors::single("data.object", "not a PaymentIntent"))
    };
    let applied = match event.kind.as_str() {
        "payment_intent.succeeded" => {
            let intent = intent()?;
            apply_succeeded(services, &intent).await?
        }
        "payment_intent.payment_failed" => {
            let intent = intent()?;
            inventory::payments::failed(&services.db, &intent.id).await?
        }
        _ => return Ok(Received::Ignored),
    };
    tracing::info!(stripe_event = %event.id, kind = %event.kind, outcome = applied.outcome(), "stripe webhook");
    services.observer.payment("stripe", applied.outcome());
    let received = match applied {
        inventory::payments::Applied::Unchanged | inventory::payments::Applied::Unknown => {
            Received::Ignored
        }
        _ => Received::Applied,
    };
    services.publish(applied.into_after_commit());
    Ok(received)
}

async fn apply_succeeded(
    services: &Services,
    intent: &PaymentIntent,
) -> Result<inventory::payments::Applied, DbErr> {
    let report = inventory::payments::Report {
        amount: intent.amount,
        currency: &intent.currency,
    };
    inventory::payments::succeeded(
        &services.db,
        &intent.id,
        report,
        services.request_id.clone(),
        now(),
    )
    .await
}

/// The most characters a manual payment's reference keeps.
pub const MAX_REFERENCE_CHARS: usize = 200;

/// The organizer records a payment taken elsewhere (cash, a bank transfer):
/// the hold is booked at once, as paid with provider `manual`.
pub async fn mark_paid(
    services: &Services,
    organizer_id: Uuid,
    hold_id: Uuid,
    reference: String,
) -> Result<BookingDetails, Error> {
    let hold = Hold::find_by_id(hold_id)
        .one(&services.db)
        .await?
        .ok_or(Error::NotFound("hold"))?;
    let organizes = Event::find_by_id(hold.event_id)
        .filter(EventColumn::OrganizerId.eq(organizer_id))
        .one(&services.db)
        .await?
        .is_some();
    if !organizes {
        return Err(Error::NotFound("hold"));
    }
    if hold.total == 0 {
        return Err(Error::Conflict(
            "this hold is free: its customer confirms it".into(),
        ));
    }
    if hold.status == HoldStatus::Confirmed {
        return Err(Error::Conflict("this hold is paid and booked".into()));
    }
    let after = services.after_commit();
    match inventory::payments::paid_manually(&services.db, &hold, reference, after, now()).await? {
        Some((booking_id, after)) => {
            services.observer.payment("manual", "booked");
            services.observer.booked();
            services.publish(after);
            queries::details(&services.db, booking_id).await
        }
        None => Err(Error::Conflict(
            "this hold ended and its tickets are no longer free; nothing was recorded".into(),
        )),
    }
}
