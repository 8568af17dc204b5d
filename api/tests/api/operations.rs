use futures::FutureExt;
use rocket::{http::Status, local::asynchronous::Client};
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/health", None).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = app.get("/ready", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["database"].as_str(), body["queue"].as_str()),
        (Some("ok"), Some("ok"))
    );
}

#[tokio::test]
async fn unknown_routes_get_json_errors() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/api/v1/nope", "/api/v2/events"] {
        let (status, body) = app.get(path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .delete(app.url("/api/v1/events/123"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, PATCH");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let response = app
        .http
        .put(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(
        app.http
            .delete(app.url("/api/v1/unknown"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// The same app through Rocket's in-process client: the builder is what `main`
/// launches, catchers included.
#[tokio::test]
async fn the_rocket_builder_serves_json_errors_in_process() {
    let app = TestApp::spawn().await;
    let built = api::startup::build(&app.settings).await.unwrap();
    let client = Client::tracked(api::rocket(
        rocket::Config::figment().merge(("log_level", "off")),
        built,
    ))
    .await
    .unwrap();
    let response = client.get("/api/v1/events/nope").dispatch().await;
    assert_eq!(response.status(), Status::NotFound);
    let body: Value = response.into_json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let response = client
        .post("/api/v1/auth/login")
        .body("{not json")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    let body: Value = response.into_json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );

    let response = client.get("/health").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
}

/// Several api processes starting at once on an empty database all come up, and
/// the schema is migrated exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_startups_migrate_once() {
    let app = TestApp::spawn().await;
    // A second, empty database on the same server (or file directory).
    let mut settings = app.settings.clone();
    let empty = if crate::helpers::production_mode() {
        use sea_orm::ConnectionTrait;
        let name = format!("booking_test_{}", uuid::Uuid::now_v7().simple());
        app.db
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = url::Url::parse(&settings.storage.database_url).unwrap();
        url.set_path(&name);
        settings.storage.database_url = url.to_string();
        Some(name)
    } else {
        let dir = std::path::Path::new(
            settings
                .storage
                .database_url
                .trim_start_matches("sqlite://"),
        )
        .parent()
        .unwrap()
        .to_owned();
        settings.storage.database_url =
            format!("sqlite://{}?mode=rwc", dir.join("second.db").display());
        None
    };
    let starts = (0..4).map(|_| {
        let settings = settings.clone();
        tokio::spawn(async move {
            api::startup::build(&settings)
                .await
                .map(|app| app.services.db)
        })
    });
    let mut connections = Vec::new();
    for start in futures::future::join_all(starts).await {
        connections.push(start.unwrap().expect("every instance starts"));
    }
    use sea_orm::{ConnectionTrait, Statement};
    let applied = connections[0]
        .query_one_raw(Statement::from_string(
            connections[0].get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    use migration::MigratorTrait;
    assert_eq!(
        applied as usize,
        migration::Migrator::migrations().len(),
        "each applied once"
    );
    for db in connections {
        db.close().await.ok();
    }
    if let Some(name) = empty {
        use sea_orm::ConnectionTrait;
        app.db
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

/// A bad setting stops the binary at once with one line naming the variable.
#[test]
fn misconfiguration_stops_the_api_with_one_line() {
    let cases = [
        (vec![("AUTH_SECRET", "short")], "AUTH_SECRET"),
        (
            vec![("DATABASE_URL", "postgres://localhost/x")],
            "REDIS_URL",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://localhost/x"),
                ("REDIS_URL", "redis://localhost"),
            ],
            "AUTH_SECRET",
        ),
        // The compose file's old default, published: never a key.
        (
            vec![
                ("DATABASE_URL", "postgres://localhost/x"),
                ("REDIS_URL", "redis://localhost"),
                ("AUTH_SECRET", "local-compose-secret-change-me-0123456789"),
            ],
            "AUTH_SECRET",
        ),
        (vec![("LIVE_STREAMS_MAX", "0")], "LIVE_STREAMS_MAX"),
        (
            vec![("SMTP_SEND_TIMEOUT_SECS", "soon")],
            "SMTP_SEND_TIMEOUT_SECS",
        ),
        (vec![("AUTH_TOKEN_TTL_SECS", "soon")], "AUTH_TOKEN_TTL_SECS"),
        (vec![("SMTP_URL", "carrier-pigeon://coop")], "SMTP_URL"),
        (vec![("MAIL_FROM", "not an address")], "MAIL_FROM"),
        (vec![("WORKER_CONCURRENCY", "0")], "WORKER_CONCURRENCY"),
        (vec![("RATE_LIMITS", "sometimes")], "RATE_LIMITS"),
        (
            vec![("DATABASE_URL", "mysql://localhost/x")],
            "DATABASE_URL",
        ),
        (
            vec![("RATE_LIMIT_AUTH_PER_IP", "lots")],
            "RATE_LIMIT_AUTH_PER_IP",
        ),
        (vec![("IDEMPOTENCY_TTL_SECS", "60")], "IDEMPOTENCY_TTL_SECS"),
    ];
    for (vars, named) in cases {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_api"));
        for var in [
            "DATABASE_URL",
            "REDIS_URL",
            "AUTH_SECRET",
            "SMTP_URL",
            "MAIL_FROM",
            "RUST_BACKTRACE",
        ] {
            command.env_remove(var);
        }
        let output = command
            .envs(vars.clone())
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{vars:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {named}:")),
            "{vars:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_the_business() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 1).await;
    let id = event["id"].as_str().unwrap();
    assert_eq!(app.book(&customer, id, 1).await.0, 201);
    assert_eq!(app.book(&customer, id, 1).await.0, 409);
    app.smtp.wait_for(1).await;
    app.settle_notifications().await;

    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    // Counters are process-wide and tests run in parallel: at least ours.
    assert!(
        value(
            r#"http_requests_total{method="POST",route="/api/v1/events/<id>/bookings",status="201"}"#
        ) >= 1.0
    );
    assert!(
        value(
            r#"http_requests_total{method="POST",route="/api/v1/events/<id>/bookings",status="409"}"#
        ) >= 1.0
    );
    assert!(
        value(
            r#"http_request_duration_seconds_count{method="POST",route="/api/v1/events",status="201"}"#
        ) >= 1.0
    );
    assert!(value("bookings_confirmed_total") >= 1.0);
    assert!(value("bookings_sold_out_total") >= 1.0);
    assert!(value("jobs_enqueued_total") >= 1.0);
    // Outbox gauges come from this test's own database.
    assert_eq!(value(r#"notifications{status="sent"}"#), 1.0);
    assert_eq!(value(r#"notifications{status="pending"}"#), 0.0);
    assert_eq!(value(r#"notifications{status="failed"}"#), 0.0);
}

#[tokio::test]
async fn the_request_id_is_echoed_and_follows_the_booking_to_its_email() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 5).await;
    let response = app
        .http
        .post(app.url(&format!(
            "/api/v1/events/{}/bookings",
            event["id"].as_str().unwrap()
        )))
        .bearer_auth(&customer.token)
        .header("X-Request-Id", "trace-me-42")
        .json(&serde_json::json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let notification = &app.notifications().await[0];
    assert_eq!(notification.request_id.as_deref(), Some("trace-me-42"));

    // Unusable ids are replaced, and every response carries one.
    let response = app
        .http
        .get(app.url("/health"))
        .header("X-Request-Id", "has spaces in it")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let response = app.http.get(app.url("/nope")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn the_worker_serves_its_own_metrics_and_health() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mail = std::sync::Arc::new(platform::health::MailHealth::default());
    let server = tokio::spawn(platform::metrics::serve(listener, stopped, mail.clone()));
    worker::metrics::JOBS_PROCESSED
        .with_label_values(&["sent"])
        .inc_by(0);

    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("http://{addr}{path}"))
            .send()
            .map(Result::unwrap)
    };
    let metrics = get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("worker_jobs_processed_total")
    );
    let health = get("/health").await;
    assert_eq!(health.status(), 200);
    // Sends that run into their deadline one after another: not healthy.
    for _ in 0..platform::health::STUCK_AFTER {
        mail.timed_out();
    }
    let health = get("/health").await;
    assert_eq!(health.status(), 503);
    assert!(health.text().await.unwrap().contains("timed out"));
    mail.sent();
    // A client that connects and says nothing does not keep the server waiting.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let health = get("/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(get("/other").await.status(), 404);
    assert!(
        tokio::task::spawn_blocking(move || platform::health::probe(addr, "/health"))
            .await
            .unwrap()
    );

    stop.send(true).unwrap();
    server.await.unwrap();
    assert!(
        !tokio::task::spawn_blocking(move || platform::health::probe(addr, "/health"))
            .await
            .unwrap()
    );
}

/// The document and the router cannot drift apart: every mounted route is
/// documented with its method, and every documented operation is mounted.
#[tokio::test]
async fn the_api_document_lists_every_mounted_route() {
    let app = TestApp::spawn().await;
    let (status, document) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    let built = api::startup::build(&app.settings).await.unwrap();
    let rocket = api::rocket(rocket::Config::figment(), built);

    let mut mounted = std::collections::BTreeSet::new();
    for route in rocket.routes() {
        let path = route.uri.path().to_string();
        if path == "/openapi.json" || path.starts_with("/docs") {
            continue; // the document's own routes
        }
        let path = path.replace('<', "{").replace('>', "}");
        mounted.insert((route.method.as_str().to_lowercase(), path));
    }
    let mut documented = std::collections::BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no responses"
            );
            if operation.get("security").is_some() {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} needs a token but lists no 401"
                );
            }
        }
    }
    assert_eq!(mounted, documented);
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    // The error codes are one enum, and the document lists it.
    let codes: std::collections::BTreeSet<&str> =
        document["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("ErrorCode is an enum in the document")
            .iter()
            .filter_map(|code| code.as_str())
            .collect();
    for code in [
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "conflict",
        "email_taken",
        "sold_out",
        "event_cancelled",
        "idempotency_conflict",
        "payload_too_large",
        "validation_failed",
        "rate_limited",
        "internal",
        "unavailable",
    ] {
        assert!(codes.contains(code), "{code} missing from {codes:?}");
    }
}

#[tokio::test]
async fn the_docs_ui_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));
    let script = app
        .http
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let initializer = app
        .http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
}
