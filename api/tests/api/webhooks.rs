//! Webhook endpoints (SPEC §16): an organizer's own, the secret shown once,
//! and destinations that could reach into our network refused, including by
//! a name that resolves there.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use entity::prelude::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    helpers::{TestApp, TestUser, id},
    receiver::{Received, Receiver},
};

/// A public address written as such: no DNS needed to judge it.
const PUBLIC: &str = "https://93.184.215.14/hooks/tickets";

async fn add(app: &TestApp, organizer: &TestUser, body: Value) -> (u16, Value) {
    app.post("/api/v1/webhooks", Some(&organizer.token), body)
        .await
}

#[tokio::test]
async fn an_organizer_manages_endpoints_and_sees_the_secret_once() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 10).await;
    let (status, made) = add(
        &app,
        &organizer,
        json!({"url": PUBLIC, "events": ["booking.confirmed", "ticket.checked_in"]}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap();
    assert!(webhook::Secret::parse(secret).is_ok(), "{secret}");
    assert_eq!(made["url"], PUBLIC);
    assert_eq!(
        made["events"],
        json!(["booking.confirmed", "ticket.checked_in"])
    );
    assert_eq!(made["event_ids"], json!([]));
    assert_eq!(made["enabled"], true);
    let path = format!("/api/v1/webhooks/{}", id(&made));

    let (status, listed) = app.get("/api/v1/webhooks", Some(&organizer.token)).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");
    let (_, read) = app.get(&path, Some(&organizer.token)).await;
    assert!(read.get("secret").is_none(), "{read}");
    assert_eq!(read["id"], made["id"]);

    let (status, changed) = app
        .patch(
            &path,
            Some(&organizer.token),
            json!({"events": ["event.cancelled"], "event_ids": [id(&event)], "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["events"], json!(["event.cancelled"]));
    assert_eq!(changed["event_ids"], json!([id(&event)]));
    assert_eq!(changed["enabled"], false);
    let (_, changed) = app
        .patch(&path, Some(&organizer.token), json!({"event_ids": []}))
        .await;
    assert_eq!(changed["event_ids"], json!([]), "empty: all events again");

    // Nobody else sees or changes it.
    let other = app.organizer().await;
    assert_eq!(app.get(&path, Some(&other.token)).await.0, 404);
    assert_eq!(
        app.patch(&path, Some(&other.token), json!({"enabled": true}))
            .await
            .0,
        404
    );
    assert_eq!(app.delete(&path, &other.token).await.0, 404);
    let (_, theirs) = app.get("/api/v1/webhooks", Some(&other.token)).await;
    assert_eq!(theirs["items"], json!([]));
    let customer = app.customer().await;
    assert_eq!(
        app.get("/api/v1/webhooks", Some(&customer.token)).await.0,
        403
    );

    assert_eq!(app.delete(&path, &organizer.token).await.0, 204);
    assert_eq!(app.get(&path, Some(&organizer.token)).await.0, 404);
    assert_eq!(app.count::<WebhookEndpoint>().await, 0);
    assert_eq!(app.count::<WebhookEndpointEvent>().await, 0);
}

#[tokio::test]
async fn destinations_inside_our_network_are_refused_even_by_name() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    for url in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/hook",
        "https://192.168.1.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        // A name is judged by what it resolves to.
        "https://localhost/hook",
        "https://localhost.:8443/hook",
        "http://93.184.215.14/hook",
        "https://user:password@93.184.215.14/hook",
        "not a url",
    ] {
        let (status, body) = add(
            &app,
            &organizer,
            json!({"url": url, "events": ["booking.confirmed"]}),
        )
        .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(body["error"]["details"]["url"].is_string(), "{url}: {body}");
    }
    assert_eq!(app.count::<WebhookEndpoint>().await, 0, "nothing written");

    // A URL changed to one is refused as well, and the endpoint keeps its own.
    let (_, made) = add(
        &app,
        &organizer,
        json!({"url": PUBLIC, "events": ["booking.confirmed"]}),
    )
    .await;
    let path = format!("/api/v1/webhooks/{}", id(&made));
    let (status, _) = app
        .patch(
            &path,
            Some(&organizer.token),
            json!({"url": "https://localhost/x"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        app.get(&path, Some(&organizer.token)).await.1["url"],
        PUBLIC
    );

    // Development and tests may allow them.
    let open = TestApp::spawn_with(|settings| {
        settings.webhook_destinations = webhook::DestinationRules {
            allow_http: true,
            allow_private: true,
        };
    })
    .await;
    let organizer = open.organizer().await;
    let (status, body) = add(
        &open,
        &organizer,
        json!({"url": "http://localhost:9/hook", "events": ["booking.confirmed"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn bad_endpoints_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let other = app.organizer().await;
    let theirs = app.event(&other, 10).await;
    for (body, field) in [
        (json!({"url": PUBLIC, "events": []}), "events"),
        (json!({"url": PUBLIC, "events": ["booking.paid"]}), "events"),
        (
            json!({"url": PUBLIC, "events": ["booking.confirmed"], "event_ids": [id(&theirs)]}),
            "event_ids",
        ),
        (
            json!({"url": PUBLIC, "events": ["booking.confirmed"], "event_ids": [id(&theirs), id(&theirs)]}),
            "event_ids",
        ),
        (
            json!({"url": "x".repeat(3000), "events": ["booking.confirmed"]}),
            "url",
        ),
    ] {
        let (status, answer) = add(&app, &organizer, body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["error"]["details"][field].is_string(),
            "{body}: {answer}"
        );
    }
    let (status, _) = add(
        &app,
        &organizer,
        json!({"url": PUBLIC, "events": ["booking.confirmed"], "extra": 1}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(app.count::<WebhookEndpoint>().await, 0);
}

// --- delivery ------------------------------------------------------------------

/// Endpoints may point at this machine, and retries come quickly.
fn delivering(settings: &mut api::settings::Settings) {
    let open = webhook::DestinationRules {
        allow_http: true,
        allow_private: true,
    };
    settings.webhook_destinations = open;
    settings.worker.webhooks.destinations = open;
    settings.worker.webhooks.retry_base = Duration::from_millis(100);
    settings.worker.webhooks.timeout = Duration::from_secs(2);
}

/// Checks a delivery by the Standard Webhooks rules: the signature is
/// HMAC-SHA256 of `id.timestamp.body` keyed with the secret's bytes.
fn verify(secret: &str, received: &Received) {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64 secret");
    let id = received.header("webhook-id");
    let timestamp = received.header("webhook-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", received.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert!(
        received
            .header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected),
        "signature of {id}"
    );
    let sent_at: i64 = timestamp.parse().expect("seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
    let body = received.json();
    assert_eq!(body["id"], id, "the body's id is the webhook-id");
    assert_eq!(received.header("content-type"), "application/json");
}

async fn endpoint(app: &TestApp, organizer: &TestUser, url: &str, types: &[&str]) -> Value {
    let (status, made) = add(app, organizer, json!({"url": url, "events": types})).await;
    assert_eq!(status, 201, "{made}");
    made
}

#[tokio::test]
async fn every_type_reaches_the_receiver_signed() {
    let app = TestApp::spawn_with(delivering).await;
    let receiver = Receiver::start().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let all = [
        "booking.confirmed",
        "booking.cancelled",
        "event.updated",
        "event.cancelled",
        "payment.refunded",
        "ticket.checked_in",
    ];
    let made = endpoint(&app, &organizer, &receiver.url(), &all).await;
    let event = app.event(&organizer, 10).await;
    let (_, kept) = app.book(&customer, id(&event), 1).await;
    let (_, cancelled) = app.book(&customer, id(&event), 1).await;
    app.post(
        &format!("/api/v1/bookings/{}/cancel", id(&cancelled)),
        Some(&customer.token),
        json!({}),
    )
    .await;
    let code = app.tickets(&customer, id(&kept)).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/events/{}/checkin", id(&event)),
            Some(&organizer.token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, 200);
    // A paid booking, cancelled: its manual payment is refunded at once.
    let (status, priced) = app
        .post(
            &format!("/api/v1/events/{}/ticket_types", id(&event)),
            Some(&organizer.token),
            json!({"name": "VIP", "price": 5000, "quantity": 2}),
        )
        .await;
    assert_eq!(status, 201, "{priced}");
    let (status, paid) = app
        .buy(
            &customer,
            &organizer,
            id(&event),
            json!({"items": [{"ticket_type_id": id(&priced), "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    app.post(
        &format!("/api/v1/bookings/{}/cancel", id(&paid)),
        Some(&customer.token),
        json!({}),
    )
    .await;
    app.patch(
        &format!("/api/v1/events/{}", id(&event)),
        Some(&organizer.token),
        json!({"venue": "Grand Hall"}),
    )
    .await;
    app.post(
        &format!("/api/v1/events/{}/cancel", id(&event)),
        Some(&organizer.token),
        json!({}),
    )
    .await;

    // Confirmed ×3 (two free, one paid), cancelled ×3 (two by the customer,
    // one by the event), refunded, checked in, updated, cancelled.
    let received = receiver.wait_for(10, Duration::from_secs(30)).await;
    let secret = made["secret"].as_str().unwrap();
    let mut types = std::collections::BTreeSet::new();
    for delivery in &received {
        verify(secret, delivery);
        let body = delivery.json();
        types.insert(body["type"].as_str().unwrap().to_owned());
        assert!(body["data"].is_object(), "{body}");
    }
    assert_eq!(types, all.iter().map(|t| t.to_string()).collect());
    let confirmed = received
        .iter()
        .find(|d| d.json()["type"] == "booking.confirmed")
        .unwrap()
        .json();
    assert_eq!(confirmed["data"]["booking"]["event_id"], event["id"]);
    let checked_in = received
        .iter()
        .find(|d| d.json()["type"] == "ticket.checked_in")
        .unwrap()
        .json();
    assert!(checked_in["data"]["ticket"]["checked_in_at"].is_string());
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_message_until_it_answers_and_410_switches_it_off() {
    let app = TestApp::spawn_with(delivering).await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let flaky = Receiver::start().await;
    flaky.answer(&[500, 500, 500, 200]);
    let made = endpoint(&app, &organizer, &flaky.url(), &["booking.confirmed"]).await;
    let event = app.event(&organizer, 10).await;
    app.book(&customer, id(&event), 1).await;
    let received = flaky.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 4);
    let first = received[0].header("webhook-id").to_owned();
    assert!(received.iter().all(|r| r.header("webhook-id") == first));
    let log = format!("/api/v1/webhooks/{}/deliveries", id(&made));
    let mut delivered = json!(null);
    for _ in 0..100 {
        delivered = app.get(&log, Some(&organizer.token)).await.1["items"][0].clone();
        if delivered["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(delivered["attempts"], 4);
    assert_eq!(delivered["last_status_code"], 200);
    assert_eq!(delivered["id"], first.as_str());

    let gone = Receiver::start().await;
    gone.answer(&[410]);
    let made = endpoint(&app, &organizer, &gone.url(), &["booking.confirmed"]).await;
    app.book(&customer, id(&event), 1).await;
    gone.wait_for(1, Duration::from_secs(30)).await;
    let path = format!("/api/v1/webhooks/{}", id(&made));
    let mut read = json!(null);
    for _ in 0..100 {
        read = app.get(&path, Some(&organizer.token)).await.1;
        if read["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read["enabled"], false, "{read}");
    assert!(read["disabled_reason"].as_str().unwrap().contains("410"));
    app.book(&customer, id(&event), 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        gone.received().len(),
        1,
        "nothing more to a switched-off endpoint"
    );
}

#[tokio::test]
async fn a_stalled_endpoint_holds_up_neither_other_endpoints_nor_email() {
    let app = TestApp::spawn_with(delivering).await;
    let organizer = app.organizer().await;
    let stalled = Receiver::start().await;
    stalled.stall(Duration::from_secs(60));
    let healthy = Receiver::start().await;
    endpoint(&app, &organizer, &stalled.url(), &["booking.confirmed"]).await;
    endpoint(&app, &organizer, &healthy.url(), &["booking.confirmed"]).await;
    let event = app.event(&organizer, 100).await;
    let customers = app.customers(30).await;
    for customer in &customers {
        let (status, _) = app.book(customer, id(&event), 1).await;
        assert_eq!(status, 201);
    }
    let started = std::time::Instant::now();
    assert_eq!(
        healthy.wait_for(30, Duration::from_secs(20)).await.len(),
        30
    );
    app.smtp.wait_for(30).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} beside a stalled endpoint",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_name_that_leads_inside_is_refused_at_delivery_too() {
    // The api allowed the endpoint (development rules); the worker does not.
    let app = TestApp::spawn_with(|settings| {
        delivering(settings);
        settings.worker.webhooks.destinations = webhook::DestinationRules {
            allow_http: true,
            allow_private: false,
        };
    })
    .await;
    let receiver = Receiver::start().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let url = format!("http://localhost:{}/hooks", receiver.addr.port());
    let made = endpoint(&app, &organizer, &url, &["booking.confirmed"]).await;
    let event = app.event(&organizer, 10).await;
    app.book(&customer, id(&event), 1).await;
    let log = format!("/api/v1/webhooks/{}/deliveries", id(&made));
    let mut entry = json!(null);
    for _ in 0..100 {
        entry = app.get(&log, Some(&organizer.token)).await.1["items"][0].clone();
        if entry["attempts"].as_i64().unwrap_or(0) >= 1 && entry["status"] == "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entry["status"], "pending", "{entry}");
    assert!(
        entry["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a public address"),
        "{entry}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn an_endpoint_failing_until_given_up_is_switched_off_and_its_organizer_told() {
    let app = TestApp::spawn_with(|settings| {
        delivering(settings);
        // Three days, for the test.
        settings.worker.webhooks.give_up_after = Duration::from_secs(1);
    })
    .await;
    let broken = Receiver::start().await;
    broken.answer(&[500]);
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let made = endpoint(&app, &organizer, &broken.url(), &["booking.confirmed"]).await;
    let event = app.event(&organizer, 10).await;
    app.book(&customer, id(&event), 1).await;
    let path = format!("/api/v1/webhooks/{}", id(&made));
    let mut read = json!(null);
    for _ in 0..200 {
        read = app.get(&path, Some(&organizer.token)).await.1;
        if read["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read["enabled"], false, "{read}");
    assert!(broken.received().len() >= 2, "tried again before giving up");
    let log = app
        .get(&format!("{path}/deliveries"), Some(&organizer.token))
        .await
        .1;
    assert_eq!(log["items"][0]["status"], "failed", "{log}");
    let mut told = Vec::new();
    for _ in 0..200 {
        told = app.smtp.to(&organizer.email);
        if !told.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(told.len(), 1, "the organizer is emailed once");
    assert!(
        told[0].subject().starts_with("Webhook switched off"),
        "{}",
        told[0].subject()
    );
    assert!(told[0].text.contains(&broken.url()), "{}", told[0].text);
}
