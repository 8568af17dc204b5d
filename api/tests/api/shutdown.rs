//! SIGTERM on the real `api` binary (embedded mode): it stops accepting, finishes
//! what is in flight, including an email being sent, and exits 0.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::smtp::SmtpSink;

struct ApiProcess {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl ApiProcess {
    async fn start(smtp: &SmtpSink) -> Self {
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
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
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
    let mut api = ApiProcess::start(&smtp).await;
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
