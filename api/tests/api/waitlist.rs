//! The waitlist (SPEC §11): customers line up for a sold-out event, and every
//! ticket that comes back is offered in order, as a hold, with one email.

use std::time::Duration;

use chrono::Utc;
use entity::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, id};

async fn join(app: &TestApp, customer: &TestUser, event_id: &str, quantity: i64) -> (u16, Value) {
    app.post(
        &format!("/api/v1/events/{event_id}/waitlist"),
        Some(&customer.token),
        json!({"quantity": quantity}),
    )
    .await
}

async fn line(app: &TestApp, event_id: &str) -> Vec<WaitlistEntryModel> {
    WaitlistEntry::find()
        .filter(WaitlistEntryColumn::EventId.eq(event_id.parse::<uuid::Uuid>().unwrap()))
        .order_by_asc(WaitlistEntryColumn::CreatedAt)
        .order_by_asc(WaitlistEntryColumn::Id)
        .all(&app.db)
        .await
        .unwrap()
}

/// Offers sent, by recipient, once every notification has settled.
async fn offer_emails(app: &TestApp) -> std::collections::HashMap<String, usize> {
    app.settle_notifications().await;
    let mut by_recipient = std::collections::HashMap::new();
    for mail in app.smtp.messages() {
        if mail.subject().starts_with("Tickets are waiting for you") {
            for to in &mail.to {
                *by_recipient.entry(to.clone()).or_insert(0) += 1;
            }
        }
    }
    by_recipient
}

#[tokio::test]
async fn only_a_sold_out_event_has_a_line_and_each_customer_has_one_place() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob, cy] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let event = app.event(&organizer, 2).await;

    let (status, body) = join(&app, &bob, id(&event), 1).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("conflict")),
        "{body}"
    );
    app.book(&ann, id(&event), 2).await;

    let (status, first) = join(&app, &bob, id(&event), 1).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["position"].as_u64(), &first["status"]),
        (Some(1), &json!("waiting"))
    );
    let (status, again) = join(&app, &bob, id(&event), 1).await;
    assert_eq!(
        (status, &again["id"]),
        (200, &first["id"]),
        "joining again keeps the place"
    );
    let (_, second) = join(&app, &cy, id(&event), 2).await;
    assert_eq!(second["position"], 2);
    let (status, body) = join(&app, &cy, id(&event), 5).await;
    assert_eq!(
        (status, &body["quantity"]),
        (200, &json!(2)),
        "already waiting: {body}"
    );
    let (status, body) = join(&app, &ann, id(&event), 11).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed"))
    );

    let leave = |customer: &TestUser| {
        app.http
            .delete(app.url(&format!("/api/v1/events/{}/waitlist", id(&event))))
            .bearer_auth(customer.token.clone())
            .send()
    };
    let left = leave(&bob).await.unwrap();
    assert_eq!(left.status().as_u16(), 200);
    assert_eq!(left.json::<Value>().await.unwrap()["status"], "left");
    assert_eq!(leave(&bob).await.unwrap().status().as_u16(), 404);
    let (_, moved_up) = join(&app, &cy, id(&event), 2).await;
    assert_eq!(moved_up["position"], 1);
}

/// SPEC §11's proof: 25 customers wait for one ticket each; 20 come back at
/// once → the first 20 get offers, in order, one email each; 5 offers run out →
/// the next 5 entries get them. Nothing goes to general sale meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_tickets_are_offered_in_order_and_an_expired_offer_moves_on() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 1).await;
    let event_id = id(&event).to_owned();
    let first = app.customer().await;
    app.book(&first, &event_id, 1).await;
    let waiting = app.customers(25).await;
    for customer in &waiting {
        let (status, body) = join(&app, customer, &event_id, 1).await;
        assert_eq!(status, 201, "{body}");
    }

    // 20 tickets come back at once.
    let (status, changed) = app
        .patch(
            &format!("/api/v1/events/{event_id}"),
            Some(&organizer.token),
            json!({"total_tickets": 21}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["available_tickets"].as_i64(),
            changed["held_tickets"].as_i64()
        ),
        (Some(0), Some(20)),
        "all of them offered, none on general sale"
    );
    let entries = line(&app, &event_id).await;
    let offered: Vec<_> = entries
        .iter()
        .filter(|e| e.status == WaitlistStatus::Offered)
        .collect();
    assert_eq!(offered.len(), 20);
    for (entry, customer) in entries.iter().zip(&waiting) {
        assert_eq!(entry.user_id, customer.id, "the line keeps join order");
    }
    assert!(
        entries[..20]
            .iter()
            .all(|e| e.status == WaitlistStatus::Offered && e.hold_id.is_some())
    );
    assert!(
        entries[20..]
            .iter()
            .all(|e| e.status == WaitlistStatus::Waiting)
    );
    let latecomer = app.customer().await;
    let (status, _) = app.hold(&latecomer, &event_id, 1).await;
    assert_eq!(status, 409, "nothing left for general sale");
    app.assert_ticket_invariant(&event_id).await;

    let emails = offer_emails(&app).await;
    assert_eq!(emails.len(), 20);
    assert!(
        emails.values().all(|&n| n == 1),
        "each offer emailed once: {emails:?}"
    );
    let mail = app
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().starts_with("Tickets are waiting"))
        .unwrap();
    assert!(
        mail.text.contains("held for you for 30 minutes"),
        "{}",
        mail.text
    );

    // One offer is taken up; five run out and move down the line.
    let hold_of = |i: usize| entries[i].hold_id.unwrap().to_string();
    let (status, booking) = app
        .post(
            &format!("/api/v1/holds/{}/confirm", hold_of(0)),
            Some(&waiting[0].token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    for i in 15..20 {
        crate::holds::expire_at(&app, &hold_of(i), Utc::now()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let entries = line(&app, &event_id).await;
        if entries[20..]
            .iter()
            .all(|e| e.status == WaitlistStatus::Offered)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the next five were not offered: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_eq!(
        (
            event.available_tickets,
            event.held_tickets,
            event.booked_tickets
        ),
        (0, 19, 2)
    );
    let emails = offer_emails(&app).await;
    assert_eq!(emails.len(), 25, "the next five were emailed");
    assert!(
        emails.values().all(|&n| n == 1),
        "no offer emailed twice: {emails:?}"
    );
}

#[tokio::test]
async fn a_cancelled_booking_goes_to_the_line_before_general_sale() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob, cy] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let event = app.event(&organizer, 3).await;
    let (_, booking) = app.book(&ann, id(&event), 3).await;
    // Bob wants 3, Cy wants 2; three come back: Bob is first and they fit him.
    join(&app, &bob, id(&event), 3).await;
    join(&app, &cy, id(&event), 2).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let entries = line(&app, id(&event)).await;
    assert_eq!(
        entries[0].status,
        WaitlistStatus::Offered,
        "3 came back: Bob first"
    );
    assert_eq!(entries[1].status, WaitlistStatus::Waiting);
    let event = app.assert_ticket_invariant(id(&event)).await;
    assert_eq!((event.available_tickets, event.held_tickets), (0, 3));
    let (_, hold) = app
        .get(
            &format!("/api/v1/holds/{}", entries[0].hold_id.unwrap()),
            Some(&bob.token),
        )
        .await;
    assert_eq!(
        (hold["status"].as_str(), hold["quantity"].as_i64()),
        (Some("active"), Some(3))
    );
    let _ = cy;
}
