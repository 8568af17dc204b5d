//! Who may do what: every mounted route against every kind of caller, from one
//! table. A route that is mounted but missing here fails the test, so a new
//! route cannot skip its authorization review.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

/// Callers, in the order each row is run. State-changing successes come last in
/// a row (the organizer cancels the event, the customer cancels the booking), so
/// earlier callers see the fixture untouched.
const CALLERS: [&str; 5] = [
    "anonymous",
    "other customer",
    "other organizer",
    "organizer",
    "customer",
];

/// (method, route template, expected status per caller in `CALLERS` order).
/// `customer` made the booking and the hold; `organizer` owns the event.
const MATRIX: &[(&str, &str, [u16; 5])] = &[
    ("POST", "/api/v1/auth/register", [201, 201, 201, 201, 201]),
    ("POST", "/api/v1/auth/login", [200, 200, 200, 200, 200]),
    ("GET", "/api/v1/me", [401, 200, 200, 200, 200]),
    ("POST", "/api/v1/events", [401, 403, 201, 201, 403]),
    ("GET", "/api/v1/events", [200, 200, 200, 200, 200]),
    ("GET", "/api/v1/events/<id>", [200, 200, 200, 200, 200]),
    ("PATCH", "/api/v1/events/<id>", [401, 403, 403, 200, 403]),
    (
        "POST",
        "/api/v1/events/<id>/cancel",
        [401, 403, 403, 200, 403],
    ),
    (
        "GET",
        "/api/v1/events/<id>/bookings",
        [401, 403, 403, 200, 403],
    ),
    (
        "GET",
        "/api/v1/events/<id>/report",
        [401, 403, 403, 200, 403],
    ),
    (
        "GET",
        "/api/v1/events/<id>/attendees.csv",
        [401, 403, 403, 200, 403],
    ),
    (
        "POST",
        "/api/v1/events/<id>/bookings",
        [401, 201, 403, 403, 201],
    ),
    (
        "GET",
        "/api/v1/events/<id>/seats",
        [200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/api/v1/events/<id>/seats/free",
        [200, 200, 200, 200, 200],
    ),
    ("GET", "/api/v1/events/<id>/live", [200, 200, 200, 200, 200]),
    (
        "GET",
        "/api/v1/events/<id>/ticket_types",
        [401, 403, 403, 200, 403],
    ),
    (
        "POST",
        "/api/v1/events/<id>/ticket_types",
        [401, 403, 403, 201, 403],
    ),
    (
        "PATCH",
        "/api/v1/events/<id>/ticket_types/<type_id>",
        [401, 403, 403, 200, 403],
    ),
    // The fixture's booking is of the event's one type: it stays.
    (
        "DELETE",
        "/api/v1/events/<id>/ticket_types/<type_id>",
        [401, 403, 403, 409, 403],
    ),
    (
        "GET",
        "/api/v1/events/<id>/promo_codes",
        [401, 403, 403, 200, 403],
    ),
    (
        "POST",
        "/api/v1/events/<id>/promo_codes",
        [401, 403, 403, 201, 403],
    ),
    (
        "PATCH",
        "/api/v1/events/<id>/promo_codes/<code_id>",
        [401, 403, 403, 200, 403],
    ),
    (
        "DELETE",
        "/api/v1/events/<id>/promo_codes/<code_id>",
        [401, 403, 403, 204, 403],
    ),
    // `customer` already has the fixture's hold: one per event.
    (
        "POST",
        "/api/v1/events/<id>/holds",
        [401, 201, 403, 403, 409],
    ),
    ("GET", "/api/v1/holds", [401, 200, 403, 403, 200]),
    ("GET", "/api/v1/holds/<id>", [401, 404, 403, 403, 200]),
    (
        "POST",
        "/api/v1/holds/<id>/confirm",
        [401, 404, 403, 403, 201],
    ),
    ("DELETE", "/api/v1/holds/<id>", [401, 404, 403, 403, 200]),
    // The fixture's hold is free: nothing to pay (and no Stripe here).
    (
        "POST",
        "/api/v1/holds/<id>/payment",
        [401, 404, 403, 403, 409],
    ),
    (
        "POST",
        "/api/v1/holds/<id>/mark_paid",
        [401, 403, 404, 409, 403],
    ),
    ("GET", "/api/v1/webhooks", [401, 403, 200, 200, 403]),
    ("POST", "/api/v1/webhooks", [401, 403, 201, 201, 403]),
    // Another organizer's endpoint is not found, as if it did not exist.
    ("GET", "/api/v1/webhooks/<id>", [401, 403, 404, 200, 403]),
    ("PATCH", "/api/v1/webhooks/<id>", [401, 403, 404, 200, 403]),
    ("DELETE", "/api/v1/webhooks/<id>", [401, 403, 404, 204, 403]),
    (
        "GET",
        "/api/v1/webhooks/<id>/deliveries",
        [401, 403, 404, 200, 403],
    ),
    // No token: the signature is the proof; without Stripe, no webhook.
    (
        "POST",
        "/api/v1/payments/stripe/webhook",
        [404, 404, 404, 404, 404],
    ),
    // The fixture event has no waiting room.
    (
        "POST",
        "/api/v1/events/<id>/queue",
        [401, 409, 403, 403, 409],
    ),
    (
        "GET",
        "/api/v1/events/<id>/queue/me",
        [401, 409, 403, 403, 409],
    ),
    (
        "GET",
        "/api/v1/events/<id>/queue",
        [401, 403, 403, 200, 403],
    ),
    // The fixture event is on sale: nobody waits for it.
    (
        "POST",
        "/api/v1/events/<id>/waitlist",
        [401, 409, 403, 403, 409],
    ),
    (
        "DELETE",
        "/api/v1/events/<id>/waitlist",
        [401, 404, 403, 403, 404],
    ),
    ("GET", "/api/v1/bookings", [401, 200, 403, 403, 200]),
    ("GET", "/api/v1/bookings/<id>", [401, 404, 404, 200, 200]),
    (
        "GET",
        "/api/v1/bookings/<id>/tickets",
        [401, 404, 404, 200, 200],
    ),
    (
        "GET",
        "/api/v1/events/<id>/checkin/key",
        [401, 403, 403, 200, 403],
    ),
    (
        "POST",
        "/api/v1/events/<id>/checkin/devices",
        [401, 403, 403, 201, 403],
    ),
    (
        "DELETE",
        "/api/v1/events/<id>/checkin/devices/<device_id>",
        [401, 403, 403, 200, 403],
    ),
    // The code is garbage: the organizer is let in, and told so.
    (
        "POST",
        "/api/v1/events/<id>/checkin",
        [401, 403, 403, 404, 403],
    ),
    (
        "GET",
        "/api/v1/events/<id>/checkin/tickets",
        [401, 403, 403, 200, 403],
    ),
    (
        "POST",
        "/api/v1/events/<id>/checkin/upload",
        [401, 403, 403, 200, 403],
    ),
    (
        "POST",
        "/api/v1/bookings/<id>/cancel",
        [401, 404, 403, 403, 200],
    ),
    ("GET", "/health", [200, 200, 200, 200, 200]),
    ("GET", "/ready", [200, 200, 200, 200, 200]),
    ("GET", "/metrics", [200, 200, 200, 200, 200]),
];

fn body_for(path: &str, caller: usize) -> Value {
    match path {
        "/api/v1/auth/register" => json!({
            "email": format!("matrix-{caller}-{}@example.com", uuid::Uuid::now_v7().simple()),
            "password": "correct horse", "name": "Matrix", "role": "customer",
        }),
        "/api/v1/events" | "/api/v1/events/<id>" => json!({
            "title": "Matrix", "venue": "Hall", "total_tickets": 10,
            "starts_at": "2031-01-01T19:00:00Z", "ends_at": "2031-01-01T22:00:00Z",
        }),
        "/api/v1/events/<id>/ticket_types" => json!({
            "name": format!("Matrix {caller}"), "price": 100, "quantity": 1,
        }),
        "/api/v1/events/<id>/ticket_types/<type_id>" => json!({"price": 100}),
        "/api/v1/events/<id>/promo_codes" => json!({
            "code": format!("M{caller}"), "discount": {"percent": 10},
        }),
        "/api/v1/events/<id>/promo_codes/<code_id>" => json!({"disabled": true}),
        "/api/v1/holds/<id>/mark_paid" => json!({"reference": "matrix"}),
        "/api/v1/webhooks" => json!({
            "url": "https://93.184.215.14/matrix", "events": ["booking.confirmed"],
        }),
        "/api/v1/webhooks/<id>" => json!({"enabled": false}),
        "/api/v1/events/<id>/checkin/devices" => json!({"name": "Gate"}),
        "/api/v1/events/<id>/checkin" => json!({"code": "garbage"}),
        "/api/v1/events/<id>/checkin/upload" => json!({"scans": []}),
        _ => json!({"quantity": 1}),
    }
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_table_says() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let other_organizer = app.organizer().await;
    let customer = app.customer().await;
    let other_customer = app.customer().await;
    let tokens: [Option<&TestUser>; 5] = [
        None,
        Some(&other_customer),
        Some(&other_organizer),
        Some(&organizer),
        Some(&customer),
    ];

    // Coverage: the table names exactly the mounted routes (the docs aside).
    let built = api::startup::build(&app.settings).await.unwrap();
    let mounted: BTreeSet<(String, String)> = api::rocket(rocket::Config::figment(), built)
        .routes()
        .map(|r| (r.method.as_str().to_owned(), r.uri.path().to_string()))
        .filter(|(_, path)| path != "/openapi.json" && !path.starts_with("/docs"))
        .collect();
    let listed: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(mounted, listed, "every mounted route has a row");

    let mut mismatches = Vec::new();
    for (method, template, expected) in MATRIX {
        // A fresh event and booking per row, so rows cannot affect each other.
        let event = app.event(&organizer, 10).await;
        let (_, booking) = app.book(&customer, event["id"].as_str().unwrap(), 1).await;
        let (_, hold) = app.hold(&customer, event["id"].as_str().unwrap(), 1).await;
        let ticket_type = event["ticket_types"][0]["id"].as_str().unwrap().to_owned();
        let code = if template.contains("<code_id>") {
            let (status, code) = app
                .post(
                    &format!(
                        "/api/v1/events/{}/promo_codes",
                        event["id"].as_str().unwrap()
                    ),
                    Some(&organizer.token),
                    json!({"code": "MATRIX", "discount": {"amount": 100}}),
                )
                .await;
            assert_eq!(status, 201, "{code}");
            code["id"].as_str().unwrap().to_owned()
        } else {
            String::new()
        };
        let device = if template.contains("<device_id>") {
            let (status, device) = app
                .post(
                    &format!(
                        "/api/v1/events/{}/checkin/devices",
                        event["id"].as_str().unwrap()
                    ),
                    Some(&organizer.token),
                    json!({"name": "Matrix gate"}),
                )
                .await;
            assert_eq!(status, 201, "{device}");
            device["id"].as_str().unwrap().to_owned()
        } else {
            String::new()
        };
        let endpoint = if template.starts_with("/api/v1/webhooks/") {
            let (status, endpoint) = app
                .post(
                    "/api/v1/webhooks",
                    Some(&organizer.token),
                    json!({"url": "https://93.184.215.14/matrix", "events": ["event.updated"]}),
                )
                .await;
            assert_eq!(status, 201, "{endpoint}");
            endpoint["id"].clone()
        } else {
            Value::Null
        };
        for (caller, token) in tokens.iter().enumerate() {
            let id = if template.starts_with("/api/v1/bookings/") {
                &booking["id"]
            } else if template.starts_with("/api/v1/holds/") {
                &hold["id"]
            } else if template.starts_with("/api/v1/webhooks/") {
                &endpoint
            } else {
                &event["id"]
            };
            let path = template
                .replace("<id>", id.as_str().unwrap())
                .replace("<type_id>", &ticket_type)
                .replace("<code_id>", &code)
                .replace("<device_id>", &device);
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = app.http.request(method.clone(), app.url(&path));
            if method != Method::GET {
                let mut body = body_for(template, caller);
                if *template == "/api/v1/auth/login" {
                    body = json!({"email": customer.email, "password": "correct horse"});
                }
                request = request.json(&body);
            }
            if let Some(user) = token {
                request = request.bearer_auth(&user.token);
            }
            let status = request.send().await.unwrap().status().as_u16();
            if status != expected[caller] {
                mismatches.push(format!(
                    "{method} {template} as {}: got {status}, want {}",
                    CALLERS[caller], expected[caller]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
