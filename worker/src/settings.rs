use std::{path::PathBuf, time::Duration};

use lettre::message::Mailbox;

use crate::{
    env::{self, ConfigError},
    jobs::NOTIFICATIONS_QUEUE,
};

/// A connection URL as it may be logged: any password replaced. Every settings
/// type that holds a URL prints it through this.
pub struct Redacted<'a>(pub &'a str);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                write!(f, "{:?}", url.as_str())
            }
            Err(_) => f.write_str("\"<unparsable url>\""),
        }
    }
}

/// Where jobs travel between the api and the workers.
#[derive(Clone)]
pub enum QueueBackend {
    /// `REDIS_URL` set: any number of api and worker processes share it.
    Redis { url: String },
    /// Embedded mode: jobs live in the SQLite database itself (apalis-sqlite) and the
    /// api runs the worker in-process.
    Sqlite,
}

impl std::fmt::Debug for QueueBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueBackend::Redis { url } => f
                .debug_struct("Redis")
                .field("url", &Redacted(url))
                .finish(),
            QueueBackend::Sqlite => f.write_str("Sqlite"),
        }
    }
}

#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port`, `smtps://…` or `smtp://…?tls=required`; `None` writes
    /// `.eml` files into `dir` instead.
    pub smtp_url: Option<String>,
    pub dir: PathBuf,
    pub from: Mailbox,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_deref().map(Redacted))
            .field("dir", &self.dir)
            .field("from", &self.from)
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

#[derive(Clone)]
pub struct WorkerSettings {
    pub database_url: String,
    pub queue: QueueBackend,
    /// Redis key prefix / apalis queue name. Tests give every test its own.
    pub queue_name: String,
    pub concurrency: usize,
    pub mail: MailSettings,
    pub delivery: DeliveryPolicy,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("database_url", &Redacted(&self.database_url))
            .field("queue", &self.queue)
            .field("queue_name", &self.queue_name)
            .field("concurrency", &self.concurrency)
            .field("mail", &self.mail)
            .field("delivery", &self.delivery)
            .finish()
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://booking.db?mode=rwc";

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
        })
    }
}

impl WorkerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url =
            env::optional("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !crate::db::is_sqlite(&database_url) && !crate::db::is_postgres(&database_url) {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must be a sqlite:// or postgres:// URL",
            ));
        }
        let queue = match env::optional("REDIS_URL") {
            Some(url) => {
                redis::Client::open(url.as_str())
                    .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?;
                QueueBackend::Redis { url }
            }
            None if crate::db::is_sqlite(&database_url) => QueueBackend::Sqlite,
            None => {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "required when DATABASE_URL is not SQLite (the embedded queue lives in SQLite)",
                ));
            }
        };
        let concurrency = env::parsed_or("WORKER_CONCURRENCY", 16usize)?;
        if concurrency == 0 {
            return Err(ConfigError::new("WORKER_CONCURRENCY", "must be at least 1"));
        }
        Ok(Self {
            database_url,
            queue,
            queue_name: NOTIFICATIONS_QUEUE.to_owned(),
            concurrency,
            mail: MailSettings::from_env()?,
            delivery: DeliveryPolicy::from_env()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_reaches_debug_output() {
        let settings = WorkerSettings {
            database_url: "postgres://booking:db-s3cret@db:5432/booking".into(),
            queue: QueueBackend::Redis {
                url: "redis://:redis-s3cret@redis:6379".into(),
            },
            queue_name: NOTIFICATIONS_QUEUE.into(),
            concurrency: 1,
            mail: MailSettings {
                smtp_url: Some("smtps://mailer:smtp-s3cret@mail:465".into()),
                dir: "mail".into(),
                from: "Tickets <no-reply@localhost>".parse().unwrap(),
            },
            delivery: DeliveryPolicy::default(),
        };
        let printed = format!("{settings:?} {settings:#?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://booking:***@db:5432/booking"),
            "{printed}"
        );
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
