use entity::prelude::*;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn new_event(overrides: Value) -> Value {
    let mut event = json!({
        "title": "Night of Rust",
        "venue": "Hall A",
        "starts_at": "2030-05-01T19:00:00Z",
        "ends_at": "2030-05-01T23:00:00Z",
        "total_tickets": 100,
    });
    for (key, value) in overrides.as_object().unwrap() {
        event[key] = value.clone();
    }
    event
}

#[tokio::test]
async fn organizers_create_events_with_all_tickets_available() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            new_event(json!({"starts_at": "2030-05-01T21:00:00+02:00", "description": "Talks"})),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["organizer_id"], organizer.id.to_string());
    assert_eq!(
        event["starts_at"], "2030-05-01T19:00:00Z",
        "normalised to UTC"
    );
    assert_eq!(event["description"], "Talks");
    assert_eq!(event["total_tickets"], 100);
    assert_eq!(event["available_tickets"], 100);
    assert_eq!(event["status"], "scheduled");
    assert_eq!(event["currency"], "EUR", "the default currency");

    let stored = Event::find().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), event["id"].as_str().unwrap());
    assert_eq!(stored[0].available_tickets, 100);

    let (status, fetched) = app
        .get(
            &format!("/api/v1/events/{}", event["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched, event);
}

/// An event's prices are in its currency (SPEC §13): any ISO 4217 code, kept
/// and shown in every event body.
#[tokio::test]
async fn an_event_is_priced_in_the_currency_it_was_created_with() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            new_event(json!({"currency": "JPY"})),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["currency"], "JPY");
    let id = event["id"].as_str().unwrap();
    let stored = Event::find().all(&app.db).await.unwrap();
    assert_eq!(stored[0].currency, "JPY");
    let (_, fetched) = app.get(&format!("/api/v1/events/{id}"), None).await;
    assert_eq!(fetched["currency"], "JPY");
    let (_, listed) = app.get("/api/v1/events", None).await;
    assert_eq!(listed["items"][0]["currency"], "JPY");
}

#[tokio::test]
async fn only_organizers_may_create_events() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let (status, body) = app
        .post(
            "/api/v1/events",
            Some(&customer.token),
            new_event(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = app.post("/api/v1/events", None, new_event(json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(app.count::<Event>().await, 0);
}

#[tokio::test]
async fn invalid_events_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let cases = [
        (json!({"title": "  "}), "title"),
        (json!({"venue": ""}), "venue"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"ends_at": "2030-05-01T19:00:00Z"}), "ends_at"),
        (json!({"ends_at": "2030-05-01T18:00:00Z"}), "ends_at"),
        (json!({"starts_at": "tomorrow"}), "starts_at"),
        (json!({"total_tickets": 0}), "total_tickets"),
        (json!({"total_tickets": -5}), "total_tickets"),
        (json!({"total_tickets": 1_000_001}), "total_tickets"),
        (json!({"currency": "eur"}), "currency"),
        (json!({"currency": "EURO"}), "currency"),
        (json!({"currency": "XYZ"}), "currency"),
        (json!({"currency": "E\u{0}R"}), "currency"),
        (json!({"currency": ""}), "currency"),
    ];
    for (overrides, field) in cases {
        let (status, body) = app
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                new_event(overrides.clone()),
            )
            .await;
        assert_eq!(status, 422, "{overrides}: {body}");
        assert!(
            body["error"]["details"][field].is_string(),
            "{overrides}: {body}"
        );
    }
    for overrides in [
        json!({"total_tickets": 1e30}),
        json!({"total_tickets": "ten"}),
        json!({"color": "red"}),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                new_event(overrides.clone()),
            )
            .await;
        assert_eq!(status, 422, "{overrides}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
    }
    assert_eq!(app.count::<Event>().await, 0);
}

#[tokio::test]
async fn events_are_listed_by_start_time_with_a_cursor() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let mut expected = Vec::new();
    // Created out of order, two sharing a start time (ties broken by id).
    for (day, hour) in [(3, 19), (1, 19), (2, 19), (1, 19), (5, 10)] {
        let starts = format!("2030-06-{day:02}T{hour}:00:00Z");
        let ends = format!("2030-06-{day:02}T23:00:00Z");
        let (_, event) = app
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                new_event(json!({"starts_at": starts, "ends_at": ends})),
            )
            .await;
        expected.push((starts, event["id"].as_str().unwrap().to_owned()));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let (_, all) = app.get("/api/v1/events", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null());

    for bad in ["limit=0", "limit=101", "limit=abc", "cursor=nonsense"] {
        let (status, body) = app.get(&format!("/api/v1/events?{bad}"), None).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
}

#[tokio::test]
async fn unknown_and_malformed_event_ids_are_not_found() {
    let app = TestApp::spawn().await;
    for id in ["00000000-0000-7000-8000-000000000000", "not-a-uuid", "1"] {
        let (status, body) = app.get(&format!("/api/v1/events/{id}"), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{id}"
        );
    }
}

#[tokio::test]
async fn the_owner_patches_an_event_and_capacity_moves_availability() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();
    assert_eq!(app.book(&customer, id, 4).await.0, 201);

    let (status, patched) = app
        .patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!({"title": "Night of Rust II", "total_tickets": 15}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["title"], "Night of Rust II");
    assert_eq!(patched["venue"], "Hall A");
    assert_eq!(
        (
            patched["total_tickets"].as_i64(),
            patched["available_tickets"].as_i64()
        ),
        (Some(15), Some(11))
    );
    assert_ne!(patched["updated_at"], event["updated_at"]);
    app.assert_ticket_invariant(id).await;

    // Down to exactly what is sold is fine; below it is a conflict that changes nothing.
    let (status, _) = app
        .patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!({"total_tickets": 4}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!({"total_tickets": 3, "title": "Never"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let stored = app.assert_ticket_invariant(id).await;
    assert_eq!(
        (
            stored.total_tickets,
            stored.available_tickets,
            stored.title.as_str()
        ),
        (4, 0, "Night of Rust II")
    );

    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!({"ends_at": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["details"]["ends_at"].is_string());
}

#[tokio::test]
async fn only_the_owner_may_patch() {
    let app = TestApp::spawn().await;
    let owner = app.organizer().await;
    let other = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&owner, 10).await;
    let path = format!("/api/v1/events/{}", event["id"].as_str().unwrap());
    for (token, status) in [
        (Some(other.token.as_str()), 403),
        (Some(customer.token.as_str()), 403),
        (None, 401),
    ] {
        let (got, body) = app.patch(&path, token, json!({"title": "Hijacked"})).await;
        assert_eq!(got, status, "{body}");
    }
    let (status, _) = app
        .patch(
            "/api/v1/events/00000000-0000-7000-8000-000000000000",
            Some(&owner.token),
            json!({"title": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, fetched) = app.get(&path, None).await;
    assert_eq!(fetched["title"], "Night of Rust");
}

#[tokio::test]
async fn the_owner_sees_who_booked() {
    let app = TestApp::spawn().await;
    let owner = app.organizer().await;
    let other = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&owner, 10).await;
    let id = event["id"].as_str().unwrap();
    app.book(&ann, id, 2).await;
    app.book(&bob, id, 1).await;

    let path = format!("/api/v1/events/{id}/bookings");
    let (status, body) = app.get(&path, Some(&owner.token)).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["customer_email"], ann.email);
    assert_eq!(items[0]["customer_name"], "customer person");
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(items[0]["status"], "confirmed");
    assert_eq!(items[1]["customer_email"], bob.email);

    assert_eq!(app.get(&path, Some(&other.token)).await.0, 403);
    assert_eq!(app.get(&path, Some(&ann.token)).await.0, 403);
    assert_eq!(app.get(&path, None).await.0, 401);
}

#[tokio::test]
async fn cancelling_an_event_releases_every_booking_and_tells_each_customer_once() {
    let app = TestApp::spawn().await;
    let owner = app.organizer().await;
    let other = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let cat = app.customer().await;
    let event = app.event(&owner, 10).await;
    let id = event["id"].as_str().unwrap();
    app.book(&ann, id, 2).await;
    app.book(&ann, id, 1).await;
    app.book(&bob, id, 3).await;
    let (_, cats) = app.book(&cat, id, 1).await;
    app.post(
        &format!("/api/v1/bookings/{}/cancel", cats["id"].as_str().unwrap()),
        Some(&cat.token),
        json!({}),
    )
    .await;
    app.smtp.wait_for(5).await;
    app.settle_notifications().await;

    let path = format!("/api/v1/events/{id}/cancel");
    assert_eq!(app.post(&path, Some(&other.token), json!({})).await.0, 403);
    assert_eq!(app.post(&path, Some(&ann.token), json!({})).await.0, 403);
    assert_eq!(app.post(&path, None, json!({})).await.0, 401);
    assert_eq!(
        app.post(
            "/api/v1/events/00000000-0000-7000-8000-000000000000/cancel",
            Some(&owner.token),
            json!({})
        )
        .await
        .0,
        404
    );

    let (status, cancelled) = app.post(&path, Some(&owner.token), json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["available_tickets"], 10);
    let stored = app.assert_ticket_invariant(id).await;
    assert_eq!(
        (stored.status, stored.available_tickets),
        (EventStatus::Cancelled, 10)
    );
    let bookings = entity::booking::Entity::find().all(&app.db).await.unwrap();
    assert!(
        bookings
            .iter()
            .all(|b| b.status == BookingStatus::Cancelled && b.cancelled_at.is_some())
    );

    app.smtp.wait_for(7).await;
    app.settle_notifications().await;
    let notices = |customer: &crate::helpers::TestUser| {
        app.smtp
            .to(&customer.email)
            .into_iter()
            .filter(|m| m.subject() == "Event cancelled: Night of Rust")
            .count()
    };
    assert_eq!((notices(&ann), notices(&bob), notices(&cat)), (1, 1, 0));

    let (status, body) = app.book(&bob, id, 1).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("event_cancelled"))
    );
    let (status, _) = app
        .patch(
            &format!("/api/v1/events/{id}"),
            Some(&owner.token),
            json!({"title": "Back on"}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, again) = app.post(&path, Some(&owner.token), json!({})).await;
    assert_eq!((status, &again["status"]), (200, &json!("cancelled")));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 7, "a repeat emails nobody");
    assert_eq!(app.count::<Booking>().await, 4);
}
