//! SPEC §7 on both databases: input that PostgreSQL cannot store and bodies over
//! the size limit get a 4xx JSON answer that the client can read, and change
//! nothing.

use std::time::Duration;

use entity::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

const NUL: &str = "a\u{0}b";

fn assert_field_refused(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert!(
        body["error"]["details"][field]
            .as_str()
            .is_some_and(|m| m.contains("control characters")),
        "{field} not named: {body}"
    );
}

#[tokio::test]
async fn control_characters_in_text_are_refused_by_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let users_before = app.count::<User>().await;

    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "nul@example.com", "password": "correct horse", "name": NUL, "role": "customer"}),
        )
        .await;
    assert_field_refused(status, &body, "name");
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "a\u{0}@example.com", "password": "correct horse", "name": "Ann", "role": "customer"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["details"]["email"].is_string(), "{body}");
    assert_eq!(app.count::<User>().await, users_before);

    // Logging in with such an address is simply a wrong credential.
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a\u{0}@example.com", "password": "correct\u{0}horse"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");

    let organizer = app.organizer().await;
    let valid = json!({
        "title": "Night of Rust",
        "description": "Talks\nand\tmusic",
        "venue": "Hall A",
        "starts_at": "2030-05-01T19:00:00Z",
        "ends_at": "2030-05-01T23:00:00Z",
        "total_tickets": 10,
    });
    for (field, value) in [
        ("title", NUL),
        ("venue", NUL),
        ("description", NUL),
        ("title", "two\nlines"),
    ] {
        let mut input = valid.clone();
        input[field] = json!(value);
        let (status, body) = app
            .post("/api/v1/events", Some(&organizer.token), input)
            .await;
        assert_field_refused(status, &body, field);
    }
    assert_eq!(app.count::<Event>().await, 0);

    // Line breaks and tabs are fine where a field is multi-line.
    let (status, event) = app
        .post("/api/v1/events", Some(&organizer.token), valid)
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["description"], "Talks\nand\tmusic");

    let path = format!("/api/v1/events/{}", event["id"].as_str().unwrap());
    for field in ["title", "venue", "description"] {
        let (status, body) = app
            .patch(&path, Some(&organizer.token), json!({ field: NUL }))
            .await;
        assert_field_refused(status, &body, field);
    }
    let (_, unchanged) = app.get(&path, None).await;
    assert_eq!(unchanged, event);
}

/// Sends a whole body at once, without `Expect: 100-continue` (as Python's
/// http.client and most libraries do), then reads what the server said.
async fn post_raw(app: &TestApp, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (mut reader, mut writer) = stream.split();
    let write = async {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(body).await?;
        writer.flush().await
    };
    let mut response = Vec::new();
    let (written, read) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(write, reader.read_to_end(&mut response))
    })
    .await
    .expect("the server answered within 30 s");
    written.expect("the whole body was accepted, not reset");
    read.expect("the response was read, not reset");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(json).expect("a JSON body"))
}

#[tokio::test]
async fn an_oversized_body_gets_an_answer_the_client_can_read() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let body = json!({
        "title": "Huge", "venue": "Hall", "description": "x".repeat(5 * 1024 * 1024),
        "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
        "total_tickets": 1,
    })
    .to_string();

    let (status, error) = post_raw(
        &app,
        "/api/v1/events",
        Some(&organizer.token),
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large", "{error}");
    assert_eq!(app.count::<Event>().await, 0);

    // The connection stays usable: the next request on a fresh one is served.
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, 200);
}
