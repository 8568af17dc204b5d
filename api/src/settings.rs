//! The api's configuration, from the environment (see the README's table).

use std::time::Duration;

use rand::RngCore;

use crate::{domain::idempotency, http::rate_limit::RateLimits};
use platform::{
    StorageSettings,
    env::{self, ConfigError},
};

#[derive(Clone)]
pub struct AuthSettings {
    pub secret: Vec<u8>,
    pub token_ttl: Duration,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("secret", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub storage: StorageSettings,
    /// Embedded mode: the worker the api runs in-process.
    #[cfg(feature = "embedded-worker")]
    pub worker: worker::WorkerSettings,
    pub auth: AuthSettings,
    pub db_max_connections: u32,
    /// How long `Idempotency-Key`s are remembered (at least 24 hours).
    pub idempotency_ttl: Duration,
    pub rate_limits: RateLimits,
    /// How long an event-update email waits to take in further changes.
    pub event_update_delay: Duration,
    /// `METRICS_TOKEN`: `/metrics` wants it as a bearer token.
    pub metrics_token: Option<String>,
    /// Card payments (`STRIPE_*`); `None`: manual payments only.
    pub stripe: Option<stripe_client::StripeSettings>,
    /// Where webhook endpoints may point: `WEBHOOK_ALLOW_HTTP`,
    /// `WEBHOOK_ALLOW_PRIVATE` (both off: public `https://` only).
    pub webhook_destinations: webhook::DestinationRules,
    /// `TICKET_SIGNING_KEY`: base64url of a 32-byte Ed25519 seed; unset, one
    /// is made once and kept in the database.
    pub ticket_signing_key: Option<String>,
}

pub const MIN_SECRET_LEN: usize = 32;

/// Token keys that were once written in this project's files (the compose
/// file's old default): never accepted.
const PUBLISHED_SECRETS: &[&str] = &["local-compose-secret-change-me-0123456789"];

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let storage = StorageSettings::from_env()?;
        let embedded = storage.embedded();
        #[cfg(not(feature = "embedded-worker"))]
        if embedded {
            return Err(ConfigError::new(
                "REDIS_URL",
                "required: this api was built without the embedded worker (cargo feature `embedded-worker`)",
            ));
        }
        let secret = match env::optional("AUTH_SECRET") {
            Some(secret) if PUBLISHED_SECRETS.contains(&secret.as_str()) => {
                return Err(ConfigError::new(
                    "AUTH_SECRET",
                    "is a value published with this project: anyone could sign tokens; set your own (e.g. openssl rand -hex 32)",
                ));
            }
            Some(secret) if secret.len() >= MIN_SECRET_LEN => secret.into_bytes(),
            Some(_) => {
                return Err(ConfigError::new(
                    "AUTH_SECRET",
                    format!("must be at least {MIN_SECRET_LEN} bytes"),
                ));
            }
            None if embedded => {
                tracing::warn!(
                    "AUTH_SECRET is not set: using a random key, so tokens stop working when this process restarts"
                );
                random_secret()
            }
            None => {
                return Err(ConfigError::new(
                    "AUTH_SECRET",
                    "required outside embedded mode (at least 32 bytes)",
                ));
            }
        };
        let ttl_secs: u64 = env::parsed_or("AUTH_TOKEN_TTL_SECS", 3600)?;
        if ttl_secs == 0 {
            return Err(ConfigError::new(
                "AUTH_TOKEN_TTL_SECS",
                "must be greater than 0",
            ));
        }
        let min_ttl = idempotency::MIN_TTL.as_secs();
        let idempotency_ttl: u64 = env::parsed_or("IDEMPOTENCY_TTL_SECS", min_ttl)?;
        if idempotency_ttl < min_ttl {
            return Err(ConfigError::new(
                "IDEMPOTENCY_TTL_SECS",
                format!("must be at least {min_ttl} (keys are kept at least 24 hours)"),
            ));
        }
        let default_pool = if embedded { 4 } else { 32 };
        Ok(Self {
            storage,
            #[cfg(feature = "embedded-worker")]
            worker: worker::WorkerSettings::from_env()?,
            auth: AuthSettings {
                secret,
                token_ttl: Duration::from_secs(ttl_secs),
            },
            db_max_connections: env::parsed_or("DATABASE_MAX_CONNECTIONS", default_pool)?,
            idempotency_ttl: Duration::from_secs(idempotency_ttl),
            rate_limits: RateLimits::from_env()?,
            event_update_delay: Duration::from_secs(env::parsed_or(
                "EVENT_UPDATE_EMAIL_DELAY_SECS",
                30u64,
            )?),
            metrics_token: env::optional("METRICS_TOKEN"),
            stripe: stripe_client::StripeSettings::from_env()?,
            webhook_destinations: inventory::webhooks::destinations_from_env()?,
            ticket_signing_key: inventory::signing::key_from_env()?,
        })
    }

    pub fn embedded(&self) -> bool {
        self.storage.embedded()
    }
}

pub fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    secret
}
