//! Webhooks for integrators (SPEC §16), the parts both the api and the worker
//! need: the Standard Webhooks secret and signature (standardwebhooks.com),
//! and the rule for where a webhook may be sent, checked after DNS so that a
//! name cannot lead a delivery into our own network.

mod destination;
mod signature;

pub use destination::{Destination, DestinationRules, Refused};
pub use signature::{BadSecret, Secret, sign};
