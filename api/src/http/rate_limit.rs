//! Abuse limits: fixed windows counted in Redis (shared by every api process) or,
//! in embedded mode, in memory. Over a limit is a 429 `rate_limited` with
//! `Retry-After`. Should Redis fail, requests are let through (and logged):
//! an outage of the limiter must not lock every customer out.

use std::{
    collections::HashMap,
    net::IpAddr,
    str::FromStr,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use platform::env::{self, ConfigError};
use rocket::{
    Request,
    http::Header,
    request::{FromRequest, Outcome},
};

use super::{ApiError, error::ErrorCode};

/// `max` requests per `window`, written `MAX/SECONDS` (e.g. `10/60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl FromStr for Limit {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (max, secs) = raw
            .split_once('/')
            .ok_or_else(|| "expected MAX/SECONDS, e.g. 10/60".to_owned())?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| "MAX is not a whole number".to_owned())?;
        let secs: u64 = secs
            .trim()
            .parse()
            .map_err(|_| "SECONDS is not a whole number".to_owned())?;
        if max == 0 || secs == 0 {
            return Err("MAX and SECONDS must be greater than 0".into());
        }
        Ok(Self {
            max,
            window: Duration::from_secs(secs),
        })
    }
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub enabled: bool,
    /// Logins and registrations from one client address.
    pub auth_per_ip: Limit,
    /// Logins and registrations naming one email address.
    pub auth_per_account: Limit,
    /// Booking attempts by one customer.
    pub bookings_per_customer: Limit,
    /// Take the client address from `X-Forwarded-For` (behind a proxy you run).
    pub trust_forwarded_for: bool,
}

impl RateLimits {
    pub fn from_env() -> Result<Self, ConfigError> {
        let enabled = match env::optional("RATE_LIMITS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "RATE_LIMITS",
                    format!("{other:?} is neither on nor off"),
                ));
            }
        };
        Ok(Self {
            enabled,
            auth_per_ip: env::parsed_or(
                "RATE_LIMIT_AUTH_PER_IP",
                Limit {
                    max: 30,
                    window: Duration::from_secs(60),
                },
            )?,
            auth_per_account: env::parsed_or(
                "RATE_LIMIT_AUTH_PER_ACCOUNT",
                Limit {
                    max: 10,
                    window: Duration::from_secs(60),
                },
            )?,
            bookings_per_customer: env::parsed_or(
                "RATE_LIMIT_BOOKINGS_PER_CUSTOMER",
                Limit {
                    max: 60,
                    window: Duration::from_secs(60),
                },
            )?,
            trust_forwarded_for: env::parsed_or("TRUST_X_FORWARDED_FOR", false)?,
        })
    }

    pub fn off() -> Self {
        let limit = Limit {
            max: u32::MAX,
            window: Duration::from_secs(1),
        };
        Self {
            enabled: false,
            auth_per_ip: limit,
            auth_per_account: limit,
            bookings_per_customer: limit,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    AuthPerIp,
    AuthPerAccount,
    Bookings,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::AuthPerIp => "auth-ip",
            Bucket::AuthPerAccount => "auth-account",
            Bucket::Bookings => "bookings",
        }
    }
}

enum Store {
    Memory(Mutex<HashMap<String, (u64, u32)>>),
    Redis {
        conn: redis::aio::ConnectionManager,
        prefix: String,
    },
}

pub struct RateLimiter {
    limits: RateLimits,
    store: Store,
}

impl RateLimiter {
    /// Counters in Redis under `prefix` when there is a Redis, else in memory.
    pub fn new(
        limits: RateLimits,
        redis: Option<redis::aio::ConnectionManager>,
        prefix: &str,
    ) -> Self {
        let store = match redis {
            Some(conn) => Store::Redis {
                conn,
                prefix: format!("{prefix}:ratelimit"),
            },
            None => Store::Memory(Mutex::new(HashMap::new())),
        };
        Self { limits, store }
    }

    pub fn trusts_forwarded_for(&self) -> bool {
        self.limits.trust_forwarded_for
    }

    /// A login or registration: counted against the client's address and against
    /// the account, however its email is cased or padded.
    pub async fn check_auth(&self, client: &ClientIp, email: &str) -> Result<(), ApiError> {
        self.check(Bucket::AuthPerIp, &client.key()).await?;
        self.check(Bucket::AuthPerAccount, &email.trim().to_lowercase())
            .await
    }

    /// Counts one request of `subject` in `bucket`; over the limit is an error.
    pub async fn check(&self, bucket: Bucket, subject: &str) -> Result<(), ApiError> {
        if !self.limits.enabled {
            return Ok(());
        }
        let limit = match bucket {
            Bucket::AuthPerIp => self.limits.auth_per_ip,
            Bucket::AuthPerAccount => self.limits.auth_per_account,
            Bucket::Bookings => self.limits.bookings_per_customer,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let window_secs = limit.window.as_secs().max(1);
        let window = now / window_secs;
        let retry_after = (window + 1) * window_secs - now;
        let key = format!("{}:{subject}:{window}", bucket.name());
        let count = match &self.store {
            Store::Memory(counters) => {
                let Ok(mut counters) = counters.lock() else {
                    return Ok(());
                };
                if counters.len() > 100_000 {
                    counters.retain(|_, (w, _)| *w >= window);
                }
                let entry = counters.entry(key).or_insert((window, 0));
                entry.1 = entry.1.saturating_add(1);
                u64::from(entry.1)
            }
            Store::Redis { conn, prefix } => {
                let key = format!("{prefix}:{key}");
                let counted: Result<(u64, bool), _> = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .expire(&key, (window_secs + 1) as i64)
                    .query_async(&mut conn.clone())
                    .await;
                match counted {
                    Ok((count, _)) => count,
                    Err(error) => {
                        tracing::warn!(%error, "rate limiter unavailable; letting the request through");
                        return Ok(());
                    }
                }
            }
        };
        if count <= u64::from(limit.max) {
            return Ok(());
        }
        let mut error = ApiError::new(
            ErrorCode::RateLimited,
            format!("too many requests; try again in {retry_after} s"),
        );
        error
            .headers
            .push(Header::new("Retry-After", retry_after.to_string()));
        Err(error)
    }
}

/// The client's address: the peer's, or with `TRUST_X_FORWARDED_FOR` the last
/// address in `X-Forwarded-For` (the one your proxy appended; earlier entries are
/// whatever the client claimed).
pub struct ClientIp(pub Option<IpAddr>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let trusts = request
            .rocket()
            .state::<RateLimiter>()
            .is_some_and(RateLimiter::trusts_forwarded_for);
        let forwarded = trusts
            .then(|| request.headers().get("X-Forwarded-For").last())
            .flatten()
            .and_then(|list| list.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        Outcome::Success(ClientIp(
            forwarded.or_else(|| request.remote().map(|a| a.ip())),
        ))
    }
}

impl ClientIp {
    pub fn key(&self) -> String {
        self.0
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_max_per_seconds() {
        assert_eq!(
            "10/60".parse(),
            Ok(Limit {
                max: 10,
                window: Duration::from_secs(60)
            })
        );
        for bad in ["10", "0/60", "10/0", "ten/60", "10/-1"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_memory_store_counts_per_bucket_and_subject() {
        let limits = RateLimits {
            enabled: true,
            auth_per_ip: Limit {
                max: 2,
                window: Duration::from_secs(3600),
            },
            ..RateLimits::off()
        };
        let limiter = RateLimiter::new(limits, None, "test");
        assert!(limiter.check(Bucket::AuthPerIp, "1.2.3.4").await.is_ok());
        assert!(limiter.check(Bucket::AuthPerIp, "1.2.3.4").await.is_ok());
        let refused = limiter
            .check(Bucket::AuthPerIp, "1.2.3.4")
            .await
            .unwrap_err();
        assert_eq!(
            (refused.status, refused.code),
            (
                rocket::http::Status::TooManyRequests,
                ErrorCode::RateLimited
            )
        );
        assert!(refused.headers.iter().any(|h| h.name() == "Retry-After"));
        assert!(limiter.check(Bucket::AuthPerIp, "5.6.7.8").await.is_ok());
    }
}
