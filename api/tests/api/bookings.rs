use entity::prelude::*;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn booking_takes_tickets_and_writes_its_confirmation_to_the_outbox() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();

    let (status, booking) = app.book(&customer, id, 3).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(booking["event_id"], id);
    assert_eq!(booking["user_id"], customer.id.to_string());
    assert_eq!(booking["quantity"], 3);
    assert_eq!(booking["status"], "confirmed");
    assert!(booking["cancelled_at"].is_null());

    let stored = app.assert_ticket_invariant(id).await;
    assert_eq!(stored.available_tickets, 7);
    let notifications = app.notifications().await;
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0].kind, NotificationKind::BookingConfirmed);
    assert_eq!(
        notifications[0]
            .booking_id
            .map(|b| b.to_string())
            .as_deref(),
        booking["id"].as_str()
    );
    assert_eq!(notifications[0].user_id, customer.id);

    // No body at all books one ticket.
    let response = app
        .http
        .post(app.url(&format!("/api/v1/events/{id}/bookings")))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let booking: serde_json::Value = response.json().await.unwrap();
    assert_eq!(booking["quantity"], 1);
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 6);
}

#[tokio::test]
async fn bad_quantities_are_refused_and_book_nothing() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 100).await;
    let path = format!("/api/v1/events/{}/bookings", event["id"].as_str().unwrap());
    for quantity in [json!(0), json!(-1), json!(11), json!(i64::MAX)] {
        let (status, body) = app
            .post(&path, Some(&customer.token), json!({"quantity": quantity}))
            .await;
        assert_eq!(status, 422, "{quantity}: {body}");
        assert!(body["error"]["details"]["quantity"].is_string(), "{body}");
    }
    for body in [
        json!({"quantity": "2"}),
        json!({"quantity": 1.5}),
        json!({"quantity": 1e40}),
        json!({"quantity": 1, "seat": "A1"}),
    ] {
        let (status, response) = app.post(&path, Some(&customer.token), body.clone()).await;
        assert_eq!(status, 422, "{body}: {response}");
    }
    assert_eq!(app.count::<Booking>().await, 0);
    assert_eq!(app.count::<Notification>().await, 0);
    assert_eq!(
        app.assert_ticket_invariant(event["id"].as_str().unwrap())
            .await
            .available_tickets,
        100
    );
}

#[tokio::test]
async fn sold_out_is_a_conflict_that_writes_nothing() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 3).await;
    let id = event["id"].as_str().unwrap();
    assert_eq!(app.book(&customer, id, 2).await.0, 201);

    let (status, body) = app.book(&customer, id, 2).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "sold_out");
    assert_eq!(body["error"]["message"], "only 1 ticket left");
    assert_eq!(body["error"]["details"]["available_tickets"], 1);
    assert_eq!(app.count::<Booking>().await, 1);
    assert_eq!(app.count::<Notification>().await, 1);
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 1);

    assert_eq!(app.book(&customer, id, 1).await.0, 201);
    let (status, body) = app.book(&customer, id, 1).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (409, Some("sold out"))
    );
}

#[tokio::test]
async fn only_customers_book_and_only_existing_events() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 3).await;
    let id = event["id"].as_str().unwrap();
    assert_eq!(app.book(&organizer, id, 1).await.0, 403);
    let (status, _) = app
        .post(
            &format!("/api/v1/events/{id}/bookings"),
            None,
            json!({"quantity": 1}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .book(&customer, "00000000-0000-7000-8000-000000000000", 1)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(app.book(&customer, "nope", 1).await.0, 404);
    assert_eq!(app.count::<Booking>().await, 0);
}

#[tokio::test]
async fn customers_list_their_own_bookings_newest_first() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();
    let (_, first) = app.book(&ann, id, 1).await;
    let (_, second) = app.book(&ann, id, 2).await;
    app.book(&bob, id, 3).await;

    let (status, body) = app.get("/api/v1/bookings", Some(&ann.token)).await;
    assert_eq!(status, 200);
    let ids: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    assert_eq!(ids, [second["id"].clone(), first["id"].clone()]);
    assert_eq!(
        app.get("/api/v1/bookings", Some(&organizer.token)).await.0,
        403
    );
    assert_eq!(app.get("/api/v1/bookings", None).await.0, 401);
}

#[tokio::test]
async fn a_booking_is_visible_to_its_customer_and_the_events_organizer_only() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let other_organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (_, booking) = app.book(&ann, event["id"].as_str().unwrap(), 1).await;
    let path = format!("/api/v1/bookings/{}", booking["id"].as_str().unwrap());

    assert_eq!(
        app.get(&path, Some(&ann.token)).await,
        (200, booking.clone())
    );
    assert_eq!(
        app.get(&path, Some(&organizer.token)).await,
        (200, booking.clone())
    );
    assert_eq!(app.get(&path, Some(&bob.token)).await.0, 404);
    assert_eq!(app.get(&path, Some(&other_organizer.token)).await.0, 404);
    assert_eq!(app.get(&path, None).await.0, 401);
    assert_eq!(
        app.get("/api/v1/bookings/not-an-id", Some(&ann.token))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn cancelling_returns_the_tickets_exactly_once() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&organizer, 5).await;
    let id = event["id"].as_str().unwrap();
    let (_, booking) = app.book(&ann, id, 3).await;
    let path = format!(
        "/api/v1/bookings/{}/cancel",
        booking["id"].as_str().unwrap()
    );

    assert_eq!(app.post(&path, Some(&bob.token), json!({})).await.0, 404);
    assert_eq!(
        app.post(&path, Some(&organizer.token), json!({})).await.0,
        403
    );
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 2);

    let (status, cancelled) = app.post(&path, Some(&ann.token), json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 5);

    let (status, again) = app.post(&path, Some(&ann.token), json!({})).await;
    assert_eq!(
        (status, &again),
        (200, &cancelled),
        "a repeat returns the same booking"
    );
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 5);
    let kinds: Vec<_> = app
        .notifications()
        .await
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == NotificationKind::BookingCancelled)
            .count(),
        1
    );

    let stored = Booking::find().all(&app.db).await.unwrap();
    assert_eq!(stored[0].status, BookingStatus::Cancelled);
}

/// PostgreSQL books in one statement with its own SQL for the outbox row; SQLite
/// writes it through `outbox::write`. Both must leave the same row, and with a
/// key, the same remembered response as the one sent.
#[tokio::test]
async fn a_booking_writes_the_same_outbox_row_and_remembered_response_on_either_database() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();
    let response = app
        .http
        .post(app.url(&format!("/api/v1/events/{id}/bookings")))
        .bearer_auth(&customer.token)
        .header("X-Request-Id", "pin-the-row")
        .header("Idempotency-Key", "pin-the-row")
        .json(&json!({"quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let sent = response.text().await.unwrap();
    let booking: serde_json::Value = serde_json::from_str(&sent).unwrap();

    let row = Notification::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.kind, NotificationKind::BookingConfirmed);
    assert_eq!(row.user_id, customer.id);
    assert_eq!(row.event_id.to_string(), id);
    assert_eq!(
        row.booking_id.map(|b| b.to_string()).as_deref(),
        booking["id"].as_str()
    );
    assert_eq!(row.changes, None);
    // (Delivery may already have moved `status` and `attempts` on.)
    assert_eq!(row.next_attempt_at, row.created_at);
    assert!(row.enqueued_at.is_some());
    assert_eq!(row.request_id.as_deref(), Some("pin-the-row"));

    let remembered = entity::idempotency_key::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(remembered.response_status, Some(201));
    assert_eq!(remembered.response_body.as_deref(), Some(sent.as_str()));
}
