//! `Idempotency-Key` on booking (SPEC §4): a retried request books once.

use std::{sync::Arc, time::Duration};

use entity::prelude::*;
use futures::future::join_all;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::{TestApp, TestUser};

async fn book_with_key(
    app: &TestApp,
    base: &str,
    customer: &TestUser,
    event_id: &str,
    key: &str,
    body: Value,
) -> (u16, String) {
    let response = app
        .http
        .post(format!("{base}/api/v1/events/{event_id}/bookings"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_repeated_request_returns_the_first_response_and_books_once() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();

    let first = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "order-1",
        json!({"quantity": 2}),
    )
    .await;
    assert_eq!(first.0, 201, "{}", first.1);
    let again = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "order-1",
        json!({"quantity": 2}),
    )
    .await;
    assert_eq!(again, first, "same status, byte-identical body");
    assert_eq!(app.count::<Booking>().await, 1);
    assert_eq!(app.count::<Notification>().await, 1);
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 8);

    // Same key, another request: refused, nothing booked.
    let (status, body) = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "order-1",
        json!({"quantity": 3}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "idempotency_conflict"
    );
    // Keys belong to their user.
    assert_eq!(
        book_with_key(
            &app,
            &app.address,
            &bob,
            id,
            "order-1",
            json!({"quantity": 2})
        )
        .await
        .0,
        201
    );
    // Malformed keys are refused before anything happens.
    let (status, body) = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "has spaces",
        json!({"quantity": 1}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(app.count::<Booking>().await, 2);
}

#[tokio::test]
async fn a_refusal_is_remembered_too() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&organizer, 1).await;
    let id = event["id"].as_str().unwrap();
    let (_, bobs) = app.book(&bob, id, 1).await;

    let sold_out = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "try-1",
        json!({"quantity": 1}),
    )
    .await;
    assert_eq!(sold_out.0, 409);
    // A ticket comes free, but this key already has its answer.
    app.post(
        &format!("/api/v1/bookings/{}/cancel", bobs["id"].as_str().unwrap()),
        Some(&bob.token),
        json!({}),
    )
    .await;
    assert_eq!(
        book_with_key(
            &app,
            &app.address,
            &ann,
            id,
            "try-1",
            json!({"quantity": 1})
        )
        .await,
        sold_out
    );
    // A new key is a new attempt.
    assert_eq!(
        book_with_key(
            &app,
            &app.address,
            &ann,
            id,
            "try-2",
            json!({"quantity": 1})
        )
        .await
        .0,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_repeats_across_two_instances_book_once() {
    let app = TestApp::spawn().await;
    let (second, shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap().to_owned();

    let barrier = Arc::new(Barrier::new(20));
    let app = Arc::new(app);
    let attempts = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        let (app, barrier, id) = (app.clone(), barrier.clone(), id.clone());
        let token = ann.token.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            let customer = TestUser {
                id: uuid::Uuid::nil(),
                email: String::new(),
                token,
            };
            book_with_key(
                &app,
                &base,
                &customer,
                &id,
                "stampede",
                json!({"quantity": 1}),
            )
            .await
        })
    });
    let results: Vec<(u16, String)> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created: Vec<&String> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert!(!created.is_empty(), "{results:?}");
    assert!(
        created.iter().all(|b| *b == created[0]),
        "every 201 is the same booking"
    );
    for (status, body) in &results {
        if *status == 409 {
            let code = serde_json::from_str::<Value>(body).unwrap()["error"]["code"].clone();
            assert_eq!(code, "conflict", "in flight, retry later: {body}");
        } else {
            assert_eq!(*status, 201, "{body}");
        }
    }
    assert_eq!(app.count::<Booking>().await, 1);
    assert_eq!(app.assert_ticket_invariant(&id).await.available_tickets, 9);
    // Once the first has finished, every retry replays it.
    let retry = book_with_key(&app, &second, &ann, &id, "stampede", json!({"quantity": 1})).await;
    assert_eq!((retry.0, &retry.1), (201, created[0]));
    shutdown.notify();
}

/// Makes a stored key look `age` old (through sea-orm, so the timestamp is
/// written exactly as the app writes it).
async fn age_key(app: &TestApp, key: &str, age: chrono::Duration) {
    let stored = IdempotencyKey::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.key == key)
        .unwrap();
    let mut aged: IdempotencyKeyActiveModel = stored.into();
    aged.created_at = sea_orm::Set(chrono::Utc::now() - age);
    sea_orm::ActiveModelTrait::update(aged, &app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_are_purged_after_their_time_to_live_and_abandoned_claims_are_taken_over() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();
    book_with_key(&app, &app.address, &ann, id, "old", json!({"quantity": 1})).await;
    book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "recent",
        json!({"quantity": 1}),
    )
    .await;

    // "old" was made 25 hours ago.
    assert_eq!(IdempotencyKey::find().all(&app.db).await.unwrap().len(), 2);
    age_key(&app, "old", chrono::Duration::hours(25)).await;
    let purged =
        api::domain::idempotency::purge(&app.db, Duration::from_secs(86_400), chrono::Utc::now())
            .await
            .unwrap();
    assert_eq!(purged, 1);
    let left: Vec<String> = IdempotencyKey::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(left, ["recent"]);

    // A claim left in flight by a process that died (nothing booked) is taken over
    // once it is old enough.
    let booked_before = app.count::<Booking>().await;
    app.db
        .execute_unprepared(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status, created_at) \
             SELECT user_id, 'orphan', request_hash, 'in_flight', created_at FROM idempotency_keys WHERE key = 'recent'",
        )
        .await
        .unwrap();
    let (status, _) = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "orphan",
        json!({"quantity": 1}),
    )
    .await;
    assert_eq!(status, 409, "a fresh in-flight claim is respected");
    age_key(&app, "orphan", chrono::Duration::minutes(2)).await;
    let (status, body) = book_with_key(
        &app,
        &app.address,
        &ann,
        id,
        "orphan",
        json!({"quantity": 1}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.count::<Booking>().await, booked_before + 1);
}
