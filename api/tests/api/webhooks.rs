//! Webhook endpoints (SPEC §16): an organizer's own, the secret shown once,
//! and destinations that could reach into our network refused, including by
//! a name that resolves there.

use entity::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, id};

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
