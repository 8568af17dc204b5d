//! End-to-end tests over real HTTP, a real database, a real queue and a real SMTP
//! server. Each test gets its own database and queue; see `helpers`.

mod abuse;
mod auth;
mod authorization;
mod bad_input;
mod batching;
mod bookings;
mod concurrency;
mod door;
mod emails;
mod events;
mod faults;
mod helpers;
mod holds;
mod idempotency;
mod live;
mod notifications;
mod operations;
mod payments;
mod promo_codes;
mod receiver;
mod regressions;
mod seating;
mod shutdown;
mod smtp;
mod ticket_types;
mod waiting_room;
mod waitlist;
mod webhooks;
