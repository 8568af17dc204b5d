//! Batched selling (`domain::box_office`), through two api processes at once:
//! every answer checked against the database, no false refusals, and the
//! sold-out memory learning that tickets came back.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use entity::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Shot, TestApp, fire_together, id};

fn uuid_of(body: &Value) -> Uuid {
    id(body).parse().unwrap()
}

/// What each shot of the mixed run was.
enum Sent {
    /// `repeated`: followed by a [`Sent::Repeat`] with the same key.
    Booking {
        customer: Uuid,
        quantity: i64,
        repeated: bool,
    },
    /// The same booking sent twice with one key: shots `first` and this.
    Repeat {
        first: usize,
    },
    Hold {
        customer: Uuid,
        quantity: i64,
    },
    Cancel {
        booking: Uuid,
    },
}

/// Thousands of bookings (some with idempotency keys, some of those sent
/// twice), holds and cancellations of earlier bookings, released at once over
/// two api processes. Every 201 is a row as answered, every refusal says why,
/// and the counters are exactly the rows.
#[tokio::test]
async fn mixed_traffic_through_two_processes_agrees_with_the_database() {
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let bases = [app.address.clone(), second];
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 1_500).await;
    let event_id = id(&event).to_owned();
    let customers = app.customers(1_600).await;
    let mut rng = StdRng::seed_from_u64(11);

    // Bookings to cancel during the run.
    let mut earlier = Vec::new();
    for customer in &customers[..100] {
        let (status, booking) = app.book(customer, &event_id, 2).await;
        assert_eq!(status, 201, "{booking}");
        earlier.push(uuid_of(&booking));
    }

    let url = |i: usize, path: &str| format!("{}/api/v1{path}", bases[i % bases.len()]);
    let mut shots = Vec::new();
    let mut sent = Vec::new();
    for (i, (customer, booking)) in customers[..100].iter().zip(&earlier).enumerate() {
        shots.push(Shot {
            url: url(i, &format!("/bookings/{booking}/cancel")),
            token: customer.token.clone(),
            body: json!({}),
            idempotency_key: None,
        });
        sent.push(Sent::Cancel { booking: *booking });
    }
    for (i, customer) in customers[100..].iter().enumerate() {
        let quantity = rng.random_range(1..=3);
        let body = json!({"quantity": quantity});
        if i % 4 == 0 {
            shots.push(Shot {
                url: url(i, &format!("/events/{event_id}/holds")),
                token: customer.token.clone(),
                body,
                idempotency_key: None,
            });
            sent.push(Sent::Hold {
                customer: customer.id,
                quantity,
            });
            continue;
        }
        let key = (i % 3 == 0).then(|| format!("mixed-{i}"));
        shots.push(Shot {
            url: url(i, &format!("/events/{event_id}/bookings")),
            token: customer.token.clone(),
            body: body.clone(),
            idempotency_key: key.clone(),
        });
        let repeated = i % 6 == 0;
        sent.push(Sent::Booking {
            customer: customer.id,
            quantity,
            repeated,
        });
        if repeated {
            // The same request again, through the other process.
            shots.push(Shot {
                url: url(i + 1, &format!("/events/{event_id}/bookings")),
                token: customer.token.clone(),
                body,
                idempotency_key: key,
            });
            sent.push(Sent::Repeat {
                first: sent.len() - 1,
            });
        }
    }
    let answers = fire_together(shots).await;

    let bookings: HashMap<Uuid, BookingModel> = Booking::find()
        .filter(BookingColumn::EventId.eq(uuid_of(&event)))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.id, b))
        .collect();
    let holds: HashMap<Uuid, HoldModel> = Hold::find()
        .filter(HoldColumn::EventId.eq(uuid_of(&event)))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    let mut answered_bookings = HashSet::new();
    for (i, ((status, body), what)) in answers.iter().zip(&sent).enumerate() {
        match what {
            Sent::Booking {
                customer,
                quantity,
                repeated,
            } => match status {
                201 => {
                    let row = &bookings[&uuid_of(body)];
                    assert_eq!(
                        (row.user_id, i64::from(row.quantity), row.status),
                        (*customer, *quantity, BookingStatus::Confirmed),
                        "shot {i}: {body}"
                    );
                    answered_bookings.insert(row.id);
                }
                409 if *repeated && body["error"]["code"] == "conflict" => {}
                409 => assert_eq!(body["error"]["code"], "sold_out", "shot {i}: {body}"),
                _ => panic!("shot {i}: {status} {body}"),
            },
            Sent::Repeat { first } => {
                let (first_status, first_body) = &answers[*first];
                let code = |body: &Value| body["error"]["code"].as_str().map(str::to_owned);
                match (first_status, status) {
                    // Both answered with the one booking.
                    (201, 201) => assert_eq!(id(first_body), id(body), "shot {i}"),
                    // The other waited on the key while the booking was made.
                    (201, 409) => assert_eq!(code(body).as_deref(), Some("conflict"), "shot {i}"),
                    (409, 201) => {
                        assert_eq!(code(first_body).as_deref(), Some("conflict"), "shot {i}")
                    }
                    (409, 409) => {
                        for code in [code(first_body), code(body)] {
                            assert!(
                                matches!(code.as_deref(), Some("conflict" | "sold_out")),
                                "shot {i}: {first_body} / {body}"
                            );
                        }
                    }
                    _ => panic!("shot {i}: {first_status} {first_body} / {status} {body}"),
                }
                if *status == 201 {
                    answered_bookings.insert(uuid_of(body));
                }
            }
            Sent::Hold { customer, quantity } => match status {
                201 => {
                    let row = &holds[&uuid_of(body)];
                    assert_eq!(
                        (row.user_id, i64::from(row.quantity), row.status),
                        (*customer, *quantity, HoldStatus::Active),
                        "shot {i}: {body}"
                    );
                }
                409 => assert_eq!(body["error"]["code"], "sold_out", "shot {i}: {body}"),
                _ => panic!("shot {i}: {status} {body}"),
            },
            Sent::Cancel { booking } => {
                assert_eq!(*status, 200, "shot {i}: {body}");
                assert_eq!(bookings[booking].status, BookingStatus::Cancelled);
            }
        }
    }
    // No booking the database has that no answer gave out (nor the reverse).
    let made: HashSet<Uuid> = bookings
        .keys()
        .copied()
        .filter(|b| !earlier.contains(b))
        .collect();
    assert_eq!(made, answered_bookings);
    let held = answers
        .iter()
        .zip(&sent)
        .filter(|((status, _), what)| *status == 201 && matches!(what, Sent::Hold { .. }))
        .count();
    assert_eq!(held, holds.len());
    app.assert_ticket_invariant(&event_id).await;
}

/// Only bookings, of 1 to 4 tickets, more than there are, over two processes:
/// a request refused as sold out asked for more than were left at the end.
#[tokio::test]
async fn no_booking_is_refused_while_the_event_could_serve_it() {
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let bases = [app.address.clone(), second];
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 700).await;
    let event_id = id(&event).to_owned();
    let customers = app.customers(600).await;
    let mut rng = StdRng::seed_from_u64(7);
    let quantities: Vec<i64> = customers.iter().map(|_| rng.random_range(1..=4)).collect();
    let shots = customers
        .iter()
        .zip(&quantities)
        .enumerate()
        .map(|(i, (customer, quantity))| Shot {
            url: format!(
                "{}/api/v1/events/{event_id}/bookings",
                bases[i % bases.len()]
            ),
            token: customer.token.clone(),
            body: json!({"quantity": quantity}),
            idempotency_key: None,
        })
        .collect();
    let answers = fire_together(shots).await;

    let after = app.assert_ticket_invariant(&event_id).await;
    let available = i64::from(after.available_tickets);
    let mut booked = 0;
    for ((status, body), quantity) in answers.iter().zip(&quantities) {
        match status {
            201 => booked += quantity,
            409 => {
                assert_eq!(body["error"]["code"], "sold_out", "{body}");
                assert!(
                    *quantity > available,
                    "{quantity} refused while {available} are left: {body}"
                );
            }
            _ => panic!("{status} {body}"),
        }
    }
    assert_eq!(booked, i64::from(after.booked_tickets));
    assert!(
        available < 4,
        "{available} left although 1,600+ were asked for"
    );
}

/// A process that has seen an event sold out refuses from memory, and hears
/// within a second when tickets come back through another process.
#[tokio::test]
async fn a_process_learns_that_sold_out_tickets_came_back() {
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 2).await;
    let event_id = id(&event).to_owned();
    let customers = app.customers(3).await;
    let (status, booking) = app.book(&customers[0], &event_id, 2).await;
    assert_eq!(status, 201, "{booking}");

    let book_on_second = |customer: usize| {
        let http = reqwest::Client::new();
        let url = format!("{second}/api/v1/events/{event_id}/bookings");
        let token = customers[customer].token.clone();
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"quantity": 1}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for _ in 0..3 {
        let (status, body) = book_on_second(1).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (409, &json!("sold_out")),
            "{body}"
        );
    }

    let (status, cancelled) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&customers[0].token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let returned = Instant::now();
    loop {
        let (status, body) = book_on_second(2).await;
        if status == 201 {
            break;
        }
        assert_eq!(body["error"]["code"], "sold_out", "{body}");
        assert!(
            returned.elapsed() < Duration::from_secs(2),
            "still refused {:?} after the tickets came back",
            returned.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.assert_ticket_invariant(&event_id).await;
}

/// `GET /events/{id}` is answered from what the process knows: a change made
/// through it shows at once, one made through another process within a second.
#[tokio::test]
async fn an_event_read_is_never_behind_its_own_process_and_soon_caught_up_elsewhere() {
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = id(&event).to_owned();
    let read_on = |base: String| {
        let http = reqwest::Client::new();
        let url = format!("{base}/api/v1/events/{event_id}");
        async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    // Both processes have read it, so both remember it.
    assert_eq!(read_on(app.address.clone()).await["title"], "Night of Rust");
    assert_eq!(read_on(second.clone()).await["available_tickets"], 10);

    let (status, patched) = app
        .patch(
            &format!("/api/v1/events/{event_id}"),
            Some(&organizer.token),
            json!({"title": "Night of Rust, moved"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        read_on(app.address.clone()).await["title"],
        "Night of Rust, moved"
    );
    let customer = &app.customers(1).await[0];
    let (status, booking) = app.book(customer, &event_id, 3).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(read_on(app.address.clone()).await["available_tickets"], 7);

    let changed = Instant::now();
    loop {
        let seen = read_on(second.clone()).await;
        if seen["available_tickets"] == 7 && seen["title"] == "Night of Rust, moved" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "the other process still shows {seen} after {:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Best-available bookings and holds of 1 to 3 seats on a seated event, more
/// than it has, released at once over two processes: they go in batches too,
/// each answer names as many seats as it asked for, no seat is given twice,
/// and the seats, counters and rows agree.
#[tokio::test]
async fn seated_best_available_requests_are_batched_and_give_no_seat_twice() {
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let bases = [app.address.clone(), second];
    let organizer = app.organizer().await;
    let rows: Vec<Value> = (1..=10)
        .map(|row| json!({"label": row.to_string(), "seats": 10}))
        .collect();
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Seated stampede",
                "venue": "Hall B",
                "starts_at": "2030-05-01T19:00:00Z",
                "ends_at": "2030-05-01T23:00:00Z",
                "seating": {"sections": [{"name": "Floor", "rows": rows}]},
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event).to_owned();
    let customers = app.customers(200).await;
    let mut rng = StdRng::seed_from_u64(5);
    let asked: Vec<(i64, &str)> = customers
        .iter()
        .map(|_| {
            let what = if rng.random_bool(0.5) {
                "bookings"
            } else {
                "holds"
            };
            (rng.random_range(1..=3), what)
        })
        .collect();
    let shots = customers
        .iter()
        .zip(&asked)
        .enumerate()
        .map(|(i, (customer, (quantity, what)))| Shot {
            url: format!("{}/api/v1/events/{event_id}/{what}", bases[i % bases.len()]),
            token: customer.token.clone(),
            body: json!({"quantity": quantity}),
            idempotency_key: None,
        })
        .collect();
    let answers = fire_together(shots).await;

    let mut given = HashSet::new();
    let mut taken = 0;
    for ((status, body), (quantity, _)) in answers.iter().zip(&asked) {
        match status {
            201 => {
                let seats = body["seats"].as_array().unwrap();
                assert_eq!(seats.len() as i64, *quantity, "{body}");
                for seat in seats {
                    assert!(given.insert(seat["id"].clone()), "seat given twice: {seat}");
                }
                taken += quantity;
            }
            409 => assert_eq!(body["error"]["code"], "sold_out", "{body}"),
            _ => panic!("{status} {body}"),
        }
    }
    let after = app.assert_ticket_invariant(&event_id).await;
    assert_eq!(
        taken,
        i64::from(after.held_tickets + after.booked_tickets),
        "{after:?}"
    );
    assert!(after.available_tickets < 3, "{after:?}");
}
