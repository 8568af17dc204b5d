//! Per-request telemetry: a request id (taken from `X-Request-Id` or made up),
//! returned in the response, one log line per request, and the HTTP metrics.

use std::{sync::LazyLock, time::Instant};

use platform::metrics::register;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use rocket::{
    Data, Request, Response,
    fairing::{Fairing, Info, Kind},
    http::Header,
    request::{FromRequest, Outcome},
};
use uuid::Uuid;

pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// The id that ties a request to its log line and to the emails it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// A client's id is kept if it is short, visible ASCII without spaces;
    /// anything else is replaced, so it can go into logs as it is.
    pub fn from_header(value: Option<&str>) -> Self {
        match value {
            Some(id)
                if (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Self(id.to_owned())
            }
            _ => Self(Uuid::now_v7().to_string()),
        }
    }
}

/// This request's id, for log lines written outside the request fairing.
pub fn request_id<'r>(request: &'r Request<'_>) -> &'r str {
    &timing(request).id.0
}

struct Timing {
    id: RequestId,
    started: Instant,
}

fn timing<'r>(request: &'r Request<'_>) -> &'r Timing {
    request.local_cache(|| Timing {
        id: RequestId::from_header(request.headers().get_one(REQUEST_ID_HEADER)),
        started: Instant::now(),
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RequestId {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(timing(request).id.clone())
    }
}

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route template and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric"),
    )
});

static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method, route template and status",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route", "status"],
        )
        .expect("valid metric"),
    )
});

pub struct Telemetry;

#[rocket::async_trait]
impl Fairing for Telemetry {
    fn info(&self) -> Info {
        Info {
            name: "request id, request log and HTTP metrics",
            kind: Kind::Liftoff | Kind::Request | Kind::Response,
        }
    }

    async fn on_liftoff(&self, rocket: &rocket::Rocket<rocket::Orbit>) {
        let config = rocket.config();
        tracing::info!(address = %config.address, port = config.port, "api listening");
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut Data<'_>) {
        timing(request);
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let Timing { id, started } = timing(request);
        let route = request
            .route()
            .map(|route| {
                route
                    .uri
                    .as_str()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_else(|| "unmatched".to_owned());
        response.set_header(Header::new(REQUEST_ID_HEADER, id.0.clone()));
        record(
            request.method().as_str(),
            &route,
            request.uri().path().as_str(),
            response.status().code,
            id,
            started.elapsed(),
        );
    }
}

/// One answered request: its log line and its metrics (`route` is the
/// template, not the path: `/api/v1/events/<id>` is one series, not one per
/// event).
pub fn record(
    method: &str,
    route: &str,
    path: &str,
    status: u16,
    id: &RequestId,
    elapsed: std::time::Duration,
) {
    let status_label = status.to_string();
    let labels = [method, route, status_label.as_str()];
    HTTP_REQUESTS.with_label_values(&labels).inc();
    HTTP_SECONDS
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "http",
        request_id = %id.0,
        method,
        route = %route,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
}
