//! Seated events (SPEC §9): the seat map, seat status, holds and bookings by
//! seat or by best available, and the database refusing a seat taken twice.

use std::{collections::BTreeSet, time::Instant};

use entity::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, all_at_once, id};

fn event_body(seating: Value) -> Value {
    json!({
        "title": "Night of Rust",
        "venue": "Hall A",
        "starts_at": "2030-05-01T19:00:00Z",
        "ends_at": "2030-05-01T23:00:00Z",
        "seating": seating,
    })
}

async fn seated_event(app: &TestApp, organizer: &TestUser, seating: Value) -> Value {
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            event_body(seating),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    event
}

/// Seat label → id, and the listing in rank order.
async fn seats(
    app: &TestApp,
    event_id: &str,
) -> (std::collections::HashMap<String, String>, Vec<Value>) {
    let (status, body) = app
        .get(&format!("/api/v1/events/{event_id}/seats"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap().clone();
    let by_label = items
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (by_label, items)
}

fn labels(seats: &Value) -> Vec<&str> {
    seats
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect()
}

async fn hold_seats(
    app: &TestApp,
    customer: &TestUser,
    event_id: &str,
    ids: &[&str],
) -> (u16, Value) {
    app.post(
        &format!("/api/v1/events/{event_id}/holds"),
        Some(&customer.token),
        json!({"seat_ids": ids}),
    )
    .await
}

fn small_map() -> Value {
    json!({"sections": [
        {"name": "Floor", "rows": [{"label": "A", "seats": 4}, {"label": "B", "seats": 4}]},
        {"name": "Balcony", "rows": [{"label": "A", "seats": 3}]},
    ]})
}

#[tokio::test]
async fn a_seat_map_makes_the_seats_and_lists_them_in_rank_order() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let event = seated_event(&app, &organizer, small_map()).await;
    assert_eq!(
        (event["seated"].as_bool(), event["total_tickets"].as_i64()),
        (Some(true), Some(11))
    );
    assert_eq!(event["available_tickets"], 11);

    let (_, all) = seats(&app, id(&event)).await;
    let listed: Vec<&str> = all.iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        [
            "Floor A-1",
            "Floor A-2",
            "Floor A-3",
            "Floor A-4",
            "Floor B-1",
            "Floor B-2",
            "Floor B-3",
            "Floor B-4",
            "Balcony A-1",
            "Balcony A-2",
            "Balcony A-3"
        ]
    );
    assert_eq!(
        all[5],
        json!({
            "id": all[5]["id"], "section": "Floor", "row": "B", "number": 2,
            "label": "Floor B-2", "status": "available",
        })
    );
    let (_, balcony) = app
        .get(
            &format!("/api/v1/events/{}/seats?section=Balcony", id(&event)),
            None,
        )
        .await;
    assert_eq!(balcony["items"].as_array().unwrap().len(), 3);
    // A name no section can have is refused, on both databases (PostgreSQL
    // cannot compare a text with U+0000 at all).
    for bad in ["%00", "Bal%01cony", "%20"] {
        let (status, body) = app
            .get(
                &format!("/api/v1/events/{}/seats?section={bad}", id(&event)),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"]["section"].is_string()),
            (422, true),
            "{bad}: {body}"
        );
    }

    // A matching total is accepted; general admission lists no seats.
    let mut body = event_body(small_map());
    body["total_tickets"] = json!(11);
    let (status, _) = app
        .post("/api/v1/events", Some(&organizer.token), body)
        .await;
    assert_eq!(status, 201);
    let ga = app.event(&organizer, 5).await;
    let (status, none) = app
        .get(&format!("/api/v1/events/{}/seats", id(&ga)), None)
        .await;
    assert_eq!(
        (status, none),
        (200, json!({"items": [], "next_cursor": null}))
    );
    let (status, _) = app
        .get(&format!("/api/v1/events/{}/seats", Uuid::now_v7()), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_bad_seat_map_is_refused_field_by_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let cases = [
        (json!({"sections": []}), "seating.sections"),
        (
            json!({"sections": [{"name": "Floor", "rows": []}]}),
            "seating.sections[0].rows",
        ),
        (
            json!({"sections": [{"name": "", "rows": [{"label": "A", "seats": 2}]}]}),
            "seating.sections[0].name",
        ),
        (
            json!({"sections": [{"name": "F\u{0}", "rows": [{"label": "A", "seats": 2}]}]}),
            "seating.sections[0].name",
        ),
        (
            json!({"sections": [{"name": "Floor", "rows": [{"label": "A", "seats": 0}]}]}),
            "seating.sections[0].rows[0].seats",
        ),
        (
            json!({"sections": [{"name": "Floor", "rows": [{"label": "A", "seats": 2}, {"label": "A", "seats": 2}]}]}),
            "seating.sections[0].rows[1].label",
        ),
        (
            json!({"sections": [
            {"name": "Floor", "rows": [{"label": "A", "seats": 2}]},
            {"name": "Floor", "rows": [{"label": "B", "seats": 2}]}]}),
            "seating.sections[1].name",
        ),
        (
            json!({"sections": [{"name": "Stadium", "rows": (0..101).map(|r| json!({"label": format!("R{r}"), "seats": 1000})).collect::<Vec<_>>()}]}),
            "seating",
        ),
    ];
    for (seating, field) in cases {
        let (status, body) = app
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                event_body(seating.clone()),
            )
            .await;
        assert_eq!(status, 422, "{seating} → {body}");
        assert!(
            body["error"]["details"][field].is_string(),
            "{field} not named: {body}"
        );
    }
    let mut body = event_body(small_map());
    body["total_tickets"] = json!(12);
    let (status, answer) = app
        .post("/api/v1/events", Some(&organizer.token), body)
        .await;
    assert_eq!(
        (
            status,
            answer["error"]["details"]["total_tickets"].is_string()
        ),
        (422, true),
        "{answer}"
    );
    let (status, answer) = app
        .post("/api/v1/events", Some(&organizer.token), json!({
            "title": "No tickets", "venue": "Hall", "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
        }))
        .await;
    assert_eq!(
        (
            status,
            answer["error"]["details"]["total_tickets"].is_string()
        ),
        (422, true),
        "{answer}"
    );
    assert_eq!(app.count::<Event>().await, 0);
    assert_eq!(app.count::<Seat>().await, 0);
}

#[tokio::test]
async fn seats_are_held_all_or_nothing_booked_named_and_freed() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = seated_event(&app, &organizer, small_map()).await;
    let (seat, _) = seats(&app, id(&event)).await;

    let (status, hold) = hold_seats(
        &app,
        &ann,
        id(&event),
        &[&seat["Floor A-2"], &seat["Floor A-1"]],
    )
    .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(labels(&hold["seats"]), ["Floor A-1", "Floor A-2"]);
    assert_eq!(hold["quantity"], 2);
    let (_, listing) = seats(&app, id(&event)).await;
    let held: Vec<&str> = listing
        .iter()
        .filter(|s| s["status"] == "held")
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["Floor A-1", "Floor A-2"]);
    assert!(
        listing
            .iter()
            .all(|s| s.get("hold_id").is_none() && s.get("user_id").is_none()),
        "never who"
    );

    // One taken seat refuses the whole request, naming it.
    let (status, refused) = hold_seats(
        &app,
        &bob,
        id(&event),
        &[&seat["Floor A-2"], &seat["Floor A-3"]],
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("seats_unavailable")),
        "{refused}"
    );
    assert_eq!(
        refused["error"]["details"]["seat_ids"],
        json!([seat["Floor A-2"]])
    );
    let (status, refused) =
        hold_seats(&app, &bob, id(&event), &[&Uuid::now_v7().to_string()]).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("seats_unavailable")),
        "a seat of no event"
    );
    assert_eq!(app.count::<Hold>().await, 1, "refusals wrote nothing");
    app.assert_ticket_invariant(id(&event)).await;

    let (status, booking) = app
        .post(
            &format!("/api/v1/holds/{}/confirm", id(&hold)),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(labels(&booking["seats"]), ["Floor A-1", "Floor A-2"]);
    let (_, listing) = seats(&app, id(&event)).await;
    assert_eq!(
        listing.iter().filter(|s| s["status"] == "booked").count(),
        2
    );
    app.assert_ticket_invariant(id(&event)).await;
    let (_, mine) = app.get("/api/v1/bookings", Some(&ann.token)).await;
    assert_eq!(
        labels(&mine["items"][0]["seats"]),
        ["Floor A-1", "Floor A-2"]
    );

    // A direct booking by seats, and one by quantity (best available).
    let (status, direct) = app
        .post(
            &format!("/api/v1/events/{}/bookings", id(&event)),
            Some(&bob.token),
            json!({"seat_ids": [seat["Balcony A-3"]]}),
        )
        .await;
    assert_eq!(status, 201, "{direct}");
    assert_eq!(labels(&direct["seats"]), ["Balcony A-3"]);
    let (status, best) = app.book(&bob, id(&event), 2).await;
    assert_eq!(status, 201, "{best}");
    assert_eq!(labels(&best["seats"]), ["Floor A-3", "Floor A-4"]);
    app.assert_ticket_invariant(id(&event)).await;

    // The emails name the seats.
    app.settle_notifications().await;
    let mails = app.smtp.wait_for(3).await;
    assert!(
        mails
            .iter()
            .any(|m| m.text.contains("Seats:    Floor A-1, Floor A-2")),
        "{mails:?}"
    );

    // Cancelling frees exactly the booking's seats.
    let (status, cancelled) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        labels(&cancelled["seats"]),
        ["Floor A-1", "Floor A-2"],
        "still names what it had"
    );
    let (_, listing) = seats(&app, id(&event)).await;
    let taken: Vec<&str> = listing
        .iter()
        .filter(|s| s["status"] != "available")
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(taken, ["Floor A-3", "Floor A-4", "Balcony A-3"]);
    app.assert_ticket_invariant(id(&event)).await;
    let cancellation = app.smtp.wait_for(4).await;
    assert!(
        cancellation
            .iter()
            .any(|m| m.text.contains("its seats (Floor A-1, Floor A-2) released")),
        "{cancellation:?}"
    );

    let (status, body) = app.book(&bob, id(&event), 10).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("sold_out")),
        "8 seats left: {body}"
    );

    // A seated event's capacity is its seat map; seat ids on general admission
    // make no sense.
    let (status, _) = app
        .patch(
            &format!("/api/v1/events/{}", id(&event)),
            Some(&organizer.token),
            json!({"total_tickets": 20}),
        )
        .await;
    assert_eq!(status, 409);
    let ga = app.event(&organizer, 5).await;
    let (status, body) = hold_seats(&app, &bob, id(&ga), &[&seat["Floor B-1"]]).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed"))
    );
}

#[tokio::test]
async fn best_available_takes_adjacent_seats_in_one_row_when_a_row_has_them() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let event = seated_event(
        &app,
        &organizer,
        json!({"sections": [{"name": "Floor", "rows": [{"label": "A", "seats": 4}, {"label": "B", "seats": 4}]}]}),
    )
    .await;
    let (seat, _) = seats(&app, id(&event)).await;
    let first = app.customer().await;
    hold_seats(&app, &first, id(&event), &[&seat["Floor A-2"]]).await;

    // Row A has no three together (A-1 | A-3 A-4): row B does.
    let second = app.customer().await;
    let (_, hold) = app.hold(&second, id(&event), 3).await;
    assert_eq!(
        labels(&hold["seats"]),
        ["Floor B-1", "Floor B-2", "Floor B-3"]
    );
    // Two together: the best-ranked pair is A-3 A-4.
    let third = app.customer().await;
    let (_, hold) = app.hold(&third, id(&event), 2).await;
    assert_eq!(labels(&hold["seats"]), ["Floor A-3", "Floor A-4"]);
    // No pair is left (A-1, B-4): the best seats wherever they are.
    let fourth = app.customer().await;
    let (_, hold) = app.hold(&fourth, id(&event), 2).await;
    assert_eq!(labels(&hold["seats"]), ["Floor A-1", "Floor B-4"]);
    let fifth = app.customer().await;
    let (status, body) = app.hold(&fifth, id(&event), 1).await;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("sold_out")));
    app.assert_ticket_invariant(id(&event)).await;
}

/// 1,000 truly concurrent requests for overlapping sets of seats on a 50-seat
/// event: no seat is held twice, every refusal names seats that really are
/// taken, and the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_for_overlapping_seats_hold_each_seat_once() {
    const REQUESTS: usize = 1000;
    let app = TestApp::spawn_with(|s| s.db_max_connections = 16).await;
    let organizer = app.organizer().await;
    let event = seated_event(
        &app,
        &organizer,
        json!({"sections": [{"name": "Club", "rows": (0..5).map(|r| json!({"label": format!("R{r}"), "seats": 10})).collect::<Vec<_>>()}]}),
    )
    .await;
    let (_, listing) = seats(&app, id(&event)).await;
    let seat_ids: Vec<String> = listing
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let customers = app.customers(REQUESTS).await;
    let wanted: Vec<Vec<String>> = (0..REQUESTS)
        .map(|i| {
            let size = 1 + i % 3;
            (0..size)
                .map(|k| seat_ids[(i * 7 + k * 11) % 50].clone())
                .collect()
        })
        .collect();

    let url = app.url(&format!("/api/v1/events/{}/holds", id(&event)));
    let requests = customers
        .iter()
        .zip(&wanted)
        .map(|(c, seats)| (url.clone(), c.token.clone(), json!({"seat_ids": seats})))
        .collect();
    let results = all_at_once(requests).await;

    let mut held_seats = BTreeSet::new();
    let mut held_count = 0;
    for (status, body) in &results {
        if *status == 201 {
            for seat in body["seats"].as_array().unwrap() {
                assert!(
                    held_seats.insert(seat["id"].as_str().unwrap().to_owned()),
                    "a seat held twice: {seat}"
                );
                held_count += 1;
            }
        }
    }
    for ((status, body), seats) in results.iter().zip(&wanted) {
        match status {
            201 => {}
            409 => {
                assert_eq!(body["error"]["code"], "seats_unavailable", "{body}");
                let named: Vec<&str> = body["error"]["details"]["seat_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                assert!(!named.is_empty(), "{body}");
                for seat in named {
                    assert!(
                        seats.iter().any(|s| s == seat),
                        "names a seat it did not ask for: {body}"
                    );
                    assert!(
                        held_seats.contains(seat),
                        "names a seat nobody holds: {body}"
                    );
                }
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let event_id: Uuid = id(&event).parse().unwrap();
    let in_db = Seat::find()
        .filter(SeatColumn::EventId.eq(event_id))
        .filter(SeatColumn::Status.eq(SeatStatus::Held))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(in_db, held_count as u64);
    let event = app.assert_ticket_invariant(id(&event)).await;
    assert_eq!(event.held_tickets as usize, held_count);
    println!(
        "overlapping seat stampede: {} holds took {held_count} of 50 seats",
        results.iter().filter(|(s, _)| *s == 201).count()
    );
}

/// A stadium: 100,000 seats created with the event, in one request.
#[tokio::test]
async fn a_hundred_thousand_seat_event_is_created_whole() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let sections: Vec<Value> = (0..10)
        .map(|s| json!({"name": format!("Block {s}"), "rows": (0..20).map(|r| json!({"label": format!("{r}"), "seats": 500})).collect::<Vec<_>>()}))
        .collect();
    let started = Instant::now();
    let event = seated_event(&app, &organizer, json!({"sections": sections})).await;
    let elapsed = started.elapsed();
    assert_eq!(event["total_tickets"], 100_000);
    let seats = Seat::find()
        .filter(SeatColumn::EventId.eq(id(&event).parse::<Uuid>().unwrap()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(seats, 100_000);
    println!("100,000-seat event created over HTTP in {elapsed:?}");
    let customer = app.customer().await;
    let (status, hold) = app.hold(&customer, id(&event), 4).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(
        labels(&hold["seats"]),
        ["Block 0 0-1", "Block 0 0-2", "Block 0 0-3", "Block 0 0-4"]
    );
}

/// A house with no two free seats together for its first 500 free seats: best
/// available reads on, page by page, to the first pair.
#[tokio::test]
async fn best_available_reads_past_a_checkerboard_to_the_first_adjacent_pair() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let event = seated_event(
        &app,
        &organizer,
        json!({"sections": [{"name": "Hall", "rows": [{"label": "A", "seats": 1000}, {"label": "B", "seats": 10}]}]}),
    )
    .await;
    let (seat, _) = seats(&app, id(&event)).await;
    let customers = app.customers(50).await;
    for (i, customer) in customers.iter().enumerate() {
        let odd: Vec<&str> = (0..10)
            .map(|k| seat[&format!("Hall A-{}", 20 * i + 2 * k + 1)].as_str())
            .collect();
        let (status, body) = hold_seats(&app, customer, id(&event), &odd).await;
        assert_eq!(status, 201, "{body}");
    }
    let customer = app.customer().await;
    let (status, hold) = app.hold(&customer, id(&event), 2).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(labels(&hold["seats"]), ["Hall B-1", "Hall B-2"]);
    app.assert_ticket_invariant(id(&event)).await;
}
