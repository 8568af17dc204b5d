//! Where data and jobs live, from the environment: what every process needs.

use crate::{
    db,
    env::{self, ConfigError},
    jobs::QUEUE_NAMESPACE,
};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://booking.db?mode=rwc";

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

/// The database and the queue.
#[derive(Clone)]
pub struct StorageSettings {
    pub database_url: String,
    pub queue: QueueBackend,
    /// Redis key prefix / apalis queue name. Tests give every test its own.
    pub queue_namespace: String,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("database_url", &Redacted(&self.database_url))
            .field("queue", &self.queue)
            .field("queue_namespace", &self.queue_namespace)
            .finish()
    }
}

impl StorageSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url =
            env::optional("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !db::is_sqlite(&database_url) && !db::is_postgres(&database_url) {
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
            None if db::is_sqlite(&database_url) => QueueBackend::Sqlite,
            None => {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "required when DATABASE_URL is not SQLite (the embedded queue lives in SQLite)",
                ));
            }
        };
        // Several deployments (or test runs) can share one Redis under their own
        // namespaces.
        let queue_namespace =
            env::optional("QUEUE_NAMESPACE").unwrap_or_else(|| QUEUE_NAMESPACE.to_owned());
        if queue_namespace.is_empty() || !queue_namespace.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "QUEUE_NAMESPACE",
                "must be visible ASCII characters without spaces",
            ));
        }
        Ok(Self {
            database_url,
            queue,
            queue_namespace,
        })
    }

    /// Embedded mode: SQLite holds the data and the jobs; the api runs the worker.
    pub fn embedded(&self) -> bool {
        matches!(self.queue, QueueBackend::Sqlite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_reaches_debug_output() {
        let settings = StorageSettings {
            database_url: "postgres://booking:db-s3cret@db:5432/booking".into(),
            queue: QueueBackend::Redis {
                url: "redis://:redis-s3cret@redis:6379".into(),
            },
            queue_namespace: QUEUE_NAMESPACE.into(),
        };
        let printed = format!("{settings:?} {settings:#?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://booking:***@db:5432/booking"),
            "{printed}"
        );
    }
}
