//! The stampede: many truly concurrent requests over real sockets, then the
//! invariants checked in the database.

use std::sync::Arc;

use entity::prelude::*;
use futures::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::{TestApp, TestUser, all_at_once};

const REQUESTS: usize = 1000;
const TICKETS: i64 = 10;

/// Fires `REQUESTS` bookings of one ticket, released at once, spread over
/// `customers` and over the given api base URLs; returns the statuses and bodies.
async fn stampede(bases: &[String], customers: &[TestUser], event_id: &str) -> Vec<(u16, Value)> {
    let requests = (0..REQUESTS)
        .map(|i| {
            let url = format!(
                "{}/api/v1/events/{event_id}/bookings",
                bases[i % bases.len()]
            );
            let token = customers[i % customers.len()].token.clone();
            (url, token, json!({"quantity": 1}))
        })
        .collect();
    all_at_once(requests).await
}

async fn assert_exactly_ten_booked(app: &TestApp, results: &[(u16, Value)], event_id: &str) {
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let sold_out = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["code"] == "sold_out")
        .count();
    let other: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s != 201 && *s != 409)
        .take(3)
        .collect();
    assert!(other.is_empty(), "unexpected responses: {other:?}");
    assert_eq!(
        (created, sold_out),
        (TICKETS as usize, REQUESTS - TICKETS as usize)
    );

    let event = app.assert_ticket_invariant(event_id).await;
    assert_eq!(event.available_tickets, 0);
    let id: uuid::Uuid = event_id.parse().unwrap();
    let bookings = Booking::find()
        .filter(BookingColumn::EventId.eq(id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(bookings, TICKETS as u64, "sold-out requests wrote nothing");
    let confirmations = Notification::find()
        .filter(NotificationColumn::Kind.eq(NotificationKind::BookingConfirmed))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(confirmations, TICKETS as u64, "one outbox row per booking");
}

async fn setup(app: &TestApp) -> (Vec<TestUser>, String) {
    let organizer = app.organizer().await;
    let customers = join_all((0..20).map(|_| app.customer())).await;
    let event = app.event(&organizer, TICKETS).await;
    (customers, event["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_for_ten_tickets_make_ten_bookings() {
    let app = TestApp::spawn().await;
    let (customers, event_id) = setup(&app).await;
    let results = stampede(std::slice::from_ref(&app.address), &customers, &event_id).await;
    assert_exactly_ten_booked(&app, &results, &event_id).await;

    // And every one of the ten gets its confirmation, once.
    app.smtp.wait_for(TICKETS as usize).await;
    app.settle_notifications().await;
    assert_eq!(app.smtp.messages().len(), TICKETS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_instances_share_the_ten_tickets() {
    let app = TestApp::spawn().await;
    let (second, shutdown) = app.second_instance().await;
    let (customers, event_id) = setup(&app).await;
    let results = stampede(&[app.address.clone(), second], &customers, &event_id).await;
    assert_exactly_ten_booked(&app, &results, &event_id).await;
    shutdown.notify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cancellations_return_tickets_once() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = event["id"].as_str().unwrap();
    let (_, booking) = app.book(&customer, event_id, 4).await;
    let path = format!(
        "/api/v1/bookings/{}/cancel",
        booking["id"].as_str().unwrap()
    );

    let barrier = Arc::new(Barrier::new(50));
    let cancels = (0..50).map(|_| {
        let (barrier, request) = (
            barrier.clone(),
            app.http.post(app.url(&path)).bearer_auth(&customer.token),
        );
        tokio::spawn(async move {
            barrier.wait().await;
            request.send().await.unwrap().status().as_u16()
        })
    });
    let statuses: Vec<u16> = join_all(cancels)
        .await
        .into_iter()
        .map(|s| s.unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let event = app.assert_ticket_invariant(event_id).await;
    assert_eq!(event.available_tickets, 10);
    let cancellations = Notification::find()
        .filter(NotificationColumn::Kind.eq(NotificationKind::BookingCancelled))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(cancellations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capacity_changes_during_a_stampede_keep_the_books_balanced() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customers = join_all((0..10).map(|_| app.customer())).await;
    let event = app.event(&organizer, 50).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/events/{event_id}");

    let bookings = (0..200).map(|i| {
        let request = app
            .http
            .post(app.url(&format!("{path}/bookings")))
            .bearer_auth(&customers[i % customers.len()].token)
            .json(&json!({"quantity": 1 + i % 3}));
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    });
    let resizes = (0..20).map(|i| {
        let request = app
            .http
            .patch(app.url(&path))
            .bearer_auth(&organizer.token)
            .json(&json!({"total_tickets": 60 + (i % 5) * 10}));
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    });
    let (bookings, resizes) = tokio::join!(join_all(bookings), join_all(resizes));
    let bookings: Vec<u16> = bookings.into_iter().map(|s| s.unwrap()).collect();
    let resizes: Vec<u16> = resizes.into_iter().map(|s| s.unwrap()).collect();
    for status in &bookings {
        assert!(*status == 201 || *status == 409, "{status}");
    }
    for status in &resizes {
        assert!(*status == 200 || *status == 409, "{status}");
    }
    // The premise: capacity really changed while tickets were being taken.
    assert!(
        bookings.contains(&201),
        "no booking went through: {bookings:?}"
    );
    assert!(
        resizes.contains(&200),
        "no resize went through: {resizes:?}"
    );
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_ne!(event.total_tickets, 50, "the capacity was changed");
}
