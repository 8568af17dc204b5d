//! Business metrics and the `/metrics` endpoint.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use entity::prelude::*;
use platform::metrics::register;
use prometheus::{IntCounter, IntGaugeVec, Opts};
use rocket::{
    Request, State, get,
    http::ContentType,
    request::{FromRequest, Outcome},
};
use sea_orm::{
    ActiveEnum, DatabaseConnection, EntityTrait, Iterable, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::{domain::Services, http::ApiError};

fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("valid metric"))
}

pub static BOOKINGS_CONFIRMED: LazyLock<IntCounter> =
    LazyLock::new(|| counter("bookings_confirmed_total", "Bookings made"));
pub static BOOKINGS_SOLD_OUT: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "bookings_sold_out_total",
        "Booking requests refused as sold out",
    )
});
pub static BOOKINGS_CANCELLED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "bookings_cancelled_total",
        "Bookings cancelled by their customer",
    )
});

/// The domain's observer: business events become these counters.
pub struct BusinessMetrics;

impl crate::domain::Observer for BusinessMetrics {
    fn booked(&self) {
        BOOKINGS_CONFIRMED.inc();
    }

    fn refused_sold_out(&self) {
        BOOKINGS_SOLD_OUT.inc();
    }

    fn booking_cancelled(&self) {
        BOOKINGS_CANCELLED.inc();
    }

    fn payment(&self, provider: &'static str, outcome: &'static str) {
        platform::metrics::PAYMENTS
            .with_label_values(&[provider, outcome])
            .inc();
    }
}

/// Read from the database at scrape time, so every api process reports the same
/// system-wide numbers whichever worker did the sending.
static NOTIFICATIONS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "notifications",
                "Outbox rows by status (pending and sending are the outbox depth)",
            ),
            &["status"],
        )
        .expect("valid metric"),
    )
});

/// How long outbox counts read for `/metrics` are reused: however often it is
/// scraped (it needs no token unless `METRICS_TOKEN` is set), the outbox is
/// counted at most once per this.
const OUTBOX_COUNTS_FOR: Duration = Duration::from_secs(5);

/// Outbox rows by status.
type Counts = Vec<(NotificationStatus, i64)>;

/// This api's last reading of the outbox counts (one scrape reads at a time).
#[derive(Default)]
pub struct OutboxCounts(Mutex<Option<(Instant, Counts)>>);

/// `METRICS_TOKEN`: when set, `/metrics` wants it as a bearer token.
pub struct MetricsToken(pub Option<String>);

/// Proof that the caller may read `/metrics`.
pub struct MetricsAccess;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for MetricsAccess {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let expected = request
            .rocket()
            .state::<MetricsToken>()
            .and_then(|token| token.0.as_deref());
        let Some(expected) = expected else {
            return Outcome::Success(MetricsAccess);
        };
        let given = request
            .headers()
            .get_one("Authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Compared as digests: equal lengths, and no early exit on the secret.
        if Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes()) {
            Outcome::Success(MetricsAccess)
        } else {
            let error =
                ApiError::unauthorized("/metrics needs the METRICS_TOKEN as a bearer token");
            Outcome::Error((error.stash(request), ()))
        }
    }
}

pub async fn outbox_counts(
    db: &DatabaseConnection,
    cache: &OutboxCounts,
) -> Result<Counts, sea_orm::DbErr> {
    let mut last = cache.0.lock().await;
    if let Some((at, counts)) = last.as_ref()
        && at.elapsed() < OUTBOX_COUNTS_FOR
    {
        return Ok(counts.clone());
    }
    let counts: Counts = Notification::find()
        .select_only()
        .column(NotificationColumn::Status)
        .column_as(Expr::col(NotificationColumn::Id).count(), "count")
        .group_by(NotificationColumn::Status)
        .into_tuple()
        .all(db)
        .await?;
    *last = Some((Instant::now(), counts.clone()));
    Ok(counts)
}

async fn refresh_outbox_gauges(db: &DatabaseConnection, cache: &OutboxCounts) {
    match outbox_counts(db, cache).await {
        // Every status gets a series, 0 when no row has it.
        Ok(counts) => {
            for status in NotificationStatus::iter() {
                let count = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                NOTIFICATIONS
                    .with_label_values(&[status.to_value().as_str()])
                    .set(count);
            }
        }
        Err(error) => tracing::warn!(%error, "could not read outbox counts for /metrics"),
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "`METRICS_TOKEN` is set and was not given as a bearer token", body = crate::http::error::ErrorBody),
    ))]
#[get("/metrics")]
pub async fn metrics(
    _access: MetricsAccess,
    services: &State<Services>,
    cache: &State<OutboxCounts>,
) -> (ContentType, String) {
    refresh_outbox_gauges(&services.db, cache).await;
    // Touch the counters so they are exported (as 0) before the first event.
    for metric in [
        &*BOOKINGS_CONFIRMED,
        &*BOOKINGS_SOLD_OUT,
        &*BOOKINGS_CANCELLED,
        &*platform::metrics::JOBS_ENQUEUED,
    ] {
        metric.inc_by(0);
    }
    (
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        platform::metrics::render(),
    )
}
