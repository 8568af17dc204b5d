use std::{path::PathBuf, time::Duration};

use lettre::message::Mailbox;

use platform::{
    Redacted,
    env::{self, ConfigError},
};

#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port`, `smtps://…` or `smtp://…?tls=required`; `None` writes
    /// `.eml` files into `dir` instead.
    pub smtp_url: Option<String>,
    pub dir: PathBuf,
    pub from: Mailbox,
    /// The whole of one SMTP send (connect, greeting, EHLO, TLS, DATA): lettre's
    /// own timeout covers only the connect.
    pub send_timeout: Duration,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_deref().map(Redacted))
            .field("dir", &self.dir)
            .field("from", &self.from)
            .field("send_timeout", &self.send_timeout)
            .finish()
    }
}

/// How hard the worker tries before it gives a notification up as failed.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub max_attempts: i32,
    /// Delay after the first failed attempt; doubles with each further failure.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long a worker may hold a claimed notification before another may take
    /// it over (covers a worker that died mid-send).
    pub lease: Duration,
    /// How often the sweep looks for rows to (re-)enqueue.
    pub sweep_interval: Duration,
    /// A row whose job was pushed this long ago and still is not delivered is taken
    /// to have lost its job, and is pushed again.
    pub redeliver_after: Duration,
}

/// What a worker does with the jobs it takes (where they come from is
/// `platform::StorageSettings`).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub concurrency: usize,
    /// The worker process's niceness (`WORKER_NICE`), applied at start.
    pub nice: i32,
    pub mail: MailSettings,
    pub delivery: DeliveryPolicy,
    pub payments: PaymentPolicy,
    pub webhooks: crate::webhooks::WebhookPolicy,
}

/// Refunds and reconciliation (SPEC §14).
#[derive(Debug, Clone)]
pub struct PaymentPolicy {
    /// `None`: no card payments, so nothing to refund through Stripe or to
    /// reconcile (manual refunds are recorded by the api at once).
    pub stripe: Option<stripe_client::StripeSettings>,
    /// A payment still pending this long after it was last looked at is
    /// asked about (`PAYMENT_RECONCILE_SECS`, default 120): its webhook may
    /// have been lost.
    pub reconcile_after: Duration,
    /// Refund attempts before a refund is given up as `failed` (an operator
    /// then pays it back by hand); retried with [`DeliveryPolicy::retry_delay`]'s
    /// backoff from `retry_base`.
    pub refund_attempts: i32,
    pub refund_retry: DeliveryPolicy,
}

impl PaymentPolicy {
    pub fn from_env() -> Result<Self, ConfigError> {
        let refund_attempts = env::parsed_or("REFUND_MAX_ATTEMPTS", 12)?;
        if refund_attempts < 1 {
            return Err(ConfigError::new(
                "REFUND_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            stripe: stripe_client::StripeSettings::from_env()?,
            reconcile_after: Duration::from_secs(
                env::parsed_or("PAYMENT_RECONCILE_SECS", 120u64)?.max(1),
            ),
            refund_attempts,
            refund_retry: DeliveryPolicy {
                retry_base: env::millis_or("REFUND_RETRY_BASE_MS", Duration::from_secs(10))?,
                retry_cap: Duration::from_secs(3600),
                lease: env::millis_or("REFUND_LEASE_MS", Duration::from_secs(60))?,
                ..DeliveryPolicy::default()
            },
        })
    }
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(15 * 60),
            lease: Duration::from_secs(120),
            sweep_interval: Duration::from_secs(5),
            redeliver_after: Duration::from_secs(60),
        }
    }
}

impl DeliveryPolicy {
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let max_attempts = env::parsed_or("NOTIFY_MAX_ATTEMPTS", d.max_attempts)?;
        if max_attempts < 1 {
            return Err(ConfigError::new(
                "NOTIFY_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            max_attempts,
            retry_base: env::millis_or("NOTIFY_RETRY_BASE_MS", d.retry_base)?,
            retry_cap: d.retry_cap,
            lease: env::millis_or("NOTIFY_LEASE_MS", d.lease)?,
            sweep_interval: env::millis_or("NOTIFY_SWEEP_INTERVAL_MS", d.sweep_interval)?,
            redeliver_after: env::millis_or("NOTIFY_REDELIVER_AFTER_MS", d.redeliver_after)?,
        })
    }

    /// Backoff before attempt `attempts + 1`, after `attempts` failures.
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
        self.retry_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.retry_cap)
    }
}

impl MailSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let from =
            env::optional("MAIL_FROM").unwrap_or_else(|| "Tickets <no-reply@localhost>".into());
        let from = from
            .parse()
            .map_err(|e| ConfigError::new("MAIL_FROM", format!("not a mailbox ({e})")))?;
        let smtp_url = env::optional("SMTP_URL");
        if let Some(url) = &smtp_url {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
                .map_err(|e| ConfigError::new("SMTP_URL", e.to_string()))?;
        }
        Ok(Self {
            smtp_url,
            dir: env::optional("MAIL_DIR")
                .unwrap_or_else(|| "mail".into())
                .into(),
            from,
            send_timeout: Duration::from_secs(
                env::parsed_or("SMTP_SEND_TIMEOUT_SECS", 30u64)?.max(1),
            ),
        })
    }
}

impl WorkerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let concurrency = env::parsed_or("WORKER_CONCURRENCY", 64usize)?;
        if concurrency == 0 {
            return Err(ConfigError::new("WORKER_CONCURRENCY", "must be at least 1"));
        }
        let nice = env::parsed_or("WORKER_NICE", 10i32)?;
        if !(0..=19).contains(&nice) {
            return Err(ConfigError::new("WORKER_NICE", "must be from 0 to 19"));
        }
        Ok(Self {
            concurrency,
            nice,
            mail: MailSettings::from_env()?,
            delivery: DeliveryPolicy::from_env()?,
            payments: PaymentPolicy::from_env()?,
            webhooks: crate::webhooks::WebhookPolicy::from_env()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_smtp_password_reaches_debug_output() {
        let mail = MailSettings {
            smtp_url: Some("smtps://mailer:smtp-s3cret@mail:465".into()),
            dir: "mail".into(),
            from: "Tickets <no-reply@localhost>".parse().unwrap(),
            send_timeout: Duration::from_secs(30),
        };
        let printed = format!("{mail:?} {mail:#?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("mailer:***@mail"), "{printed}");
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let policy = DeliveryPolicy {
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(60),
            ..DeliveryPolicy::default()
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.retry_delay(i32::MAX), Duration::from_secs(60));
    }
}
