//! Paying for a hold: a card payment through Stripe, Stripe's webhook, and a
//! payment the organizer took elsewhere (SPEC §14).

use rocket::{
    Request,
    http::Status,
    post,
    request::{FromRequest, Outcome},
    serde::json::Json,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{BookingView, MarkPaidInput, PaymentView};
use crate::{
    auth::{Customer, Organizer},
    domain::{Services, payments},
    http::{ApiError, JsonBody, RawBody, docs, error::ErrorBody, parse_id},
};

/// Pay for my hold by card: a Stripe PaymentIntent for the hold's total,
/// whose `client_secret` Stripe.js confirms. Asking again while an attempt
/// is pending returns it; after a declined card, a new attempt. The first
/// attempt keeps the hold at least 5 more minutes. The booking is made when
/// Stripe reports the payment (its webhook), never by this call.
#[utoipa::path(post, path = "/api/v1/holds/{id}/payment", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Hold id")),
    responses(
        (status = 201, description = "The payment attempt under way", body = PaymentView),
        docs::AsCustomer,
        (status = 404, description = "No such hold of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: a free hold (confirm it), one already paid, released, or card payments not set up here", body = ErrorBody),
        (status = 410, description = "`hold_expired`", body = ErrorBody),
        (status = 502, description = "`payment_provider_error`: Stripe could not be reached; try again", body = ErrorBody),
    ))]
#[post("/holds/<id>/payment")]
pub async fn start(
    customer: Customer,
    services: Services,
    id: &str,
) -> Result<(Status, Json<PaymentView>), ApiError> {
    let payment = payments::start(&services, customer.0, parse_id(id, "hold")?).await?;
    Ok((Status::Created, Json(payment.into())))
}

/// The `Stripe-Signature` header, if any.
pub struct StripeSignature(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for StripeSignature {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(StripeSignature(
            request
                .headers()
                .get_one("Stripe-Signature")
                .map(str::to_owned),
        ))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// `false`: nothing to do (another event type, a PaymentIntent not ours,
    /// or one already applied).
    pub applied: bool,
}

/// Stripe's webhook (no token: the body's `Stripe-Signature` proves it):
/// `payment_intent.succeeded` books the hold (or refunds a payment that
/// cannot be booked), `payment_intent.payment_failed` leaves the hold for
/// another attempt. Each event is applied once however often it comes.
#[utoipa::path(post, path = "/api/v1/payments/stripe/webhook", tag = "payments",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, as Stripe signed it"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>")),
    responses(
        (status = 200, description = "Received", body = WebhookReceipt),
        (status = 400, description = "`invalid_signature`: missing, wrong or more than 5 minutes old; nothing changed", body = ErrorBody),
        (status = 404, description = "Card payments are not set up here", body = ErrorBody),
        (status = 422, description = "Signed, but not a Stripe event", body = ErrorBody),
    ))]
#[post("/payments/stripe/webhook", data = "<body>")]
pub async fn stripe_webhook(
    services: Services,
    signature: StripeSignature,
    body: RawBody,
) -> Result<Json<WebhookReceipt>, ApiError> {
    let received = payments::stripe_webhook(&services, &body.0, signature.0.as_deref()).await?;
    Ok(Json(WebhookReceipt {
        applied: received == payments::Received::Applied,
    }))
}

/// Record a payment taken elsewhere (the event's organizer): cash at the box
/// office, a bank transfer. The hold becomes a booking, paid with provider
/// `manual`, and its confirmation email goes out.
#[utoipa::path(post, path = "/api/v1/holds/{id}/mark_paid", tag = "payments", request_body = MarkPaidInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "Hold id")),
    responses(
        (status = 201, description = "The booking", body = BookingView),
        docs::AsOrganizer, docs::JsonBody,
        (status = 404, description = "No such hold on your events", body = ErrorBody),
        (status = 409, description = "`conflict`: a free hold, one already paid, or one that ended with its tickets gone", body = ErrorBody),
    ))]
#[post("/holds/<id>/mark_paid", data = "<body>")]
pub async fn mark_paid(
    organizer: Organizer,
    services: Services,
    id: &str,
    body: JsonBody<MarkPaidInput>,
) -> Result<(Status, Json<BookingView>), ApiError> {
    let hold_id = parse_id(id, "hold")?;
    let reference = body.0.reference()?;
    let booking = payments::mark_paid(&services, organizer.0, hold_id, reference).await?;
    Ok((Status::Created, Json(booking.into())))
}
