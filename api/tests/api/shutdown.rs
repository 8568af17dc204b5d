//! The real `api` binary (embedded mode). SIGTERM: it stops accepting, finishes
//! what is in flight, including an email being sent, and exits 0. Its log: a
//! failed request can be found by its request id. And two api binaries beside
//! a test's app, as separate processes: batching and the shared rate limit.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::smtp::SmtpSink;

/// The real `api` binary, reaped when dropped.
pub struct ApiProcess {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

/// The token key of apps whose tokens [`ApiProcess::beside`] accepts.
pub const SHARED_SECRET: &str = "shared-secret-0123456789abcdef0123456789";

impl ApiProcess {
    async fn start(smtp: &SmtpSink) -> Self {
        Self::start_with(smtp, &[]).await
    }

    /// Another api process, as its own binary, on `app`'s database and queue
    /// (PostgreSQL and Redis in production mode), with `app`'s token key: the
    /// app must have been spawned with `auth.secret` = [`SHARED_SECRET`].
    pub async fn beside(app: &crate::helpers::TestApp, env: &[(&str, &str)]) -> Self {
        let storage = &app.settings.storage;
        let mut vars = vec![
            ("DATABASE_URL", storage.database_url.clone()),
            ("QUEUE_NAMESPACE", storage.queue_namespace.clone()),
            ("AUTH_SECRET", SHARED_SECRET.to_owned()),
        ];
        if crate::helpers::production_mode()
            && let Ok(redis) = std::env::var("REDIS_URL")
        {
            vars.push(("REDIS_URL", redis));
        }
        vars.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Self::start_with(&app.smtp, &vars).await
    }

    async fn start_with(smtp: &SmtpSink, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_api"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "DATABASE_URL",
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("booking.db").display()
                ),
            )
            .env("SMTP_URL", smtp.url())
            .env("ROCKET_PORT", port.to_string())
            .env("SHUTDOWN_GRACE_SECS", "3")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(dir.path().join("api.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned before anything can fail, so `Drop` always reaps it.
        let api = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        for _ in 0..200 {
            if reqwest::get(format!("{}/health", api.base))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return api;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("api did not come up");
    }

    /// Resident memory, in MiB.
    fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("api.log")).unwrap_or_default()
    }

    fn database_path(&self) -> std::path::PathBuf {
        self._dir.path().join("booking.db")
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    async fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        panic!("api did not exit within 20 s of SIGTERM");
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight_then_exits_zero() {
    let smtp = SmtpSink::start().await;
    // With the request log on, as by default.
    let mut api = ApiProcess::start_with(&smtp, &[("RUST_LOG", "info")]).await;
    // Requests provably in flight at the signal: their bodies are half sent.
    let mut rest_of_bodies = Vec::new();
    let mut requests = Vec::new();
    for i in 0..3 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(1);
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let request = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/register", api.base))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(body));
        requests.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status().as_u16())
        }));
        tx.send(Ok(format!(r#"{{"email": "user{i}@example.com", "#)))
            .await
            .unwrap();
        rest_of_bodies.push(tx);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.terminate();
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for tx in rest_of_bodies {
        tx.send(Ok(
            r#""password": "correct horse", "name": "Someone", "role": "customer"}"#.to_owned(),
        ))
        .await
        .unwrap();
    }
    for request in requests {
        assert_eq!(
            request.await.unwrap().expect("in-flight request answered"),
            201
        );
    }
    assert_eq!(api.exit_code().await, Some(0));
    // Within grace (3 s) + mercy (2 s), with room for a loaded machine.
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "{:?}",
        signalled.elapsed()
    );
    // And it stopped accepting: nothing answers any more.
    assert!(reqwest::get(format!("{}/health", api.base)).await.is_err());
    // Every request's log line was written out before it exited.
    let log = api.log();
    let registered = log
        .lines()
        .filter(|l| {
            l.contains("\"route\":\"/api/v1/auth/register\"") && l.contains("\"status\":201")
        })
        .count();
    assert_eq!(registered, 3, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_the_embedded_worker_finish_sending() {
    let smtp = SmtpSink::start().await;
    let mut api = ApiProcess::start(&smtp).await;
    let http = reqwest::Client::new();
    let call = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = http.post(format!("{}{path}", api.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let mut tokens = Vec::new();
    for role in ["organizer", "customer"] {
        let email = format!("{role}@example.com");
        call(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": "correct horse", "name": role, "role": role}),
        )
        .await;
        let login = call(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": "correct horse"}),
        )
        .await;
        tokens.push(login["access_token"].as_str().unwrap().to_owned());
    }
    let event = call(
        "/api/v1/events",
        Some(&tokens[0]),
        json!({"title": "Last Gig", "venue": "Club", "starts_at": "2030-01-01T20:00:00Z", "ends_at": "2030-01-01T23:00:00Z", "total_tickets": 5}),
    )
    .await;

    smtp.slow_down(Duration::from_millis(1500));
    call(
        &format!("/api/v1/events/{}/bookings", event["id"].as_str().unwrap()),
        Some(&tokens[1]),
        json!({"quantity": 1}),
    )
    .await;
    smtp.wait_for_a_send_to_begin().await;
    assert!(smtp.messages().is_empty(), "still being sent");
    api.terminate();
    assert_eq!(api.exit_code().await, Some(0));
    let mails = smtp.messages();
    assert_eq!(
        mails.len(),
        1,
        "the email in flight was finished before exit"
    );
    assert_eq!(mails[0].subject(), "Booking confirmed: Last Gig");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_internal_error_is_logged_with_its_request_id_and_told_nothing() {
    let smtp = SmtpSink::start().await;
    let api = ApiProcess::start(&smtp).await;
    let http = reqwest::Client::new();
    let email = "someone@example.com";
    http.post(format!("{}/api/v1/auth/register", api.base))
        .json(&json!({"email": email, "password": "correct horse", "name": "Someone", "role": "customer"}))
        .send()
        .await
        .unwrap();
    let login: serde_json::Value = http
        .post(format!("{}/api/v1/auth/login", api.base))
        .json(&json!({"email": email, "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Sabotage behind the api's back: its next read of bookings fails.
    let db = sea_orm::Database::connect(format!("sqlite://{}", api.database_path().display()))
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&db, "ALTER TABLE bookings RENAME TO gone")
        .await
        .unwrap();

    let response = http
        .get(format!("{}/api/v1/bookings", api.base))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .header("X-Request-Id", "trace-me-500")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "internal server error", "{body}");

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = api.log();
        let line = log.lines().find(|line| {
            line.contains("\"request_id\":\"trace-me-500\"") && line.contains("\"ERROR\"")
        });
        if let Some(line) = line {
            assert!(line.contains("bookings"), "the cause is in the log: {line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no error line with the request id:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A login flood costs time, not memory: hashing runs one per core in reused
/// buffers, and a crowd beyond the queue is told to come back (503), never 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_keeps_memory_bounded_and_turns_the_excess_away() {
    let smtp = SmtpSink::start().await;
    let api = ApiProcess::start_with(&smtp, &[("RATE_LIMITS", "off")]).await;
    let http = reqwest::Client::new();
    let credentials = json!({"email": "flood@example.com", "password": "correct horse"});
    http.post(format!("{}/api/v1/auth/register", api.base))
        .json(&json!({"email": "flood@example.com", "password": "correct horse", "name": "Flood", "role": "customer"}))
        .send()
        .await
        .unwrap();
    let login = || {
        let request = http
            .post(format!("{}/api/v1/auth/login", api.base))
            .json(&credentials);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, body)
        }
    };

    // 1,000 logins, 32 at a time: all served.
    for _ in 0..1_000 / 32 + 1 {
        let answers = futures::future::join_all((0..32).map(|_| login())).await;
        assert!(
            answers.iter().all(|(status, ..)| *status == 200),
            "{answers:?}"
        );
    }
    let rss = api.rss_mib();
    eprintln!("api RSS after 1,000 logins: {rss} MiB");
    // Hashing memory is fixed at cores × 19 MiB; before the bound it was 1.4 GB.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(rss < 100 + cores * 19, "RSS after 1,000 logins: {rss} MiB");

    // Far more at once than cores plus queue: the excess is told to retry.
    let answers = futures::future::join_all((0..400).map(|_| login())).await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    assert!(
        answers
            .iter()
            .all(|(status, ..)| [200, 503].contains(status)),
        "{answers:?}"
    );
    assert!(!busy.is_empty(), "nobody was turned away");
    assert!(
        busy.iter()
            .all(|(_, retry_after, body)| *retry_after && body["error"]["code"] == "unavailable"),
        "{busy:?}"
    );
    assert!(
        api.rss_mib() < 100 + cores * 19 + 50,
        "RSS after the burst: {} MiB",
        api.rss_mib()
    );
}

/// 1,000 open live streams on one api process: memory stays within a stated
/// bound, a booking reaches every one of them within a second, and SIGTERM
/// ends them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_live_streams_stay_small_and_all_hear_a_change() {
    const STREAMS: usize = 1000;
    let smtp = SmtpSink::start().await;
    let mut api = ApiProcess::start_with(
        &smtp,
        &[
            ("AUTH_SECRET", "live-secret-0123456789abcdef0123456789"),
            // Every stream comes from this one address.
            ("LIVE_STREAMS_PER_CLIENT", "1000"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let register = |role: &'static str| {
        let (http, base) = (http.clone(), api.base.clone());
        async move {
            let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7().simple());
            http.post(format!("{base}/api/v1/auth/register"))
                .json(&json!({"email": email, "password": "correct horse", "name": "L", "role": role}))
                .send()
                .await
                .unwrap();
            let login: serde_json::Value = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": email, "password": "correct horse"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            login["access_token"].as_str().unwrap().to_owned()
        }
    };
    let organizer = register("organizer").await;
    let customer = register("customer").await;
    let event: serde_json::Value = http
        .post(format!("{}/api/v1/events", api.base))
        .bearer_auth(&organizer)
        .json(
            &json!({"title": "Live", "venue": "Hall", "starts_at": "2030-05-01T19:00:00Z",
                      "ends_at": "2030-05-01T23:00:00Z", "total_tickets": 100}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = event["id"].as_str().unwrap().to_owned();
    let before = api.rss_mib();

    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        streams.push(crate::live::Subscription::open(&api.base, &event_id).await);
    }
    for stream in &mut streams {
        stream
            .next(Duration::from_secs(5))
            .await
            .expect("a message on connect");
    }
    let with_streams = api.rss_mib();

    let started = Instant::now();
    let booked = http
        .post(format!("{}/api/v1/events/{event_id}/bookings", api.base))
        .bearer_auth(&customer)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status().as_u16(), 201);
    let heard = futures::future::join_all(streams.iter_mut().map(|stream| async {
        stream
            .until(Duration::from_secs(1), |m| m["available"] == 99)
            .await;
        started.elapsed()
    }))
    .await;
    let slowest = heard.iter().max().unwrap();
    eprintln!(
        "{STREAMS} live streams: RSS {before} MiB before, {with_streams} MiB with them open \
         ({:.1} KiB a stream); a booking reached all of them within {slowest:?}",
        (with_streams.saturating_sub(before) * 1024) as f64 / STREAMS as f64
    );
    // A stream costs a few KiB (the connection, one task, one snapshot);
    // through Rocket's own connection handling it took ~37 KiB (36 MiB here).
    assert!(
        with_streams.saturating_sub(before) < 25,
        "{STREAMS} streams took {} MiB",
        with_streams - before
    );

    // At SIGTERM every stream ends at once, and the process exits 0.
    api.terminate();
    let signalled = Instant::now();
    futures::future::join_all(streams.iter_mut().map(|stream| async {
        assert!(stream.next(Duration::from_secs(20)).await.is_none());
    }))
    .await;
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "streams ended {:?} after the signal",
        signalled.elapsed()
    );
    assert_eq!(api.exit_code().await, Some(0));
}

/// Three api processes (the test's own and two binaries) sell one event at
/// once: the batches of separate processes meet only in the database, and
/// exactly the tickets there are are sold. Each process gets 80 requests for
/// 200 tickets, so a full sale needs every process to sell at least 40,
/// however the scheduler orders them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_api_processes_sell_exactly_the_tickets_there_are() {
    const TICKETS: i64 = 200;
    const REQUESTS: usize = 240;
    let app = crate::helpers::TestApp::spawn_with(|s| {
        s.auth.secret = SHARED_SECRET.as_bytes().to_vec();
    })
    .await;
    let [first, second] = [
        ApiProcess::beside(&app, &[("RATE_LIMITS", "off")]).await,
        ApiProcess::beside(&app, &[("RATE_LIMITS", "off")]).await,
    ];
    let organizer = app.organizer().await;
    let customers = app.customers(REQUESTS).await;
    let event = app.event(&organizer, TICKETS).await;
    let event_id = crate::helpers::id(&event).to_owned();
    let bases = [
        app.address.as_str(),
        first.base.as_str(),
        second.base.as_str(),
    ];
    let shots = customers
        .iter()
        .enumerate()
        .map(|(i, customer)| {
            (
                format!("{}/api/v1/events/{event_id}/bookings", bases[i % 3]),
                customer.token.clone(),
                json!({"quantity": 1}),
            )
        })
        .collect();
    let answers = crate::helpers::all_at_once(shots).await;
    let mut by_process = [0usize; 3];
    for (i, (status, body)) in answers.iter().enumerate() {
        match status {
            201 => by_process[i % 3] += 1,
            409 => assert_eq!(body["error"]["code"], "sold_out", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(by_process.iter().sum::<usize>(), TICKETS as usize);
    assert!(
        by_process.iter().all(|n| *n >= 40),
        "each process sold its share: {by_process:?}"
    );
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_eq!(event.available_tickets, 0);
}

/// The per-customer booking limit is one count across api processes (kept in
/// Redis): a customer who spreads attempts over two binaries gets no more.
#[tokio::test]
async fn the_rate_limit_is_shared_by_api_processes() {
    use crate::helpers::{Mode, skipped};
    // Embedded mode keeps its limits in each process's memory.
    if skipped(Mode::Production) {
        return;
    }
    let app = crate::helpers::TestApp::spawn_with(|s| {
        s.auth.secret = SHARED_SECRET.as_bytes().to_vec();
    })
    .await;
    let limit = [("RATE_LIMIT_BOOKINGS_PER_CUSTOMER", "4/3600")];
    let [first, second] = [
        ApiProcess::beside(&app, &limit).await,
        ApiProcess::beside(&app, &limit).await,
    ];
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 100).await;
    let event_id = crate::helpers::id(&event);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for base in [
        &first.base,
        &second.base,
        &first.base,
        &second.base,
        &first.base,
        &second.base,
    ] {
        let status = http
            .post(format!("{base}/api/v1/events/{event_id}/bookings"))
            .bearer_auth(&ann.token)
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        statuses.push(status);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 429, 429]);
}
