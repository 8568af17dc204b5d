//! The payment provider, seen from the booking system: Stripe's PaymentIntents
//! and refunds over its HTTP API ([`stripe`]), and the signature on Stripe's
//! webhooks ([`signature`]). What a payment *means* (a hold becomes a booking,
//! a late one is refunded) is `inventory::payments`'; this crate only talks to
//! the provider.

#[cfg(feature = "localstripe")]
pub mod local;
pub mod signature;
pub mod stripe;

pub use stripe::{
    NewPaymentIntent, PaymentIntent, Refund, Stripe, StripeError, StripeSettings, WebhookEvent,
};
