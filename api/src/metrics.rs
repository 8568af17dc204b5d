//! Business metrics and the `/metrics` endpoint.

use std::sync::LazyLock;

use entity::prelude::*;
use platform::metrics::register;
use prometheus::{IntCounter, IntGaugeVec, Opts};
use rocket::{State, get, http::ContentType};
use sea_orm::{
    ActiveEnum, DatabaseConnection, EntityTrait, Iterable, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use crate::domain::Services;

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

async fn refresh_outbox_gauges(db: &DatabaseConnection) {
    let counts: Result<Vec<(NotificationStatus, i64)>, _> = Notification::find()
        .select_only()
        .column(NotificationColumn::Status)
        .column_as(Expr::col(NotificationColumn::Id).count(), "count")
        .group_by(NotificationColumn::Status)
        .into_tuple()
        .all(db)
        .await;
    match counts {
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
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(services: &State<Services>) -> (ContentType, String) {
    refresh_outbox_gauges(&services.db).await;
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
