//! Handlers: parse the request, call one domain function, shape the response.

pub mod auth;
pub mod bookings;
mod csv;
pub mod door;
pub mod events;
pub mod health;
pub mod holds;
pub mod payments;
pub mod promo_codes;
pub mod queue;
mod requests;
pub mod ticket_types;
mod views;
pub mod waitlist;
pub mod webhooks;

pub use requests::*;
pub use views::*;
