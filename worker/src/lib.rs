//! The worker: takes delivery jobs from the queue, turns outbox rows into sent
//! email (SMTP or `.eml` files), and sweeps for rows whose job was lost; and it
//! expires holds when their time is up (`holds`); it carries out refunds and
//! asks Stripe about payments whose webhook never came (`payments`). Runs as
//! its own process (`worker` binary) or inside the api in embedded mode. What it
//! shares with the api (the job contract, the queue, settings, logging, metrics)
//! is in `platform`.

mod compose;
pub mod delivery;
mod email;
mod gather;
pub mod holds;
pub mod mailer;
pub mod metrics;
pub mod payments;
mod poll;
pub mod runner;
pub mod settings;
pub mod webhooks;

pub use runner::{Worker, WorkerHandle};
pub use settings::{DeliveryPolicy, MailSettings, PaymentPolicy, WorkerSettings};
pub use webhooks::WebhookPolicy;
