//! Defects found from outside, each pinned by the request that showed it: one
//! answer whatever the cache knows, one place per customer in a line, the
//! waiting room guarding every way to tickets, one effect per idempotency key
//! however slow the first attempt, event times that page, paged seat maps.

use std::collections::BTreeSet;

use entity::prelude::*;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Mode, TestApp, TestUser, id, skipped};

async fn join_waitlist(app: &TestApp, customer: &TestUser, event_id: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/events/{event_id}/waitlist"),
        Some(&customer.token),
        json!({"quantity": 1}),
    )
    .await
}

async fn holds_of(app: &TestApp, customer: &TestUser, query: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/holds{query}"), Some(&customer.token))
        .await
}

#[tokio::test]
async fn a_customer_with_a_hold_is_told_so_whatever_the_sold_out_memory_knows() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob] = [app.customer().await, app.customer().await];
    let event = app.event(&organizer, 2).await;
    let (status, hold) = app.hold(&ann, id(&event), 2).await;
    assert_eq!(status, 201, "{hold}");

    // Bob's refusal leaves the event known sold out; Ann asks again and again,
    // from memory and after it.
    let (status, body) = app.book(&bob, id(&event), 1).await;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("sold_out")));
    for attempt in 0..6 {
        let (status, body) = app.hold(&ann, id(&event), 1).await;
        assert_eq!(
            (
                status,
                &body["error"]["code"],
                &body["error"]["details"]["hold_id"]
            ),
            (409, &json!("hold_exists"), &hold["id"]),
            "attempt {attempt}: {body}"
        );
        if attempt == 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        }
    }
    app.assert_ticket_invariant(id(&event)).await;
}

#[tokio::test]
async fn joining_the_waitlist_again_while_an_offer_is_open_or_taken_keeps_the_place() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob] = [app.customer().await, app.customer().await];
    let event = app.event(&organizer, 1).await;
    let (_, ann_hold) = app.hold(&ann, id(&event), 1).await;
    let (status, place) = join_waitlist(&app, &bob, id(&event)).await;
    assert_eq!(status, 201, "{place}");

    let (status, _) = app
        .delete(&format!("/api/v1/holds/{}", id(&ann_hold)), &ann.token)
        .await;
    assert_eq!(status, 200);
    // The offer is findable without its email.
    let (status, active) = holds_of(&app, &bob, "?status=active").await;
    assert_eq!(status, 200, "{active}");
    let offers = active["items"].as_array().unwrap();
    assert_eq!(offers.len(), 1, "{active}");
    let offer = offers[0].clone();

    let (status, again) = join_waitlist(&app, &bob, id(&event)).await;
    assert_eq!(
        (status, &again["id"], &again["status"]),
        (200, &place["id"], &json!("offered")),
        "{again}"
    );

    let (status, booking) = app
        .post(
            &format!("/api/v1/holds/{}/confirm", id(&offer)),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    let (status, again) = join_waitlist(&app, &bob, id(&event)).await;
    assert_eq!(
        (status, &again["id"]),
        (200, &place["id"]),
        "a taken offer is still the place: {again}"
    );
    let entries = WaitlistEntry::find()
        .filter(WaitlistEntryColumn::UserId.eq(bob.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "one entry: {entries:?}");

    // Newest first, every status; a status no hold has is refused.
    let (_, all) = holds_of(&app, &bob, "").await;
    assert_eq!(all["items"][0]["status"], "confirmed", "{all}");
    let (status, body) = holds_of(&app, &bob, "?status=bogus").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed"))
    );
    let (_, anns) = holds_of(&app, &ann, "?status=released").await;
    assert_eq!(anns["items"][0]["id"], ann_hold["id"], "{anns}");
}

#[tokio::test]
async fn the_waitlist_of_an_event_behind_a_waiting_room_takes_a_pass() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob] = [app.customer().await, app.customer().await];
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "On-sale", "venue": "Arena", "total_tickets": 1,
                "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
                "waiting_room": {"enabled": true, "admit_per_minute": 600, "pass_minutes": 5},
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event);
    let (status, standing) = app
        .post(
            &format!("/api/v1/events/{event_id}/queue"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!((status, &standing["status"]), (200, &json!("admitted")));
    let (status, _) = app.hold(&ann, event_id, 1).await;
    assert_eq!(status, 201);

    // Bob never queued: no way around the line through the waitlist.
    let (status, body) = join_waitlist(&app, &bob, event_id).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("not_admitted")),
        "{body}"
    );
    assert_eq!(
        WaitlistEntry::find()
            .filter(WaitlistEntryColumn::UserId.eq(bob.id))
            .all(&app.db)
            .await
            .unwrap()
            .len(),
        0
    );
}

/// The first attempt waits on the event row (locked here) past the time after
/// which a retry may take its key over; the retry does, and books. When the
/// lock goes, the first attempt must find its claim gone and write nothing.
/// PostgreSQL only: on SQLite the first attempt cannot even claim its key
/// while the database is locked, so the two can never overlap.
#[tokio::test]
async fn a_slow_first_attempt_and_its_retry_book_once() {
    if skipped(Mode::Production) {
        return;
    }
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id: Uuid = id(&event).parse().unwrap();
    {
        use sea_orm::TransactionTrait;
        let lock = app.db.begin().await.unwrap();
        Event::find_by_id(event_id)
            .lock_exclusive()
            .one(&lock)
            .await
            .unwrap();
        let send = |key: &'static str| {
            let request = app
                .http
                .post(app.url(&format!("/api/v1/events/{event_id}/bookings")))
                .bearer_auth(&ann.token)
                .header("Idempotency-Key", key)
                .json(&json!({"quantity": 1}));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        };
        let first = send("slow-order");
        // Its claim is made; now let "more than a minute" pass for it.
        let claim = loop {
            let claims = IdempotencyKey::find()
                .filter(IdempotencyKeyColumn::UserId.eq(ann.id))
                .all(&app.db)
                .await
                .unwrap();
            if let Some(claim) = claims.into_iter().next() {
                break claim;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        app.db
            .execute_unprepared(&format!(
                "UPDATE idempotency_keys SET created_at = created_at - interval '61 seconds' \
                 WHERE user_id = '{}' AND key = '{}'",
                claim.user_id, claim.key
            ))
            .await
            .unwrap();
        let retry = send("slow-order");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        lock.commit().await.unwrap();
        let (first, retry) = (first.await.unwrap(), retry.await.unwrap());
        assert_eq!(retry.0, 201, "the retry took the key over: {retry:?}");
        assert_eq!(
            (first.0, &first.1["error"]["code"]),
            (409, &json!("conflict")),
            "the first attempt lost its claim: {first:?}"
        );
        let bookings: Vec<Uuid> = Booking::find()
            .select_only()
            .column(BookingColumn::Id)
            .filter(BookingColumn::UserId.eq(ann.id))
            .into_tuple()
            .all(&app.db)
            .await
            .unwrap();
        assert_eq!(bookings.len(), 1, "one key, one booking");
        let (status, replay) = app
            .post_with_key(
                &format!("/api/v1/events/{event_id}/bookings"),
                &ann.token,
                "slow-order",
                json!({"quantity": 1}),
            )
            .await;
        assert_eq!((status, &replay["id"]), (201, &retry.1["id"]));
    }
    app.assert_ticket_invariant(&event_id.to_string()).await;
}

/// Confirming a hold that is already confirmed, under a new key: the key
/// remembers that answer, and its repeats get it again, not a 409.
#[tokio::test]
async fn a_new_key_for_an_old_confirmation_remembers_its_answer() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id: Uuid = id(&event).parse().unwrap();
    let (_, hold) = app.hold(&ann, &event_id.to_string(), 1).await;
    let confirm = format!("/api/v1/holds/{}/confirm", id(&hold));
    let (status, booking) = app.post(&confirm, Some(&ann.token), json!({})).await;
    assert_eq!(status, 201, "{booking}");
    for _ in 0..2 {
        let (status, again) = app
            .post_with_key(&confirm, &ann.token, "late-key", json!({}))
            .await;
        assert_eq!((status, &again["id"]), (201, &booking["id"]), "{again}");
    }
    app.assert_ticket_invariant(&event_id.to_string()).await;
}

#[tokio::test]
async fn event_times_outside_the_supported_years_are_refused_and_paging_works() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    for (starts_at, ends_at) in [
        ("0000-01-01T00:00:00+23:59", "2030-05-01T23:00:00Z"),
        ("2030-05-01T19:00:00Z", "9999-12-31T23:00:00-23:59"),
        ("1999-12-31T23:59:59Z", "2030-05-01T23:00:00Z"),
        ("2030-05-01T19:00:00Z", "2201-01-01T00:00:00Z"),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                json!({"title": "T", "venue": "V", "total_tickets": 1,
                       "starts_at": starts_at, "ends_at": ends_at}),
            )
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (422, &json!("validation_failed")),
            "{starts_at} – {ends_at}: {body}"
        );
    }
    let event = app.event(&organizer, 1).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{}", id(&event)),
            Some(&organizer.token),
            json!({"ends_at": "9999-12-31T23:00:00-23:59"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed"))
    );

    // The edges of the range page like any other time.
    for (starts_at, ends_at) in [
        ("2000-01-01T00:00:00Z", "2000-01-01T01:00:00Z"),
        ("2200-12-31T22:00:00Z", "2200-12-31T23:59:59Z"),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                json!({"title": "Edge", "venue": "V", "total_tickets": 1,
                       "starts_at": starts_at, "ends_at": ends_at}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events?limit=1&cursor={c}"),
            None => "/api/v1/events?limit=1".into(),
        };
        let (status, page) = app.get(&path, None).await;
        assert_eq!(status, 200, "{page}");
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 3);
}

#[tokio::test]
async fn queue_statistics_never_count_more_waiting_than_joined() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customers = app.customers(60).await;
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "On-sale", "venue": "Arena", "total_tickets": 100,
                "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
                "waiting_room": {"enabled": true, "admit_per_minute": 1, "pass_minutes": 5},
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event).to_owned();
    let joins = customers.iter().map(|customer| {
        let request = app
            .http
            .post(app.url(&format!("/api/v1/events/{event_id}/queue")))
            .bearer_auth(&customer.token);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let reads = async {
        let mut readings = Vec::new();
        for _ in 0..40 {
            let (status, stats) = app
                .get(
                    &format!("/api/v1/events/{event_id}/queue"),
                    Some(&organizer.token),
                )
                .await;
            assert_eq!(status, 200, "{stats}");
            readings.push(stats);
        }
        readings
    };
    let (statuses, readings) = tokio::join!(futures::future::join_all(joins), reads);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for stats in readings {
        let total: u64 = ["waiting", "admitted", "expired"]
            .iter()
            .map(|k| stats[k].as_u64().unwrap())
            .sum();
        assert!(total <= 60, "{stats}");
    }
}

#[tokio::test]
async fn a_large_seat_map_is_read_a_page_at_a_time_or_as_free_runs() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let rows: Vec<Value> = (0..50)
        .map(|r| json!({"label": format!("R{r}"), "seats": 50}))
        .collect();
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Big hall", "venue": "Arena",
                "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
                "seating": {"sections": [{"name": "Floor", "rows": rows}]},
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event);

    let mut ids = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events/{event_id}/seats?cursor={c}"),
            None => format!("/api/v1/events/{event_id}/seats"),
        };
        let (status, page) = app.get(&path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        pages.push(items.len());
        ids.extend(items.iter().map(|s| id(s).to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, [1_000, 1_000, 500]);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 2_500);
    let (_, small) = app
        .get(&format!("/api/v1/events/{event_id}/seats?limit=3"), None)
        .await;
    assert_eq!(
        small["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["label"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Floor R0-1", "Floor R0-2", "Floor R0-3"]
    );
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=abc",
        "cursor=-5",
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/events/{event_id}/seats?{bad}"), None)
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (422, &json!("validation_failed")),
            "{bad}: {body}"
        );
    }

    // Seats 10 and 11 of the first row taken: that row is two runs.
    let taken = [ids[9].clone(), ids[10].clone()];
    let (status, hold) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&ann.token),
            json!({"seat_ids": taken}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    let (status, free) = app
        .get(&format!("/api/v1/events/{event_id}/seats/free"), None)
        .await;
    assert_eq!(status, 200, "{free}");
    let runs = free["items"].as_array().unwrap();
    assert_eq!(runs.len(), 51, "{}", runs.len());
    assert_eq!(
        &runs[..3],
        [
            json!({"section": "Floor", "row": "R0", "from": 1, "to": 9}),
            json!({"section": "Floor", "row": "R0", "from": 12, "to": 50}),
            json!({"section": "Floor", "row": "R1", "from": 1, "to": 50}),
        ]
    );
    let (status, _) = app
        .get(
            &format!("/api/v1/events/{event_id}/seats/free?section=Balcony"),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

/// A mail server that accepts connections and never says a word: each send
/// gives up at its deadline and is retried, and health says email is stuck.
#[tokio::test]
async fn a_mail_server_that_never_answers_times_sends_out_and_health_says_so() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            connections.push(stream);
        }
    });
    let app = TestApp::spawn_with(|settings| {
        settings.worker.mail.smtp_url = Some(format!("smtp://{silent_addr}"));
        settings.worker.mail.send_timeout = std::time::Duration::from_millis(300);
        settings.worker.delivery.max_attempts = 20;
        settings.worker.delivery.retry_cap = std::time::Duration::from_millis(200);
    })
    .await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 5).await;
    let (status, _) = app.book(&ann, id(&event), 1).await;
    assert_eq!(status, 201);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let notifications = app.notifications().await;
        let retried = notifications.iter().any(|n| {
            n.attempts >= 3
                && n.status == NotificationStatus::Pending
                && n.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("did not finish"))
        });
        if retried && app.mail_stuck().await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sends never timed out: {notifications:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    held.abort();
}

async fn open_live(app: &TestApp, event_id: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/api/v1/events/{event_id}/live")))
        .send()
        .await
        .unwrap()
}

/// Streams are capped per client address and in all (429 past either), and a
/// closed stream leaves nothing behind: no slot, no client, no watched event.
#[tokio::test]
async fn live_streams_are_capped_and_closed_ones_leave_nothing_behind() {
    let app = TestApp::spawn_with(|settings| {
        settings.rate_limits.enabled = true;
        settings.rate_limits.live_streams_per_client = 3;
    })
    .await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 5).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let stream = open_live(&app, id(&event)).await;
        assert_eq!(stream.status(), 200);
        open.push(stream);
    }
    let refused = open_live(&app, id(&event)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(app.live.held(), (3, 1, 1));

    drop(open);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    while app.live.held() != (0, 0, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "still held after the streams closed: {:?}",
            app.live.held()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(open_live(&app, id(&event)).await.status(), 200);

    // The total bound holds with limits off (as for load tests).
    let app = TestApp::spawn_with(|settings| settings.rate_limits.live_streams_total = 2).await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 5).await;
    let _first = open_live(&app, id(&event)).await;
    let _second = open_live(&app, id(&event)).await;
    assert_eq!(open_live(&app, id(&event)).await.status(), 429);
}

/// A client that announces a body and stops sending part-way is answered (and
/// let go) at the body deadline instead of holding its connection for ever.
/// (It sends more than 14 bytes: Rocket 0.5 itself waits for the first 14 of
/// every body, for its `_method` check, before any guard of ours runs.)
#[tokio::test]
async fn a_body_that_stalls_part_way_is_answered_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\": \"ann@example"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(
        api::http::json::BODY_DEADLINE + std::time::Duration::from_secs(5),
        stream.read(&mut answer),
    )
    .await
    .expect("answered before the test's own deadline")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive"), "{answer}");
    assert!(
        started.elapsed() >= api::http::json::BODY_DEADLINE - std::time::Duration::from_secs(1)
    );
}

/// Several edits in a row make one email per customer listing every change
/// (a field changed back is no change), and organizer writes are limited.
#[tokio::test]
async fn edits_in_a_row_make_one_update_email_per_customer() {
    let app = TestApp::spawn_with(|settings| {
        settings.event_update_delay = std::time::Duration::from_secs(2);
    })
    .await;
    let organizer = app.organizer().await;
    let [ann, bob] = [app.customer().await, app.customer().await];
    let event = app.event(&organizer, 10).await;
    let path = format!("/api/v1/events/{}", id(&event));
    app.book(&ann, id(&event), 1).await;
    app.book(&bob, id(&event), 1).await;
    for patch in [
        json!({"title": "Night of Rust II"}),
        json!({"venue": "Grand Hall"}),
        json!({"title": "Night of Rust III"}),
        json!({"description": "Changed"}),
        json!({"description": "Talks and music"}),
    ] {
        let (status, body) = app.patch(&path, Some(&organizer.token), patch).await;
        assert_eq!(status, 200, "{body}");
    }
    let updates = |mails: Vec<crate::smtp::Mail>| -> Vec<crate::smtp::Mail> {
        mails
            .into_iter()
            .filter(|m| m.subject().starts_with("Event changed"))
            .collect()
    };
    assert!(
        updates(app.smtp.messages()).is_empty(),
        "none before the delay"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    app.settle_notifications().await;
    for customer in [&ann, &bob] {
        let mine = updates(app.smtp.to(&customer.email));
        assert_eq!(mine.len(), 1, "one email for five edits");
        let text = &mine[0].text;
        assert!(text.contains("Night of Rust → Night of Rust III"), "{text}");
        assert!(text.contains("Hall A → Grand Hall"), "{text}");
        assert!(!text.contains("Changed"), "changed back: {text}");
    }

    let limited = TestApp::spawn_with(|settings| {
        settings.rate_limits.enabled = true;
        settings.rate_limits.organizer_writes = api::http::rate_limit::Limit {
            max: 2,
            window: std::time::Duration::from_secs(3600),
        };
    })
    .await;
    let organizer = limited.organizer().await;
    let event = limited.event(&organizer, 10).await;
    let path = format!("/api/v1/events/{}", id(&event));
    let (status, _) = limited
        .patch(&path, Some(&organizer.token), json!({"title": "Two"}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = limited
        .patch(&path, Some(&organizer.token), json!({"title": "Three"}))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("rate_limited"))
    );
}

/// The outbox is counted at most once per few seconds however often
/// `/metrics` is scraped, and `METRICS_TOKEN` closes the endpoint to others.
#[tokio::test]
async fn metrics_count_the_outbox_once_per_interval_and_can_want_a_token() {
    let app =
        TestApp::spawn_with(|settings| settings.metrics_token = Some("scrape-me".into())).await;
    let cache = api::metrics::OutboxCounts::default();
    let before = api::metrics::outbox_counts(&app.db, &cache).await.unwrap();
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let event = app.event(&organizer, 5).await;
    app.book(&ann, id(&event), 1).await;
    app.settle_notifications().await;
    let cached = api::metrics::outbox_counts(&app.db, &cache).await.unwrap();
    assert_eq!(cached, before, "read again within the interval");
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    let fresh = api::metrics::outbox_counts(&app.db, &cache).await.unwrap();
    assert_ne!(fresh, before, "read afresh after it");

    let scrape = |token: Option<&'static str>| {
        let mut request = app.http.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let refused = scrape(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(scrape(Some("wrong")).await.unwrap().status(), 401);
    let scraped = scrape(Some("scrape-me")).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("notifications{"));
}
