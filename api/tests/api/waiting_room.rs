//! The on-sale and its waiting room (SPEC §10).

use std::time::Duration;

use chrono::Utc;
use entity::prelude::*;
use futures::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::{Mode, TestApp, TestUser, all_at_once, id, skipped};

async fn event_with(app: &TestApp, organizer: &TestUser, extra: Value) -> Value {
    let mut body = json!({
        "title": "On-sale", "venue": "Arena", "total_tickets": 1000,
        "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, event) = app
        .post("/api/v1/events", Some(&organizer.token), body)
        .await;
    assert_eq!(status, 201, "{event}");
    event
}

async fn join(app: &TestApp, base: &str, customer: &TestUser, event_id: &str) -> Value {
    let response = app
        .http
        .post(format!("{base}/api/v1/events/{event_id}/queue"))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

/// An event whose waiting room (`per_minute`, passes of 10 minutes) opens in
/// ten minutes, with `early` customers in line: the organizer, the event's id
/// and the early joiners.
async fn line_of_early_joiners(
    app: &TestApp,
    per_minute: i64,
    early: usize,
) -> (TestUser, String, Vec<TestUser>) {
    let organizer = app.organizer().await;
    let event = event_with(
        app,
        &organizer,
        json!({"on_sale_at": (Utc::now() + chrono::Duration::minutes(10)).to_rfc3339(),
               "waiting_room": {"enabled": true, "admit_per_minute": per_minute, "pass_minutes": 10}}),
    )
    .await;
    let event_id = id(&event).to_owned();
    let early_joiners = app.customers(early).await;
    for customer in &early_joiners {
        join(app, &app.address, customer, &event_id).await;
    }
    (organizer, event_id, early_joiners)
}

/// Moves the event's on-sale to `from_now` from now (to the millisecond, as
/// the api keeps it); returns the new on-sale.
async fn move_on_sale(
    app: &TestApp,
    organizer: &TestUser,
    event_id: &str,
    from_now: chrono::Duration,
) -> chrono::DateTime<Utc> {
    let on_sale = chrono::DurationRound::duration_round(
        Utc::now() + from_now,
        chrono::Duration::milliseconds(1),
    )
    .unwrap();
    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{event_id}"),
            Some(&organizer.token),
            json!({"on_sale_at": on_sale.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    on_sale
}

#[tokio::test]
async fn nothing_is_held_or_booked_before_the_on_sale() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let on_sale = Utc::now() + chrono::Duration::seconds(2);
    let event = event_with(
        &app,
        &organizer,
        json!({"on_sale_at": on_sale.to_rfc3339()}),
    )
    .await;
    assert!(event["on_sale_at"].is_string());
    let (status, body) = app.hold(&customer, id(&event), 1).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("not_on_sale")),
        "{body}"
    );
    let (status, body) = app.book(&customer, id(&event), 1).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("not_on_sale")),
        "{body}"
    );
    assert_eq!(app.count::<Hold>().await + app.count::<Booking>().await, 0);

    tokio::time::sleep((on_sale - Utc::now()).to_std().unwrap_or_default()).await;
    let (status, body) = app.book(&customer, id(&event), 1).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn the_waiting_room_lets_in_only_customers_with_a_valid_pass_of_their_own() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob] = [app.customer().await, app.customer().await];
    let event = event_with(
        &app,
        &organizer,
        json!({"waiting_room": {"enabled": true, "admit_per_minute": 60, "pass_minutes": 1}}),
    )
    .await;
    let event_id = id(&event);
    assert_eq!(
        event["waiting_room"],
        json!({"enabled": true, "admit_per_minute": 60, "pass_minutes": 1})
    );

    let (status, body) = app.book(&ann, event_id, 1).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("not_admitted")),
        "{body}"
    );
    let (status, body) = app.hold(&ann, event_id, 1).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("not_admitted")),
        "{body}"
    );

    // The line is empty and the sale is on: admitted at once.
    let standing = join(&app, &app.address, &ann, event_id).await;
    assert_eq!(standing["status"], "admitted", "{standing}");
    let expires: chrono::DateTime<Utc> = standing["pass_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((expires - Utc::now()).num_seconds() > 50);
    let (status, body) = app.book(&ann, event_id, 1).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app.book(&bob, event_id, 1).await;
    assert_eq!(status, 403, "a pass is its customer's own");

    // Bob joins right after Ann: his turn is one interval (a second) later.
    let standing = join(&app, &app.address, &bob, event_id).await;
    assert_eq!(
        (&standing["status"], &standing["position"]),
        (&json!("waiting"), &json!(1)),
        "{standing}"
    );
    let (status, body) = app.hold(&bob, event_id, 2).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("not_admitted")),
        "not before his turn: {body}"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = app
        .get(
            &format!("/api/v1/events/{event_id}/queue/me"),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.hold(&bob, event_id, 2).await;
    assert_eq!(status, 201, "{body}");

    // A pass that has run out lets nobody in.
    QueueEntry::update_many()
        .col_expr(
            QueueEntryColumn::AdmitAt,
            Expr::value(Some(Utc::now() - chrono::Duration::minutes(2))),
        )
        .filter(QueueEntryColumn::UserId.eq(ann.id))
        .exec(&app.db)
        .await
        .unwrap();
    let (_, standing) = app
        .get(
            &format!("/api/v1/events/{event_id}/queue/me"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(standing["status"], "expired", "{standing}");
    let (status, _) = app.book(&ann, event_id, 1).await;
    assert_eq!(status, 403);

    let (status, stats) = app
        .get(
            &format!("/api/v1/events/{event_id}/queue"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        stats,
        json!({"waiting": 0, "admitted": 1, "expired": 1, "served": 2})
    );
    app.assert_ticket_invariant(event_id).await;

    let plain = app.event(&organizer, 5).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{}/queue", id(&plain)),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("conflict")));
}

/// SPEC §10's proof: 2,000 customers join before the on-sale. The admission
/// order is a random permutation of the join order (a rank correlation that
/// fails on first-come-first-served), and two api processes agree on who is in
/// at every moment: exactly `admit_per_minute` a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_joiners_are_admitted_in_a_random_order_at_the_set_rate() {
    const CUSTOMERS: usize = 2000;
    const PER_MINUTE: i64 = 6_000; // one every 10 ms: 20 s for the whole line
    let app = TestApp::spawn_with(|s| s.db_max_connections = 16).await;
    let (second, _shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    // Far off while everyone joins, however slow the machine; brought forward
    // once they have.
    let on_sale = Utc::now() + chrono::Duration::minutes(10);
    let event = event_with(
        &app,
        &organizer,
        json!({"on_sale_at": on_sale.to_rfc3339(),
               "waiting_room": {"enabled": true, "admit_per_minute": PER_MINUTE, "pass_minutes": 10}}),
    )
    .await;
    let event_id = id(&event).to_owned();
    let customers = app.customers(CUSTOMERS).await;
    for (i, chunk) in customers.chunks(50).enumerate() {
        let base = if i % 2 == 0 { &app.address } else { &second };
        let joined = join_all(chunk.iter().map(|c| join(&app, base, c, &event_id))).await;
        for standing in joined {
            assert_eq!(
                (standing["status"].as_str(), &standing["position"]),
                (Some("waiting"), &Value::Null)
            );
        }
    }
    assert!(Utc::now() < on_sale, "all joined before the on-sale");
    let on_sale = move_on_sale(&app, &organizer, &event_id, chrono::Duration::seconds(1)).await;

    // The order: rank, against the order of joining.
    let entries = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_id.parse::<uuid::Uuid>().unwrap()))
        .order_by_asc(QueueEntryColumn::JoinedAt)
        .order_by_asc(QueueEntryColumn::Rank)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(entries.len(), CUSTOMERS);
    let mut by_rank: Vec<(i64, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.rank, i))
        .collect();
    by_rank.sort();
    let n = CUSTOMERS as f64;
    let d2: f64 = by_rank
        .iter()
        .enumerate()
        .map(|(admitted, (_, joined))| (admitted as f64 - *joined as f64).powi(2))
        .sum();
    let spearman = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    eprintln!("rank correlation of admission order with join order: {spearman:.3}");
    assert!(
        spearman.abs() < 0.1,
        "admission follows join order: rho = {spearman}"
    );

    // At the on-sale, both processes count the same admissions, one every 10 ms.
    tokio::time::sleep(
        (on_sale - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500),
    )
    .await;
    let interval_ms = 60_000.0 / PER_MINUTE as f64;
    for base in [&app.address, &second, &app.address, &second] {
        let before = (Utc::now() - on_sale).num_microseconds().unwrap() as f64 / 1000.0;
        let stats: Value = app
            .http
            .get(format!("{base}/api/v1/events/{event_id}/queue"))
            .bearer_auth(&organizer.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let after = (Utc::now() - on_sale).num_microseconds().unwrap() as f64 / 1000.0;
        let reached = stats["admitted"].as_f64().unwrap() + stats["expired"].as_f64().unwrap();
        let (low, high) = (
            (before / interval_ms).floor() + 1.0,
            (after / interval_ms).floor() + 1.0,
        );
        assert!(
            high < n,
            "the premise: read while the line is still being admitted ({after:.0} ms in)"
        );
        assert!(
            (low..=high).contains(&reached),
            "{reached} admitted {before:.0}–{after:.0} ms after the on-sale: {stats}"
        );
        assert_eq!(stats["waiting"].as_f64().unwrap() + reached, n);
    }
    // The first in the line is in; the last is told where they stand.
    let customer = |entry: usize| {
        let user_id = entries[entry].user_id;
        customers.iter().find(|c| c.id == user_id).unwrap()
    };
    let first = customer(by_rank[0].1);
    let last = customer(by_rank[CUSTOMERS - 1].1);
    let (_, standing) = app
        .get(
            &format!("/api/v1/events/{event_id}/queue/me"),
            Some(&first.token),
        )
        .await;
    assert_eq!(standing["status"], "admitted");
    let (status, _) = app.book(first, &event_id, 1).await;
    assert_eq!(status, 201);
    let standing: Value = app
        .http
        .get(format!("{second}/api/v1/events/{event_id}/queue/me"))
        .bearer_auth(&last.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(standing["status"], "waiting", "{standing}");
    assert!(standing["position"].as_i64().unwrap() >= 1);
    assert!(standing["estimated_wait_secs"].as_i64().unwrap() <= 20);
    // Joining again changes nothing.
    let again = join(&app, &second, first, &event_id).await;
    assert_eq!(again["status"], "admitted");
}

/// A customer waiting in line sees their place on the live stream, and then
/// their admission; anonymous subscribers see only availability.
#[tokio::test]
async fn a_waiting_customer_sees_their_place_on_the_live_stream() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob] = [app.customer().await, app.customer().await];
    let event = event_with(
        &app,
        &organizer,
        json!({"waiting_room": {"enabled": true, "admit_per_minute": 30, "pass_minutes": 5}}),
    )
    .await;
    let event_id = id(&event);
    assert_eq!(
        join(&app, &app.address, &ann, event_id).await["status"],
        "admitted"
    );
    // Bob's turn comes one interval (2 s) after Ann's.
    assert_eq!(
        join(&app, &app.address, &bob, event_id).await["status"],
        "waiting"
    );

    let mut live =
        crate::live::Subscription::open_as(&app.address, event_id, Some(&bob.token)).await;
    let waiting = live
        .next_of("queue", Duration::from_secs(2))
        .await
        .expect("a queue event");
    assert_eq!(
        (waiting["status"].as_str(), waiting["position"].as_i64()),
        (Some("waiting"), Some(1))
    );
    let admitted = live
        .next_of("queue", Duration::from_secs(4))
        .await
        .expect("admission");
    assert_eq!(admitted["status"], "admitted", "{admitted}");

    let mut anonymous = crate::live::Subscription::open(&app.address, event_id).await;
    assert!(anonymous.next(Duration::from_secs(1)).await.is_some());
    assert!(
        anonymous
            .next_of("queue", Duration::from_millis(1500))
            .await
            .is_none()
    );
}

/// The line lives in the database: Redis restarting empty, and the api process
/// a customer joined through going away, change no one's place or turn.
#[tokio::test]
async fn places_survive_a_redis_restart_and_an_api_restart() {
    // embedded mode has no Redis; this runs with DATABASE_URL and REDIS_URL.
    if skipped(Mode::Production) {
        return;
    }
    let redis = crate::notifications::PrivateRedis::start();
    let app = TestApp::spawn_with(|s| {
        s.storage.queue = platform::QueueBackend::Redis { url: redis.url() };
    })
    .await;
    let (first_api, first_shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    let customers = app.customers(3).await;
    let event = event_with(
        &app,
        &organizer,
        json!({"waiting_room": {"enabled": true, "admit_per_minute": 6, "pass_minutes": 5}}),
    )
    .await;
    let event_id = id(&event);
    let mut before = Vec::new();
    for customer in &customers {
        before.push(join(&app, &first_api, customer, event_id).await);
    }
    assert_eq!(before[0]["status"], "admitted");
    assert_eq!(before[2]["position"], 2, "{:?}", before[2]);

    redis.stop();
    redis.start_again();
    first_shutdown.notify();
    for (customer, was) in customers.iter().zip(&before) {
        let again = join(&app, &app.address, customer, event_id).await;
        assert_eq!(again["status"], was["status"]);
        assert_eq!(
            again["pass_expires_at"], was["pass_expires_at"],
            "the same turn"
        );
    }
    let (status, _) = app.book(&customers[0], event_id, 1).await;
    assert_eq!(status, 201);
    let (status, _) = app.book(&customers[1], event_id, 1).await;
    assert_eq!(
        status, 403,
        "not their turn yet, before or after the restarts"
    );
}

/// The early joiners' turns are drawn in rank order a step at a time, each
/// the one a count of the line ahead would give; those who join after the
/// on-sale, at once and from two processes, get one turn each, after the
/// last early one and one interval apart.
#[tokio::test]
async fn the_draw_writes_early_turns_in_steps_and_late_joiners_queue_behind() {
    const EARLY: usize = 40;
    const LATE_JOINERS: usize = 30;
    const PER_MINUTE: i64 = 600; // one every 100 ms
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let (organizer, event_id, early_joiners) = line_of_early_joiners(&app, PER_MINUTE, EARLY).await;
    let event_uuid: uuid::Uuid = event_id.parse().unwrap();
    let on_sale = move_on_sale(
        &app,
        &organizer,
        &event_id,
        chrono::Duration::milliseconds(300),
    )
    .await;
    tokio::time::sleep((on_sale - Utc::now()).to_std().unwrap_or_default()).await;

    let model = Event::find_by_id(event_uuid)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut steps = 0;
    loop {
        inventory::waiting_room::draw_some(&app.db, &model, 7)
            .await
            .unwrap();
        steps += 1;
        let draw = QueueDraw::find_by_id(event_uuid)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        if draw.done {
            assert_eq!(draw.drawn, EARLY as i64);
            break;
        }
        assert_eq!(draw.drawn, 7 * steps, "{draw:?}");
    }
    assert_eq!(steps, EARLY.div_ceil(7) as i64);
    let interval = chrono::Duration::milliseconds(60_000 / PER_MINUTE);
    let early = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_uuid))
        .order_by_asc(QueueEntryColumn::Rank)
        .all(&app.db)
        .await
        .unwrap();
    for (ahead, entry) in early.iter().enumerate() {
        assert_eq!(
            entry.admit_at,
            Some(on_sale + interval * ahead as i32),
            "{entry:?}"
        );
    }

    let late = app.customers(LATE_JOINERS).await;
    join_all(late.iter().enumerate().map(|(i, customer)| {
        let base = if i % 2 == 0 { &app.address } else { &second };
        join(&app, base, customer, &event_id)
    }))
    .await;
    let mut turns: Vec<_> = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_uuid))
        .filter(QueueEntryColumn::Rank.gte(inventory::waiting_room::LATE))
        .order_by_asc(QueueEntryColumn::Rank)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.admit_at.unwrap())
        .collect();
    assert_eq!(turns.len(), LATE_JOINERS);
    let last_early = on_sale + interval * (EARLY as i32 - 1);
    assert!(
        turns[0] >= last_early + interval,
        "{:?} after {last_early:?}",
        turns[0]
    );
    assert!(
        turns.windows(2).all(|w| w[1] - w[0] >= interval),
        "{turns:?}"
    );
    turns.dedup();
    assert_eq!(turns.len(), LATE_JOINERS, "one turn each");

    // The last early joiner is told their place from their drawn turn.
    let last = early.last().unwrap();
    let customer = early_joiners.iter().find(|c| c.id == last.user_id).unwrap();
    let (_, standing) = app
        .get(
            &format!("/api/v1/events/{event_id}/queue/me"),
            Some(&customer.token),
        )
        .await;
    let position = standing["position"].as_i64().unwrap_or(0);
    assert_eq!(standing["status"], "waiting", "{standing}");
    assert!((1..=EARLY as i64).contains(&position), "{standing}");
}

/// Late joiners arriving together at two api processes are placed a batch at
/// a time: still one place each however often they ask, and turns an interval
/// apart in the order of their ranks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_joiners_arriving_together_get_one_place_each_an_interval_apart() {
    const EARLY: usize = 10;
    const JOINERS: usize = 150;
    const TWICE: usize = 30;
    const PER_MINUTE: i64 = 6_000; // one every 10 ms
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let (organizer, event_id, early_joiners) = line_of_early_joiners(&app, PER_MINUTE, EARLY).await;
    let event_uuid: uuid::Uuid = event_id.parse().unwrap();
    move_on_sale(
        &app,
        &organizer,
        &event_id,
        chrono::Duration::milliseconds(200),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let customers = app.customers(JOINERS).await;
    let (app_ref, second, event_id) = (&app, &second, &event_id);
    // The early joiners ask again among them: they keep their drawn places.
    let asks = customers
        .iter()
        .enumerate()
        .chain(customers.iter().enumerate().take(TWICE))
        .chain(early_joiners.iter().enumerate());
    let answers = join_all(asks.map(|(i, customer)| async move {
        let base = if i % 2 == 0 { &app_ref.address } else { second };
        (customer.id, join(app_ref, base, customer, event_id).await)
    }))
    .await;

    let entries = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_uuid))
        .order_by_asc(QueueEntryColumn::Rank)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(entries.len(), EARLY + JOINERS, "one place each");
    let late = inventory::waiting_room::LATE;
    assert!(
        entries[..EARLY]
            .iter()
            .all(|entry| entry.rank < late && early_joiners.iter().any(|c| c.id == entry.user_id))
    );
    assert!(entries[EARLY..].iter().all(|entry| entry.rank >= late));
    let interval = chrono::Duration::milliseconds(60_000 / PER_MINUTE);
    let turns: Vec<_> = entries
        .iter()
        .map(|entry| entry.admit_at.unwrap())
        .collect();
    assert!(
        turns.windows(2).all(|w| w[1] - w[0] >= interval),
        "{turns:?}"
    );
    // Asked twice (once at each process): told the same turn both times.
    for customer in customers.iter().take(TWICE) {
        let told: Vec<_> = answers
            .iter()
            .filter(|(asker, _)| *asker == customer.id)
            .map(|(_, standing)| standing["pass_expires_at"].clone())
            .collect();
        assert_eq!(told.len(), 2);
        assert_eq!(told[0], told[1], "{told:?}");
    }
}

/// Behind a waiting room, the holds and bookings of many customers arriving
/// at once at two api processes go in the event's batches: those with a valid
/// pass take tickets until none are left, one hold each; the others (still
/// waiting, pass run out, never in line) are refused and take nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_valid_passes_take_tickets_when_many_arrive_at_once_behind_a_waiting_room() {
    const TICKETS: i64 = 100;
    const ADMITTED: usize = 120;
    const OTHERS: usize = 20; // of each kind: waiting, pass run out, never in line
    let app = TestApp::spawn().await;
    let (second, _shutdown) = app.second_instance().await;
    let organizer = app.organizer().await;
    let event = event_with(
        &app,
        &organizer,
        json!({"total_tickets": TICKETS,
               "waiting_room": {"enabled": true, "admit_per_minute": 600_000, "pass_minutes": 10}}),
    )
    .await;
    let event_id = id(&event).to_owned();
    let customers = app.customers(ADMITTED + 3 * OTHERS).await;
    let (admitted, others) = customers.split_at(ADMITTED);
    let (waiting, rest) = others.split_at(OTHERS);
    let (expired, outside) = rest.split_at(OTHERS);
    for customer in admitted.iter().chain(waiting).chain(expired) {
        join(&app, &app.address, customer, &event_id).await;
    }
    for (who, turn) in [
        (waiting, Utc::now() + chrono::Duration::minutes(5)),
        (expired, Utc::now() - chrono::Duration::minutes(20)),
    ] {
        QueueEntry::update_many()
            .col_expr(QueueEntryColumn::AdmitAt, Expr::value(Some(turn)))
            .filter(QueueEntryColumn::UserId.is_in(who.iter().map(|c| c.id)))
            .exec(&app.db)
            .await
            .unwrap();
    }
    // Turns 0.1 ms apart: every admitted one's has come.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Each admitted customer asks for a ticket, even ones a hold and odd ones
    // a booking; the holders ask twice. Everyone else asks for both.
    let mut asks = Vec::new();
    for (i, customer) in admitted.iter().enumerate() {
        let kind = if i % 2 == 0 { "holds" } else { "bookings" };
        let times = if i % 2 == 0 { 2 } else { 1 };
        for _ in 0..times {
            asks.push((customer.id, kind));
        }
    }
    for customer in others {
        asks.push((customer.id, "holds"));
        asks.push((customer.id, "bookings"));
    }
    let token = |customer_id| {
        customers
            .iter()
            .find(|c| c.id == customer_id)
            .map(|c| c.token.clone())
            .unwrap()
    };
    let requests = asks
        .iter()
        .enumerate()
        .map(|(i, (customer_id, kind))| {
            let base = if i % 2 == 0 { &app.address } else { &second };
            (
                format!("{base}/api/v1/events/{event_id}/{kind}"),
                token(*customer_id),
                json!({"quantity": 1}),
            )
        })
        .collect();
    let answers = all_at_once(requests).await;

    let mut took = Vec::new();
    for ((customer_id, kind), (status, body)) in asks.iter().zip(&answers) {
        let code = body["error"]["code"].as_str().unwrap_or("");
        if admitted.iter().any(|c| c.id == *customer_id) {
            match (status, code) {
                (201, _) => took.push(*customer_id),
                (409, "sold_out" | "hold_exists") => {}
                _ => panic!("{kind} of an admitted customer: {status} {body}"),
            }
        } else {
            // A sold-out event may be refused as such before the pass is looked at.
            assert!(
                matches!((status, code), (403, "not_admitted") | (409, "sold_out")),
                "{kind} without a pass: {status} {body}"
            );
        }
    }
    assert_eq!(took.len(), TICKETS as usize, "the tickets all went");
    let mut once = took.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), took.len(), "one hold or booking per customer");

    let event_uuid: uuid::Uuid = event_id.parse().unwrap();
    let holders: Vec<uuid::Uuid> = Hold::find()
        .filter(HoldColumn::EventId.eq(event_uuid))
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|hold| hold.user_id)
        .chain(
            Booking::find()
                .filter(BookingColumn::EventId.eq(event_uuid))
                .all(&app.db)
                .await
                .unwrap()
                .iter()
                .map(|booking| booking.user_id),
        )
        .collect();
    assert!(
        holders
            .iter()
            .all(|holder| admitted.iter().any(|c| c.id == *holder)),
        "nothing taken without a pass"
    );
    let outside_ids: Vec<_> = outside.iter().map(|c| c.id).collect();
    assert!(holders.iter().all(|holder| !outside_ids.contains(holder)));
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_eq!(event.available_tickets, 0);
}

/// Holds asked for together at the on-sale by early joiners: those whose turn
/// the draw has written take tickets; those it has not reached yet are
/// refused, as the line says they still wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_joiners_hold_once_the_draw_has_reached_them() {
    const EARLY: usize = 20;
    let app = TestApp::spawn().await;
    let (organizer, event_id, early_joiners) = line_of_early_joiners(&app, 600_000, EARLY).await;
    let on_sale = move_on_sale(
        &app,
        &organizer,
        &event_id,
        chrono::Duration::milliseconds(200),
    )
    .await;
    let after_on_sale = on_sale - Utc::now() + chrono::Duration::milliseconds(50);
    tokio::time::sleep(after_on_sale.to_std().unwrap_or_default()).await;
    let event_uuid: uuid::Uuid = event_id.parse().unwrap();
    let model = Event::find_by_id(event_uuid)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    inventory::waiting_room::draw_some(&app.db, &model, (EARLY / 2) as u64)
        .await
        .unwrap();
    let drawn: Vec<uuid::Uuid> = QueueEntry::find()
        .filter(QueueEntryColumn::EventId.eq(event_uuid))
        .filter(QueueEntryColumn::AdmitAt.is_not_null())
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.user_id)
        .collect();
    assert_eq!(drawn.len(), EARLY / 2);

    let holds = early_joiners
        .iter()
        .map(|customer| {
            (
                app.url(&format!("/api/v1/events/{event_id}/holds")),
                customer.token.clone(),
                json!({"quantity": 1}),
            )
        })
        .collect();
    let answers = all_at_once(holds).await;
    for (customer, (status, body)) in early_joiners.iter().zip(&answers) {
        if drawn.contains(&customer.id) {
            assert_eq!(*status, 201, "{body}");
        } else {
            assert_eq!(
                (*status, &body["error"]["code"]),
                (403, &json!("not_admitted")),
                "{body}"
            );
        }
    }
    assert_eq!(app.count::<Hold>().await, (EARLY / 2) as u64);
}
