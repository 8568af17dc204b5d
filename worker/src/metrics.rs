//! The worker's own metrics, in the shared registry (see `platform::metrics`).

use std::sync::LazyLock;

use platform::metrics::register;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};

pub static JOBS_PROCESSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "worker_jobs_processed_total",
                "Delivery jobs handled, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric"),
    )
});

pub static WEBHOOK_DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric"),
    )
});

pub static WEBHOOK_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register(
        Histogram::with_opts(
            HistogramOpts::new(
                "webhook_delivery_duration_seconds",
                "Time from sending a webhook to its endpoint's answer",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric"),
    )
});

pub static SEND_TIMEOUTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "mail_send_timeouts_total",
            "Email sends given up on at their deadline (a mail server that stopped answering)",
        )
        .expect("valid metric"),
    )
});

pub static SEND_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register(
        Histogram::with_opts(
            HistogramOpts::new(
                "worker_email_send_duration_seconds",
                "Time to hand one email to the mail server",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric"),
    )
});

pub static HOLDS_EXPIRED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "worker_holds_expired_total",
                "Holds whose tickets went back on sale at expiry, by what found them: \
                 their timer job, or the sweep (a lost or late timer)",
            ),
            &["by"],
        )
        .expect("valid metric"),
    )
});
