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
    request::{FromRequest, Outcome},
};

use super::ApiError;

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

/// Live streams one api process takes at once (SPEC §11 asks for 10,000).
const DEFAULT_LIVE_STREAMS_TOTAL: u32 = 20_000;

fn positive(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    let value = env::parsed_or(name, default)?;
    if value == 0 {
        return Err(ConfigError::new(name, "must be at least 1"));
    }
    Ok(value)
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub enabled: bool,
    /// Logins and registrations from one client address.
    pub auth_per_ip: Limit,
    /// Failed logins (and registrations) naming one email address from one
    /// client address: a guesser is stopped without locking the owner out
    /// from elsewhere.
    pub auth_per_account: Limit,
    /// Failed logins naming one email address, from anywhere: the looser
    /// ceiling against guessing from many addresses.
    pub auth_per_account_total: Limit,
    /// Booking attempts by one customer.
    pub bookings_per_customer: Limit,
    /// Event creations and changes by one organizer (each change may email
    /// every customer of the event).
    pub organizer_writes: Limit,
    /// Live streams open at once from one client address.
    pub live_streams_per_client: u32,
    /// Live streams open at once in one api process, whatever `enabled` says.
    pub live_streams_total: u32,
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
            auth_per_account_total: env::parsed_or(
                "RATE_LIMIT_AUTH_PER_ACCOUNT_TOTAL",
                Limit {
                    max: 100,
                    window: Duration::from_secs(60),
                },
            )?,
            organizer_writes: env::parsed_or(
                "RATE_LIMIT_ORGANIZER_WRITES",
                Limit {
                    max: 60,
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
            live_streams_per_client: positive("LIVE_STREAMS_PER_CLIENT", 100)?,
            live_streams_total: positive("LIVE_STREAMS_MAX", DEFAULT_LIVE_STREAMS_TOTAL)?,
            trust_forwarded_for: env::parsed_or("TRUST_X_FORWARDED_FOR", false)?,
        })
    }

    /// The live-stream bounds: the total always, the per-client one while
    /// limits are on.
    pub fn streams(&self) -> crate::live::StreamLimits {
        crate::live::StreamLimits {
            total: self.live_streams_total,
            per_client: self.enabled.then_some(self.live_streams_per_client),
        }
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
            auth_per_account_total: limit,
            bookings_per_customer: limit,
            organizer_writes: limit,
            live_streams_per_client: u32::MAX,
            live_streams_total: DEFAULT_LIVE_STREAMS_TOTAL,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    AuthPerIp,
    /// An (account, client address) pair.
    AuthPerAccount,
    AuthPerAccountTotal,
    Bookings,
    OrganizerWrites,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::AuthPerIp => "auth-ip",
            Bucket::AuthPerAccount => "auth-account-client",
            Bucket::AuthPerAccountTotal => "auth-account",
            Bucket::Bookings => "bookings",
            Bucket::OrganizerWrites => "organizer-writes",
        }
    }
}

/// Counters kept in memory at most; past it, those of earlier windows go, and
/// if that is not enough, all (the limiter lets requests through rather than
/// grow without bound).
const MEMORY_COUNTERS: usize = 100_000;

enum Store {
    /// Keyed by a hash of bucket, subject and window: a fixed size whatever a
    /// client sends.
    Memory(Mutex<HashMap<[u8; 16], (u64, u32)>>),
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

    /// A registration: counted against the client's address and against the
    /// account from that address, however its email is cased or padded.
    pub async fn check_registration(&self, client: &ClientIp, email: &str) -> Result<(), ApiError> {
        self.check(Bucket::AuthPerIp, &client.key()).await?;
        self.check(Bucket::AuthPerAccount, &pair(client, email))
            .await
    }

    /// A login: counted against the client's address; refused while the
    /// account has had too many failures from this address, or from anywhere.
    pub async fn check_login(&self, client: &ClientIp, email: &str) -> Result<(), ApiError> {
        self.check(Bucket::AuthPerIp, &client.key()).await?;
        self.count(Bucket::AuthPerAccount, &pair(client, email), 0)
            .await?;
        self.count(Bucket::AuthPerAccountTotal, &account(email), 0)
            .await
    }

    /// A failed login, counted against the account from this address and
    /// from anywhere.
    pub async fn login_failed(&self, client: &ClientIp, email: &str) {
        let _ = self
            .check(Bucket::AuthPerAccount, &pair(client, email))
            .await;
        let _ = self
            .check(Bucket::AuthPerAccountTotal, &account(email))
            .await;
    }

    /// An event created, changed or cancelled by this organizer.
    pub async fn check_organizer_write(&self, organizer_id: uuid::Uuid) -> Result<(), ApiError> {
        self.check(Bucket::OrganizerWrites, &organizer_id.to_string())
            .await
    }

    /// Counts one request of `subject` in `bucket`; over the limit is an error.
    pub async fn check(&self, bucket: Bucket, subject: &str) -> Result<(), ApiError> {
        self.count(bucket, subject, 1).await
    }

    /// Adds `add` (0: only looks) to the count of `subject` in `bucket`; a
    /// count over the limit (for a look: at it) is an error.
    async fn count(&self, bucket: Bucket, subject: &str, add: u32) -> Result<(), ApiError> {
        if !self.limits.enabled {
            return Ok(());
        }
        let limit = match bucket {
            Bucket::AuthPerIp => self.limits.auth_per_ip,
            Bucket::AuthPerAccount => self.limits.auth_per_account,
            Bucket::AuthPerAccountTotal => self.limits.auth_per_account_total,
            Bucket::Bookings => self.limits.bookings_per_customer,
            Bucket::OrganizerWrites => self.limits.organizer_writes,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let window_secs = limit.window.as_secs().max(1);
        let window = now / window_secs;
        let retry_after = (window + 1) * window_secs - now;
        let key = hashed(&format!("{}:{subject}:{window}", bucket.name()));
        let count = match &self.store {
            Store::Memory(counters) => {
                let Ok(mut counters) = counters.lock() else {
                    return Ok(());
                };
                if counters.len() >= MEMORY_COUNTERS {
                    counters.retain(|_, (w, _)| *w >= window);
                    if counters.len() >= MEMORY_COUNTERS {
                        counters.clear();
                    }
                }
                let entry = counters.entry(key).or_insert((window, 0));
                entry.1 = entry.1.saturating_add(add);
                u64::from(entry.1)
            }
            Store::Redis { conn, prefix } => {
                let key = format!("{prefix}:{}", hex(&key));
                let counted: Result<(u64, bool), _> = redis::pipe()
                    .atomic()
                    .incr(&key, add)
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
        let allowed = if add == 0 {
            count < u64::from(limit.max)
        } else {
            count <= u64::from(limit.max)
        };
        if allowed {
            return Ok(());
        }
        Err(ApiError::rate_limited(
            format!("too many requests; try again in {retry_after} s"),
            retry_after,
        ))
    }
}

/// An account as the limiter counts it: its email however cased or padded.
fn account(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An account tried from one client.
fn pair(client: &ClientIp, email: &str) -> String {
    format!("{}|{}", account(email), client.key())
}

/// 16 bytes of SHA-256: counters keyed by what clients send stay small.
fn hashed(key: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        Outcome::Success(ClientIp::of(
            trusts,
            request.headers().get("X-Forwarded-For").last(),
            request.remote().map(|a| a.ip()),
        ))
    }
}

impl ClientIp {
    /// The peer's address, or when `trusts_forwarded_for`, the last address
    /// in the (last) `X-Forwarded-For` header: the one our proxy added.
    pub fn of(
        trusts_forwarded_for: bool,
        forwarded_for: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Self {
        let forwarded = forwarded_for
            .filter(|_| trusts_forwarded_for)
            .and_then(|list| list.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        Self(forwarded.or(peer))
    }

    /// Who the client is, for counting: its address, or for IPv6 its /64 (one
    /// machine commonly has a whole /64 to pick addresses from).
    pub fn key(&self) -> String {
        match self.0.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(ip)) => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(ip) => ip.to_string(),
            None => "unknown".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error::ErrorCode;

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
