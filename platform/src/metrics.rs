//! Prometheus metrics. Everything registers in the process-wide default registry,
//! so in embedded mode the api's `/metrics` shows the worker's too; a standalone
//! worker serves them itself (see [`serve`]).

use std::sync::LazyLock;

use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, TextEncoder, core::Collector};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::watch,
};

/// Registers a metric once in the default registry. Metric definitions are
/// constants of this program, so a failure here is a bug, found by any test.
pub fn register<C: Collector + Clone + 'static>(collector: C) -> C {
    prometheus::register(Box::new(collector.clone())).expect("metric names are unique");
    collector
}

pub static JOBS_ENQUEUED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("jobs_enqueued_total", "Delivery jobs pushed to the queue")
            .expect("valid metric"),
    )
});

/// Payment events by provider (`stripe`, `manual`) and outcome (`started`,
/// `booked`, `refunded`, `failed`, `repeat`, `unknown`, `provider_error`),
/// from the api's webhook and the worker's reconciliation alike.
pub static PAYMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("payments_total", "Payment events by provider and outcome"),
            &["provider", "outcome"],
        )
        .expect("valid metric"),
    )
});

/// Refunds by outcome: `succeeded`, `retry_scheduled`, `failed`, `recorded`
/// (a manual payment's, paid back by the organizer).
pub static REFUNDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("refunds_total", "Refunds by outcome"),
            &["outcome"],
        )
        .expect("valid metric"),
    )
});

/// The default registry in Prometheus' text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    // Encoding well-formed metrics into a Vec cannot fail.
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}

/// How long the worker's endpoint waits on a client's request or its reading of
/// the answer.
const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// A minimal HTTP endpoint for the standalone worker: `GET /metrics` and
/// `GET /health` (503 while its email sends time out); anything else is 404. Stops when `stopped` turns true.
pub async fn serve(
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
    mail: std::sync::Arc<crate::health::MailHealth>,
) {
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let mail = mail.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            // A client that connects and sends nothing is not waited for.
            let Ok(Ok(read)) = tokio::time::timeout(READ_DEADLINE, stream.read(&mut request)).await
            else {
                return;
            };
            let first_line = String::from_utf8_lossy(&request[..read]);
            let path = first_line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => ("200 OK", render()),
                "/health" => match mail.report() {
                    (true, body) => ("200 OK", body),
                    (false, body) => ("503 Service Unavailable", body),
                },
                _ => ("404 Not Found", "{\"error\":{\"code\":\"not_found\",\"message\":\"no such resource\",\"details\":{}}}".to_owned()),
            };
            let content_type = if path == "/metrics" {
                "text/plain; version=0.0.4"
            } else {
                "application/json"
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ =
                tokio::time::timeout(READ_DEADLINE, stream.write_all(response.as_bytes())).await;
        });
    }
}
