//! Holds and checkout (SPEC §8): take, confirm, release, expire; the breakdown
//! `available + held + booked == total` after every step; a stampede for the
//! last tickets; confirmation racing expiry.

use std::time::Duration;

use chrono::Utc;
use entity::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, all_at_once, id};

async fn breakdown(app: &TestApp, event_id: &str) -> (i64, i64, i64) {
    let (status, event) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(status, 200, "{event}");
    let count = |field: &str| event[field].as_i64().unwrap();
    (
        count("available_tickets"),
        count("held_tickets"),
        count("booked_tickets"),
    )
}

/// Moves a hold's expiry into the past (or near future), as if its minutes had
/// passed. Tests cannot wait a minute per hold.
pub async fn expire_at(app: &TestApp, hold_id: &str, at: chrono::DateTime<Utc>) {
    Hold::update_many()
        .col_expr(HoldColumn::ExpiresAt, Expr::value(at))
        .filter(HoldColumn::Id.eq(hold_id.parse::<Uuid>().unwrap()))
        .exec(&app.db)
        .await
        .unwrap();
}

/// Waits (bounded) until the hold has this status.
pub async fn until_hold_is(
    app: &TestApp,
    customer: &TestUser,
    hold_id: &str,
    status: &str,
    within: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (code, hold) = app
            .get(&format!("/api/v1/holds/{hold_id}"), Some(&customer.token))
            .await;
        assert_eq!(code, 200, "{hold}");
        if hold["status"] == status {
            return hold;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hold still {} after {within:?}, wanted {status}",
            hold["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_hold_sets_tickets_aside_until_confirmed_and_a_repeat_confirm_returns_the_same_booking() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 5).await;
    assert_eq!(event["hold_minutes"], 10);
    assert_eq!(
        (
            event["held_tickets"].as_i64(),
            event["booked_tickets"].as_i64()
        ),
        (Some(0), Some(0))
    );

    let (status, hold) = app.hold(&customer, id(&event), 2).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["status"], "active");
    assert_eq!(hold["quantity"], 2);
    assert_eq!(hold["seats"], json!([]));
    assert_eq!(hold["booking_id"], Value::Null);
    let expires_at: chrono::DateTime<Utc> = hold["expires_at"].as_str().unwrap().parse().unwrap();
    let minutes = (expires_at - Utc::now()).num_seconds() as f64 / 60.0;
    assert!(
        (9.9..=10.0).contains(&minutes),
        "expires in {minutes} minutes"
    );
    assert_eq!(breakdown(&app, id(&event)).await, (3, 2, 0));
    app.assert_ticket_invariant(id(&event)).await;

    let (status, same) = app
        .get(
            &format!("/api/v1/holds/{}", id(&hold)),
            Some(&customer.token),
        )
        .await;
    assert_eq!((status, &same["id"]), (200, &hold["id"]));

    let confirm = format!("/api/v1/holds/{}/confirm", id(&hold));
    let (status, booking) = app.post(&confirm, Some(&customer.token), json!({})).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(
        (booking["quantity"].as_i64(), &booking["status"]),
        (Some(2), &json!("confirmed"))
    );
    assert_eq!(breakdown(&app, id(&event)).await, (3, 0, 2));
    let (_, hold_now) = app
        .get(
            &format!("/api/v1/holds/{}", id(&hold)),
            Some(&customer.token),
        )
        .await;
    assert_eq!(hold_now["status"], "confirmed");
    assert_eq!(hold_now["booking_id"], booking["id"]);

    let (status, again) = app.post(&confirm, Some(&customer.token), json!({})).await;
    assert_eq!((status, &again["id"]), (201, &booking["id"]), "{again}");
    assert_eq!(breakdown(&app, id(&event)).await, (3, 0, 2));
    app.assert_ticket_invariant(id(&event)).await;

    // One confirmation email, for the one booking.
    let sent = app.settle_notifications().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].booking_id.map(|b| b.to_string()).as_deref(),
        booking["id"].as_str()
    );
    app.smtp.wait_for(1).await;

    // Cancelling the booking returns its tickets to sale.
    let (status, _) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(breakdown(&app, id(&event)).await, (5, 0, 0));
    app.assert_ticket_invariant(id(&event)).await;
}

#[tokio::test]
async fn a_released_hold_returns_its_tickets_once_and_cannot_be_confirmed() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 4).await;
    let (_, hold) = app.hold(&customer, id(&event), 3).await;
    let path = format!("/api/v1/holds/{}", id(&hold));

    for _ in 0..2 {
        let response = app
            .http
            .delete(app.url(&path))
            .bearer_auth(&customer.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let released: Value = response.json().await.unwrap();
        assert_eq!(released["status"], "released");
        assert_eq!(
            breakdown(&app, id(&event)).await,
            (4, 0, 0),
            "returned exactly once"
        );
    }
    let (status, body) = app
        .post(&format!("{path}/confirm"), Some(&customer.token), json!({}))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("conflict")),
        "{body}"
    );
    app.assert_ticket_invariant(id(&event)).await;

    // Someone else's hold does not exist for you.
    let stranger = app.customer().await;
    let (status, _) = app.get(&path, Some(&stranger.token)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_customer_has_one_active_hold_per_event() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let other_event = app.event(&organizer, 10).await;

    let (_, first) = app.hold(&customer, id(&event), 1).await;
    let (status, body) = app.hold(&customer, id(&event), 2).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("hold_exists")),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["hold_id"], first["id"]);
    assert_eq!(
        breakdown(&app, id(&event)).await,
        (9, 1, 0),
        "the refused hold took nothing"
    );

    let (status, _) = app.hold(&customer, id(&other_event), 2).await;
    assert_eq!(status, 201, "holds on other events are separate");
    // A direct booking is a hold confirmed at once; it does not count.
    let (status, _) = app.book(&customer, id(&event), 1).await;
    assert_eq!(status, 201);

    let response = app
        .http
        .delete(app.url(&format!("/api/v1/holds/{}", id(&first))))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = app.hold(&customer, id(&event), 2).await;
    assert_eq!(status, 201, "after release, a new hold");
    app.assert_ticket_invariant(id(&event)).await;
}

#[tokio::test]
async fn holds_refuse_what_cannot_be_had_and_write_nothing() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 2).await;
    let path = format!("/api/v1/events/{}/holds", id(&event));

    for (body, code) in [
        (json!({"quantity": 3}), "sold_out"),
        (json!({"quantity": 0}), "validation_failed"),
        (json!({"quantity": 11}), "validation_failed"),
        (json!({"seat_ids": [Uuid::now_v7()]}), "validation_failed"),
        (
            json!({"quantity": 1, "seat_ids": [Uuid::now_v7()]}),
            "validation_failed",
        ),
        (json!({"quantity": "two"}), "validation_failed"),
    ] {
        let (status, answer) = app.post(&path, Some(&customer.token), body.clone()).await;
        assert_eq!(answer["error"]["code"], code, "{body} → {status} {answer}");
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/events/{}/holds", Uuid::now_v7()),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.count::<Hold>().await, 0);
    assert_eq!(breakdown(&app, id(&event)).await, (2, 0, 0));

    let (status, _) = app
        .post(
            &format!("/api/v1/events/{}/cancel", id(&event)),
            Some(&organizer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = app.hold(&customer, id(&event), 1).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("event_cancelled"))
    );
}

#[tokio::test]
async fn cancelling_an_event_releases_its_holds_and_capacity_respects_them() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (_, hold) = app.hold(&customer, id(&event), 4).await;
    app.book(&other, id(&event), 3).await;
    assert_eq!(breakdown(&app, id(&event)).await, (3, 4, 3));

    let patch = format!("/api/v1/events/{}", id(&event));
    let (status, body) = app
        .patch(&patch, Some(&organizer.token), json!({"total_tickets": 6}))
        .await;
    assert_eq!(status, 409, "held and booked together are 7: {body}");
    let (status, changed) = app
        .patch(
            &patch,
            Some(&organizer.token),
            json!({"total_tickets": 7, "hold_minutes": 3}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(breakdown(&app, id(&event)).await, (0, 4, 3));
    assert_eq!(changed["hold_minutes"], 3);
    app.assert_ticket_invariant(id(&event)).await;

    let (status, _) = app
        .post(
            &format!("/api/v1/events/{}/cancel", id(&event)),
            Some(&organizer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(breakdown(&app, id(&event)).await, (7, 0, 0));
    let (_, hold) = app
        .get(
            &format!("/api/v1/holds/{}", id(&hold)),
            Some(&customer.token),
        )
        .await;
    assert_eq!(hold["status"], "released");
    app.assert_ticket_invariant(id(&event)).await;
}

/// Expiry with nobody looking: the worker returns the tickets within 5 s of the
/// hold's time, and a confirmation that comes too late is told so.
#[tokio::test]
async fn an_expired_hold_returns_its_tickets_and_cannot_be_confirmed() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 3).await;
    let (_, hold) = app.hold(&customer, id(&event), 2).await;
    expire_at(&app, id(&hold), Utc::now()).await;

    until_hold_is(
        &app,
        &customer,
        id(&hold),
        "expired",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(breakdown(&app, id(&event)).await, (3, 0, 0));
    let (status, body) = app
        .post(
            &format!("/api/v1/holds/{}/confirm", id(&hold)),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (410, &json!("hold_expired")),
        "{body}"
    );
    let response = app
        .http
        .delete(app.url(&format!("/api/v1/holds/{}", id(&hold))))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 410);
    assert_eq!(app.count::<Booking>().await, 0);
    app.assert_ticket_invariant(id(&event)).await;
}

/// The api schedules a timer per hold in the queue, and the worker acts on it:
/// a job due at the hold's (near) expiry ends it without waiting for the sweep.
#[tokio::test]
async fn each_hold_has_a_timer_job_that_expires_it() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 3).await;
    let (_, hold) = app.hold(&customer, id(&event), 1).await;
    let queues = app.queues().await;
    let mut backlog = 0;
    for _ in 0..100 {
        backlog = queues.hold_expiry.backlog().await.unwrap();
        if backlog == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(backlog, 1, "one timer job, due in ten minutes");

    // A timer due in a moment, for a hold that expires then: the worker ends it
    // before the sweep (which leaves holds alone for SWEEP_GRACE) could.
    // On a whole second: timer jobs are due in whole seconds, so none of the
    // margin below goes to rounding.
    let due = chrono::DurationRound::duration_trunc(
        Utc::now() + chrono::Duration::milliseconds(1500),
        chrono::Duration::seconds(1),
    )
    .unwrap();
    expire_at(&app, id(&hold), due).await;
    queues
        .time_hold(id(&hold).parse().unwrap(), due)
        .await
        .unwrap();
    until_hold_is(
        &app,
        &customer,
        id(&hold),
        "expired",
        Duration::from_secs(5),
    )
    .await;
    let ended = Hold::find_by_id(id(&hold).parse::<Uuid>().unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let late = ended.ended_at.unwrap() - due;
    assert!(
        late < chrono::Duration::from_std(worker::holds::SWEEP_GRACE).unwrap(),
        "ended {late} after expiry: by the sweep, not the timer"
    );
    assert_eq!(breakdown(&app, id(&event)).await, (3, 0, 0));
}

/// SPEC §8's stampede: 1,000 truly concurrent hold requests for the last 10
/// tickets → exactly 10 holds. Half are confirmed, half left to expire; after
/// expiry the breakdown is exact and the freed tickets can be held again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_holds_for_ten_tickets_make_exactly_ten() {
    const REQUESTS: usize = 1000;
    let app = TestApp::spawn_with(|s| s.db_max_connections = 16).await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 10).await;
    let customers = app.customers(REQUESTS).await;
    let url = app.url(&format!("/api/v1/events/{}/holds", id(&event)));
    let requests = customers
        .iter()
        .map(|c| (url.clone(), c.token.clone(), json!({"quantity": 1})))
        .collect();
    let results = all_at_once(requests).await;
    let held: Vec<(usize, &Value)> = results
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s == 201)
        .map(|(i, (_, b))| (i, b))
        .collect();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["code"] == "sold_out")
        .count();
    assert_eq!(
        (held.len(), refused),
        (10, REQUESTS - 10),
        "{:?}",
        results.iter().find(|(s, _)| *s != 201 && *s != 409)
    );
    assert_eq!(app.count::<Hold>().await, 10);
    assert_eq!(breakdown(&app, id(&event)).await, (0, 10, 0));
    app.assert_ticket_invariant(id(&event)).await;

    // Five confirmed, five left to expire.
    for (i, hold) in &held[..5] {
        let (status, body) = app
            .post(
                &format!("/api/v1/holds/{}/confirm", id(hold)),
                Some(&customers[*i].token),
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for (_, hold) in &held[5..] {
        expire_at(&app, id(hold), Utc::now()).await;
    }
    for (i, hold) in &held[5..] {
        until_hold_is(
            &app,
            &customers[*i],
            id(hold),
            "expired",
            Duration::from_secs(5),
        )
        .await;
    }
    assert_eq!(breakdown(&app, id(&event)).await, (5, 0, 5));
    app.assert_ticket_invariant(id(&event)).await;

    // The freed tickets are on sale again.
    let latecomer = app.customer().await;
    let (status, body) = app.hold(&latecomer, id(&event), 5).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(breakdown(&app, id(&event)).await, (0, 5, 5));
    app.assert_ticket_invariant(id(&event)).await;
}

/// Confirmation and expiry at the same moment, many times over: exactly one of
/// them wins every time, and the confirmation's answer says which. Rounds go
/// on until each side has won a few times (or the rounds run out, which fails):
/// a race one side always wins was no race. How far ahead of the expiry the
/// confirmation is sent follows the outcomes (a loss sends the next one
/// earlier, a win later), so the race stays close however fast the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmation_racing_expiry_never_both_never_neither() {
    const MIN_ROUNDS: usize = 40;
    const MAX_ROUNDS: usize = 300;
    const WINS_EACH: i64 = 3;
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, MAX_ROUNDS as i64).await;
    let (mut confirmed, mut expired) = (0, 0);
    let mut rounds = 0;
    let mut lead = Duration::from_millis(3);
    for round in 0..MAX_ROUNDS {
        if round >= MIN_ROUNDS && confirmed >= WINS_EACH && expired >= WINS_EACH {
            break;
        }
        rounds += 1;
        let (status, hold) = app.hold(&customer, id(&event), 1).await;
        assert_eq!(status, 201, "{hold}");
        let hold_id: Uuid = id(&hold).parse().unwrap();
        // Due a moment from now, staggered so the two sides land either way.
        let due = Utc::now() + chrono::Duration::milliseconds(30 + (round as i64 % 7) * 5);
        expire_at(&app, id(&hold), due).await;
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait.saturating_sub(lead)).await;
        let path = format!("/api/v1/holds/{hold_id}/confirm");
        let confirm = app.post(&path, Some(&customer.token), json!({}));
        let db = app.db.clone();
        let expire = async move {
            tokio::time::sleep(lead).await;
            inventory::end_hold(&db, hold_id, inventory::Ending::Expired, Utc::now())
                .await
                .unwrap()
        };
        let ((status, body), _) = tokio::join!(confirm, expire);
        // The worker may also have tried; let everything settle.
        let hold = Hold::find_by_id(hold_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        match (status, hold.status) {
            (201, HoldStatus::Confirmed) => {
                confirmed += 1;
                lead = lead.saturating_sub(Duration::from_millis(1));
                assert_eq!(
                    hold.booking_id.map(|b| b.to_string()).as_deref(),
                    body["id"].as_str()
                );
            }
            (410, HoldStatus::Expired) => {
                expired += 1;
                lead = (lead + Duration::from_millis(1)).min(Duration::from_millis(25));
                assert_eq!(body["error"]["code"], "hold_expired");
            }
            other => panic!(
                "round {round}: confirm answered {status} {body} but the hold is {:?}",
                other.1
            ),
        }
        app.assert_ticket_invariant(id(&event)).await;
    }
    let bookings = app.count::<Booking>().await;
    assert_eq!(
        bookings, confirmed as u64,
        "one booking per winning confirmation"
    );
    println!("confirm vs expiry over {rounds} rounds: {confirmed} confirmed, {expired} expired");
    assert!(
        confirmed >= WINS_EACH && expired >= WINS_EACH,
        "the race must go both ways: {confirmed} confirmed, {expired} expired in {rounds} rounds"
    );
    assert_eq!(
        breakdown(&app, id(&event)).await,
        (MAX_ROUNDS as i64 - confirmed, 0, confirmed)
    );
}

#[tokio::test]
async fn a_repeated_confirmation_with_a_key_gets_the_first_answer() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 3).await;
    let (_, hold) = app.hold(&customer, id(&event), 1).await;
    let url = app.url(&format!("/api/v1/holds/{}/confirm", id(&hold)));
    let send = || {
        app.http
            .post(&url)
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", "checkout-1")
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first = first.text().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.text().await.unwrap(), first, "the same bytes");
    assert_eq!(app.count::<Booking>().await, 1);
    // The same key for another request is refused.
    let (_, other) = app
        .hold(&customer, id(&app.event(&organizer, 1).await), 1)
        .await;
    let response = app
        .http
        .post(app.url(&format!("/api/v1/holds/{}/confirm", id(&other))))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "checkout-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
}
