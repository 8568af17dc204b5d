//! Live availability (SPEC §11): `GET /events/{id}/live` as Server-Sent Events,
//! read over a real socket.

use std::{
    pin::Pin,
    time::{Duration, Instant},
};

use chrono::Utc;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::helpers::{Mode, TestApp, skipped};

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

/// One open stream, parsed as it arrives.
pub struct Subscription {
    body: Body,
    buffer: String,
}

impl Subscription {
    pub async fn open(base: &str, event_id: &str) -> Self {
        Self::open_as(base, event_id, None).await
    }

    /// Signed in: a customer in the waiting room also gets `queue` events.
    pub async fn open_as(base: &str, event_id: &str, token: Option<&str>) -> Self {
        Self::open_with(base, event_id, token, &[]).await.0
    }

    /// With extra headers; also returns the response's `server` header.
    async fn open_with(
        base: &str,
        event_id: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
    ) -> (Self, Option<String>) {
        let mut request =
            reqwest::Client::new().get(format!("{base}/api/v1/events/{event_id}/live"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let server = response
            .headers()
            .get("server")
            .map(|s| s.to_str().unwrap().to_owned());
        let subscription = Self {
            body: Box::pin(
                response
                    .bytes_stream()
                    .map(|chunk| chunk.map(|b| b.to_vec())),
            ),
            buffer: String::new(),
        };
        (subscription, server)
    }

    /// The next `availability` message's data, or `None` if none comes within
    /// `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        self.next_of("availability", within).await
    }

    /// The next message of this kind (`availability`, `queue`), skipping others.
    pub async fn next_of(&mut self, kind: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let wanted = format!("event:{kind}");
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                let is_wanted = message.lines().any(|l| l == wanted);
                let data = message
                    .lines()
                    .find_map(|l| l.strip_prefix("data:"))
                    .map(str::trim);
                if let (true, Some(data)) = (is_wanted, data) {
                    return Some(serde_json::from_str(data).unwrap());
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }

    /// Waits for a message that satisfies `wanted`, skipping others.
    pub async fn until(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(message) if wanted(&message) => return message,
                Some(_) => continue,
                None => panic!("no such availability message within {within:?}"),
            }
        }
    }
}

fn counts(message: &Value) -> (i64, i64, i64) {
    (
        message["available"].as_i64().unwrap(),
        message["held"].as_i64().unwrap(),
        message["booked"].as_i64().unwrap(),
    )
}

/// The api's front door streams a live request itself (a few KiB a stream)
/// only when it can read the whole request at once; anything else it passes
/// to Rocket's route untouched: a head longer than it reads, or a live request
/// later on a kept-alive connection. Either way the client gets the same.
#[tokio::test]
async fn a_live_request_the_front_door_passes_on_streams_the_same() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = event["id"].as_str().unwrap();

    let (mut by_door, door_server) =
        Subscription::open_with(&app.address, event_id, None, &[]).await;
    let long_head = [("x-padding", "p".repeat(5000))];
    let (mut by_rocket, rocket_server) =
        Subscription::open_with(&app.address, event_id, None, &long_head).await;
    assert_eq!(door_server, None, "streamed by the front door");
    assert_eq!(
        rocket_server.as_deref(),
        Some("Rocket"),
        "streamed by Rocket"
    );
    let first = by_door.next(Duration::from_secs(1)).await.unwrap();
    assert_eq!(first, by_rocket.next(Duration::from_secs(1)).await.unwrap());
    assert_eq!(counts(&first), (10, 0, 0));

    app.book(&customer, event_id, 2).await;
    for live in [&mut by_door, &mut by_rocket] {
        live.until(Duration::from_secs(2), |m| counts(m) == (8, 0, 2))
            .await;
    }

    let address = app.address.trim_start_matches("http://").to_owned();
    let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
    connection
        .write_all(
            format!(
                "GET /health HTTP/1.1\r\nHost: {address}\r\n\r\n\
                 GET /api/v1/events/{event_id}/live HTTP/1.1\r\nHost: {address}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&received).contains("\"booked\":2") {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, connection.read(&mut chunk))
            .await
            .expect("the second request's stream within 5 s")
            .unwrap();
        assert!(read > 0, "closed: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&chunk[..read]);
    }
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("text/event-stream"), "{received}");
}

#[tokio::test]
async fn a_subscriber_sees_availability_on_connect_and_after_each_change() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = event["id"].as_str().unwrap();
    let mut live = Subscription::open(&app.address, event_id).await;

    let first = live
        .next(Duration::from_secs(1))
        .await
        .expect("a message on connect");
    let general_admission = &event["ticket_types"][0]["id"];
    assert_eq!(
        first,
        json!({"available": 10, "held": 0, "booked": 0, "status": "scheduled",
               "ticket_types": [{"id": general_admission, "available": 10, "held": 0, "booked": 0}]})
    );

    app.book(&customer, event_id, 2).await;
    let after_booking = live
        .until(Duration::from_secs(1), |m| counts(m) == (8, 0, 2))
        .await;
    assert_eq!(after_booking["status"], "scheduled");
    assert_eq!(
        after_booking["ticket_types"][0],
        json!({"id": general_admission, "available": 8, "held": 0, "booked": 2}),
        "each type's counts travel with the event's"
    );

    let (_, hold) = app.hold(&customer, event_id, 3).await;
    live.until(Duration::from_secs(1), |m| counts(m) == (5, 3, 2))
        .await;
    let response = app
        .http
        .delete(app.url(&format!("/api/v1/holds/{}", hold["id"].as_str().unwrap())))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    live.until(Duration::from_secs(1), |m| counts(m) == (8, 0, 2))
        .await;

    app.post(
        &format!("/api/v1/events/{event_id}/cancel"),
        Some(&organizer.token),
        json!({}),
    )
    .await;
    live.until(Duration::from_secs(1), |m| m["status"] == "cancelled")
        .await;

    let (status, body) = app
        .get(
            &format!("/api/v1/events/{}/live", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}

/// Expiry is the worker's: its change reaches the api's subscribers too (on
/// Redis from the worker process, in embedded mode within the one process).
#[tokio::test]
async fn an_expiry_by_the_worker_reaches_subscribers() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 4).await;
    let event_id = event["id"].as_str().unwrap();
    let (_, hold) = app.hold(&customer, event_id, 4).await;
    let mut live = Subscription::open(&app.address, event_id).await;
    live.until(Duration::from_secs(1), |m| counts(m) == (0, 4, 0))
        .await;

    crate::holds::expire_at(&app, hold["id"].as_str().unwrap(), Utc::now()).await;
    live.until(Duration::from_secs(6), |m| counts(m) == (4, 0, 0))
        .await;
}

#[tokio::test]
async fn a_change_on_a_seated_event_names_the_seats() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Quartet", "venue": "Small Hall",
                "starts_at": "2030-06-01T19:00:00Z", "ends_at": "2030-06-01T21:00:00Z",
                "seating": {"sections": [{"name": "Stalls", "rows": [{"label": "A", "seats": 6}]}]},
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = event["id"].as_str().unwrap();
    let mut live = Subscription::open(&app.address, event_id).await;
    live.next(Duration::from_secs(1)).await.unwrap();

    let (_, hold) = app.hold(&customer, event_id, 2).await;
    let message = live
        .until(Duration::from_secs(1), |m| counts(m) == (4, 2, 0))
        .await;
    let mut named: Vec<&str> = message["seat_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut held: Vec<&str> = hold["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    named.sort();
    held.sort();
    assert_eq!(named, held);
}

/// However busy the event, a subscriber gets at most four messages a second,
/// and the last one says how things stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_coalesced_to_four_a_second() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 1000).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let customers = app.customers(60).await;
    let mut live = Subscription::open(&app.address, &event_id).await;
    live.next(Duration::from_secs(1)).await.unwrap();

    let started = Instant::now();
    futures::future::join_all(customers.iter().map(|c| app.book(c, &event_id, 1))).await;
    let mut messages = 0;
    let mut last = None;
    while let Some(message) = live.next(Duration::from_millis(800)).await {
        messages += 1;
        last = Some(message);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(counts(&last.unwrap()), (940, 0, 60));
    assert!(
        (messages as f64) <= elapsed * 4.0 + 2.0,
        "{messages} messages in {elapsed:.2} s"
    );
}

/// Two api processes on one Redis: a booking on one reaches a subscriber on
/// the other within a second. Embedded mode is one process by definition.
#[tokio::test]
async fn a_change_on_one_api_process_reaches_subscribers_on_another() {
    // embedded mode has one api process; this runs with DATABASE_URL and REDIS_URL.
    if skipped(Mode::Production) {
        return;
    }
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = event["id"].as_str().unwrap();
    let mut live = Subscription::open(&second, event_id).await;
    live.next(Duration::from_secs(1)).await.unwrap();

    let started = Instant::now();
    let (status, _) = app.book(&customer, event_id, 3).await;
    assert_eq!(status, 201);
    live.until(Duration::from_secs(1), |m| counts(m) == (7, 0, 3))
        .await;
    eprintln!(
        "a booking on one api reached a subscriber on the other in {:?}",
        started.elapsed()
    );
}

/// Redis goes away and comes back (empty): the api's feed reconnects by itself,
/// re-reads what it follows (changes made meanwhile went unheard), and live
/// updates flow again.
#[tokio::test]
async fn live_updates_resume_after_redis_restarts() {
    // embedded mode has no Redis; this runs with DATABASE_URL and REDIS_URL.
    if skipped(Mode::Production) {
        return;
    }
    let redis = crate::notifications::PrivateRedis::start();
    let app = TestApp::spawn_with(|s| {
        s.storage.queue = platform::QueueBackend::Redis { url: redis.url() };
    })
    .await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = event["id"].as_str().unwrap();
    let mut live = Subscription::open(&app.address, event_id).await;
    live.until(Duration::from_secs(1), |m| counts(m) == (10, 0, 0))
        .await;

    redis.stop();
    let (status, _) = app.book(&customer, event_id, 2).await;
    assert_eq!(status, 201, "bookings go on while Redis is down");
    redis.start_again();
    live.until(Duration::from_secs(10), |m| counts(m) == (8, 0, 2))
        .await;

    let (status, _) = app.book(&customer, event_id, 1).await;
    assert_eq!(status, 201);
    live.until(Duration::from_secs(2), |m| counts(m) == (7, 0, 3))
        .await;
}
