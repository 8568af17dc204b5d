//! Payments and refunds (SPEC §14), against a real Stripe-compatible server
//! (localstripe) that sends real signed webhooks.

use std::time::Duration;

use entity::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use stripe_client::{local::WEBHOOK_SECRET, signature};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, id};

/// An event selling one type at `price` cents.
async fn priced_event(app: &TestApp, organizer: &TestUser, price: i64, quantity: i64) -> Value {
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Paid night",
                "venue": "Hall A",
                "starts_at": "2030-05-01T19:00:00Z",
                "ends_at": "2030-05-01T23:00:00Z",
                "currency": "EUR",
                "ticket_types": [{"name": "Standard", "price": price, "quantity": quantity}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    event
}

async fn start_payment(app: &TestApp, customer: &TestUser, hold_id: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/holds/{hold_id}/payment"),
        Some(&customer.token),
        json!({}),
    )
    .await
}

/// Waits until the hold's status is `status` (a payment books it in the
/// background: the webhook, or reconciliation).
async fn until_hold(app: &TestApp, customer: &TestUser, hold_id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
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
            "hold still {} after 30 s, not {status}",
            hold["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn payments_of(app: &TestApp, hold_id: &str) -> Vec<PaymentModel> {
    let hold_id: Uuid = hold_id.parse().unwrap();
    Payment::find()
        .filter(PaymentColumn::HoldId.eq(hold_id))
        .all(&app.db)
        .await
        .unwrap()
}

async fn until_refund(app: &TestApp, payment_id: Uuid, status: RefundStatus) -> RefundModel {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let refund = Refund::find()
            .filter(RefundColumn::PaymentId.eq(payment_id))
            .one(&app.db)
            .await
            .unwrap();
        if let Some(refund) = refund.filter(|r| r.status == status) {
            return refund;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {status:?} refund within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A signed Stripe event about a PaymentIntent, as Stripe would send it.
fn stripe_event(kind: &str, intent: &str, amount: i64, currency: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("evt_{}", Uuid::now_v7().simple()),
        "type": kind,
        "data": {"object": {
            "id": intent, "object": "payment_intent", "amount": amount,
            "currency": currency, "status": "succeeded", "metadata": {},
        }},
    }))
    .unwrap()
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url("/api/v1/payments/stripe/webhook"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Hold → payment → the card confirmed at Stripe → Stripe's signed webhook →
/// the hold is a paid booking and its email names the total. Paid tickets
/// cannot be booked in one step or confirmed unpaid (402), and asking for the
/// payment again returns the same attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_goes_from_hold_to_paid_booking_through_stripe() {
    let Some((app, stripe)) = TestApp::spawn_with_stripe(true, |_| {}).await else {
        return;
    };
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = priced_event(&app, &organizer, 2500, 10).await;
    let event_id = id(&event);

    let (status, refused) = app.book(&customer, event_id, 2).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (402, Some("payment_required")),
        "{refused}"
    );
    let (status, hold) = app.hold(&customer, event_id, 2).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["total"], 5000);
    let hold_id = id(&hold);
    let (status, refused) = app
        .post(
            &format!("/api/v1/holds/{hold_id}/confirm"),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 402, "{refused}");

    let (status, payment) = start_payment(&app, &customer, hold_id).await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(
        (
            payment["status"].as_str(),
            payment["amount"].as_i64(),
            payment["currency"].as_str(),
            payment["provider"].as_str()
        ),
        (Some("pending"), Some(5000), Some("EUR"), Some("stripe"))
    );
    let intent = payment["provider_ref"].as_str().unwrap().to_owned();
    assert!(intent.starts_with("pi_"), "{payment}");
    assert!(payment["client_secret"].as_str().is_some(), "{payment}");
    let (status, again) = start_payment(&app, &customer, hold_id).await;
    assert_eq!(
        (status, &again["id"]),
        (201, &payment["id"]),
        "one attempt at a time"
    );
    // Someone else's hold does not exist for them.
    let stranger = app.customer().await;
    let (status, _) = start_payment(&app, &stranger, hold_id).await;
    assert_eq!(status, 404);

    assert_eq!(
        stripe.pay(&intent, "pm_card_visa").await.unwrap(),
        "succeeded"
    );
    let hold = until_hold(&app, &customer, hold_id, "confirmed").await;
    let (status, booking) = app
        .post(
            &format!("/api/v1/holds/{hold_id}/confirm"),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(booking["id"], hold["booking_id"]);
    assert_eq!(
        booking["payment"],
        json!({"provider": "stripe", "status": "paid", "amount": 5000, "refunded_amount": 0, "currency": "EUR"})
    );
    let payments = payments_of(&app, hold_id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, PaymentStatus::Succeeded);
    let mails = app.smtp.wait_for(1).await;
    let confirmation = mails
        .iter()
        .find(|m| m.subject().starts_with("Booking confirmed"))
        .expect("a confirmation");
    assert!(confirmation.text.contains("50.00"), "{}", confirmation.text);
    app.assert_ticket_invariant(event_id).await;
}

/// A webhook's signature is checked before anything: none, a wrong one or
/// one older than 5 minutes → 400 and nothing changes. The same event
/// delivered five times at once makes one booking; a replay changes
/// nothing more; a payment of another amount books nothing and is refunded;
/// a PaymentIntent not ours is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_is_applied_once_and_only_with_a_good_signature() {
    let Some((app, _)) = TestApp::spawn_with_stripe(false, |_| {}).await else {
        return;
    };
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = priced_event(&app, &organizer, 1500, 10).await;
    let (_, hold) = app.hold(&customer, id(&event), 1).await;
    let hold_id = id(&hold);
    let (_, payment) = start_payment(&app, &customer, hold_id).await;
    let intent = payment["provider_ref"].as_str().unwrap();
    let body = stripe_event("payment_intent.succeeded", intent, 1500, "eur");

    let old = signature::header(&body, WEBHOOK_SECRET, now() - 301);
    let wrong = signature::header(&body, "whsec_someone_else", now());
    let mut altered = body.clone();
    altered.extend_from_slice(b" ");
    let for_other_body = signature::header(&body, WEBHOOK_SECRET, now());
    for (signature, altered_body) in [
        (None, false),
        (Some(old), false),
        (Some(wrong), false),
        (Some("t=1,v1=zz".to_owned()), false),
        (Some(for_other_body), true),
    ] {
        let sent = if altered_body { &altered } else { &body };
        let (status, error) = deliver(&app, sent, signature).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (400, Some("invalid_signature")),
            "{error}"
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/holds/{hold_id}"), Some(&customer.token))
            .await
            .1["status"],
        "active",
        "nothing changed"
    );

    let signed = signature::header(&body, WEBHOOK_SECRET, now());
    let deliveries = (0..5).map(|_| deliver(&app, &body, Some(signed.clone())));
    let answers = futures::future::join_all(deliveries).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let applied = answers.iter().filter(|(_, r)| r["applied"] == true).count();
    assert_eq!(applied, 1, "{answers:?}");
    let (status, replay) = deliver(&app, &body, Some(signed)).await;
    assert_eq!((status, replay["applied"].clone()), (200, json!(false)));
    let bookings = Booking::find()
        .filter(BookingColumn::UserId.eq(customer.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(bookings.len(), 1, "one booking");
    assert_eq!(
        app.assert_ticket_invariant(id(&event)).await.booked_tickets,
        1
    );

    // Another hold, paid with another amount than its total: no booking; the
    // money goes back.
    let other = app.customer().await;
    let (_, hold) = app.hold(&other, id(&event), 1).await;
    let (_, payment) = start_payment(&app, &other, id(&hold)).await;
    let short = stripe_event(
        "payment_intent.succeeded",
        payment["provider_ref"].as_str().unwrap(),
        1,
        "eur",
    );
    let signed = signature::header(&short, WEBHOOK_SECRET, now());
    assert_eq!(deliver(&app, &short, Some(signed)).await.0, 200);
    let payment_id: Uuid = payment["id"].as_str().unwrap().parse().unwrap();
    let refund = Refund::find()
        .filter(RefundColumn::PaymentId.eq(payment_id))
        .one(&app.db)
        .await
        .unwrap()
        .expect("a refund");
    assert_eq!(refund.reason, RefundReason::AmountMismatch);
    assert_eq!(
        app.get(&format!("/api/v1/holds/{}", id(&hold)), Some(&other.token))
            .await
            .1["status"],
        "active",
        "not booked"
    );

    let unknown = stripe_event("payment_intent.succeeded", "pi_not_ours", 1500, "eur");
    let signed = signature::header(&unknown, WEBHOOK_SECRET, now());
    let (status, receipt) = deliver(&app, &unknown, Some(signed)).await;
    assert_eq!((status, receipt["applied"].clone()), (200, json!(false)));
    let other = stripe_event("charge.refunded", intent, 1500, "eur");
    let signed = signature::header(&other, WEBHOOK_SECRET, now());
    assert_eq!(deliver(&app, &other, Some(signed)).await.0, 200);
}

/// Stripe's webhooks never arrive: the worker asks Stripe about the pending
/// payment and books it, as the webhook would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_webhook_is_made_up_for_by_reconciliation() {
    let Some((app, stripe)) = TestApp::spawn_with_stripe(false, |settings| {
        settings.worker.payments.reconcile_after = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = priced_event(&app, &organizer, 900, 10).await;
    let (_, hold) = app.hold(&customer, id(&event), 3).await;
    let hold_id = id(&hold);
    let (_, payment) = start_payment(&app, &customer, hold_id).await;
    let intent = payment["provider_ref"].as_str().unwrap();
    assert_eq!(
        stripe.pay(intent, "pm_card_visa").await.unwrap(),
        "succeeded"
    );
    until_hold(&app, &customer, hold_id, "confirmed").await;
    let payments = payments_of(&app, hold_id).await;
    assert_eq!(payments[0].status, PaymentStatus::Succeeded);
    assert!(payments[0].booking_id.is_some());
    app.assert_ticket_invariant(id(&event)).await;
}

/// A declined card leaves the hold for another attempt; the next attempt is
/// a new PaymentIntent (a new idempotency key), and its success makes the one
/// booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_then_a_good_one_makes_one_booking() {
    let Some((app, stripe)) = TestApp::spawn_with_stripe(true, |_| {}).await else {
        return;
    };
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = priced_event(&app, &organizer, 4000, 10).await;
    let (_, hold) = app.hold(&customer, id(&event), 1).await;
    let hold_id = id(&hold);
    let (_, first) = start_payment(&app, &customer, hold_id).await;
    let declined = stripe
        .pay(
            first["provider_ref"].as_str().unwrap(),
            "pm_card_chargeCustomerFail",
        )
        .await
        .unwrap();
    assert_eq!(declined, "requires_payment_method");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while payments_of(&app, hold_id).await[0].status != PaymentStatus::Failed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "failure not applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_hold(&app, &customer, hold_id, "active").await;

    let (status, second) = start_payment(&app, &customer, hold_id).await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["id"], first["id"]);
    assert_ne!(second["provider_ref"], first["provider_ref"]);
    let intent = second["provider_ref"].as_str().unwrap();
    assert_eq!(
        stripe.pay(intent, "pm_card_visa").await.unwrap(),
        "succeeded"
    );
    until_hold(&app, &customer, hold_id, "confirmed").await;
    let mut statuses: Vec<_> = payments_of(&app, hold_id)
        .await
        .into_iter()
        .map(|p| p.status)
        .collect();
    statuses.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(statuses, [PaymentStatus::Failed, PaymentStatus::Succeeded]);
    let bookings = Booking::find()
        .filter(BookingColumn::UserId.eq(customer.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(bookings.len(), 1);
}

/// A payment that comes after its hold ended: booked if the same tickets
/// are still free; refunded in full (and emailed) if someone else has them,
/// with never more tickets sold than there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_payment_is_booked_if_its_tickets_are_free_and_refunded_if_not() {
    let Some((app, stripe)) = TestApp::spawn_with_stripe(true, |_| {}).await else {
        return;
    };
    let organizer = app.organizer().await;
    let [late, other, lucky] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let event = priced_event(&app, &organizer, 2000, 2).await;
    let event_id = id(&event);

    // Released, and its two tickets sold to someone else (paid manually).
    let (_, hold) = app.hold(&late, event_id, 2).await;
    let late_hold = id(&hold).to_owned();
    let (_, payment) = start_payment(&app, &late, &late_hold).await;
    let intent = payment["provider_ref"].as_str().unwrap().to_owned();
    let (status, _) = app
        .delete(&format!("/api/v1/holds/{late_hold}"), &late.token)
        .await;
    assert_eq!(status, 200);
    let (_, taken) = app.hold(&other, event_id, 2).await;
    let (status, sold) = app
        .post(
            &format!("/api/v1/holds/{}/mark_paid", id(&taken)),
            Some(&organizer.token),
            json!({"reference": "cash at the door"}),
        )
        .await;
    assert_eq!(status, 201, "{sold}");
    assert_eq!(sold["payment"]["provider"], "manual");

    assert_eq!(
        stripe.pay(&intent, "pm_card_visa").await.unwrap(),
        "succeeded"
    );
    let payment_id: Uuid = payment["id"].as_str().unwrap().parse().unwrap();
    let refund = until_refund(&app, payment_id, RefundStatus::Succeeded).await;
    assert_eq!(
        (refund.amount, refund.reason),
        (4000, RefundReason::TicketsGone)
    );
    let at_stripe = stripe.refunds_of(&intent).await.unwrap();
    assert_eq!(at_stripe.len(), 1, "refunded once");
    assert_eq!(at_stripe[0].amount, 4000);
    let event_now = app.assert_ticket_invariant(event_id).await;
    assert_eq!(event_now.booked_tickets, 2, "no oversell");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !app
        .smtp
        .to(&late.email)
        .iter()
        .any(|m| m.subject().starts_with("Refund"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no refund email");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        Payment::find_by_id(payment_id)
            .one(&app.db)
            .await
            .unwrap()
            .is_some_and(|p| p.status == PaymentStatus::Refunded)
    );

    // Another event: released, nobody took the tickets, then paid: booked.
    let event = priced_event(&app, &organizer, 2000, 2).await;
    let (_, hold) = app.hold(&lucky, id(&event), 2).await;
    let hold_id = id(&hold).to_owned();
    let (_, payment) = start_payment(&app, &lucky, &hold_id).await;
    app.delete(&format!("/api/v1/holds/{hold_id}"), &lucky.token)
        .await;
    let intent = payment["provider_ref"].as_str().unwrap();
    assert_eq!(
        stripe.pay(intent, "pm_card_visa").await.unwrap(),
        "succeeded"
    );
    let hold = until_hold(&app, &lucky, &hold_id, "confirmed").await;
    assert!(hold["booking_id"].is_string());
    assert_eq!(
        app.assert_ticket_invariant(id(&event)).await.booked_tickets,
        2
    );
}

/// Cancelling paid bookings refunds them: a customer's own within the
/// event's `refund_until` (after it, 409 and nothing changes), and every
/// one of a cancelled event, each once, through Stripe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_paid_bookings_are_refunded_once_within_the_refund_window() {
    let Some((app, stripe)) = TestApp::spawn_with_stripe(true, |_| {}).await else {
        return;
    };
    let organizer = app.organizer().await;
    let customers = app.customers(4).await;
    let event = priced_event(&app, &organizer, 1000, 20).await;
    let event_id = id(&event);
    let mut bookings = Vec::new();
    for customer in &customers {
        let (_, hold) = app.hold(customer, event_id, 1).await;
        let (_, payment) = start_payment(&app, customer, id(&hold)).await;
        let intent = payment["provider_ref"].as_str().unwrap().to_owned();
        stripe.pay(&intent, "pm_card_visa").await.unwrap();
        let hold = until_hold(&app, customer, id(&hold), "confirmed").await;
        bookings.push((hold["booking_id"].as_str().unwrap().to_owned(), intent));
    }

    // The first customer cancels: refunded.
    let (booking_id, intent) = &bookings[0];
    let (status, cancelled) = app
        .post(
            &format!("/api/v1/bookings/{booking_id}/cancel"),
            Some(&customers[0].token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["payment"]["status"], "refund_pending");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, booking) = app
            .get(
                &format!("/api/v1/bookings/{booking_id}"),
                Some(&customers[0].token),
            )
            .await;
        if booking["payment"]["status"] == "refunded" {
            assert_eq!(booking["payment"]["refunded_amount"], 1000);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{booking}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stripe.refunds_of(intent).await.unwrap().len(), 1);

    // The window closes: the second customer can no longer cancel.
    let (status, _) = app
        .patch(
            &format!("/api/v1/events/{event_id}"),
            Some(&organizer.token),
            json!({"refund_until": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, refused) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", bookings[1].0),
            Some(&customers[1].token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("refund_window_closed")),
        "{refused}"
    );

    // The organizer cancels the event: the other three are refunded, once each.
    let (status, _) = app
        .post(
            &format!("/api/v1/events/{event_id}/cancel"),
            Some(&organizer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    for (booking_id, intent) in &bookings[1..] {
        let booking_id: Uuid = booking_id.parse().unwrap();
        let booking = Booking::find_by_id(booking_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        let refund = until_refund(&app, booking.payment_id.unwrap(), RefundStatus::Succeeded).await;
        assert_eq!(refund.reason, RefundReason::EventCancelled);
        assert_eq!(stripe.refunds_of(intent).await.unwrap().len(), 1);
    }
}

/// The organizer records a payment taken elsewhere: booked with provider
/// `manual`; only the event's organizer may. Its refund on cancellation is
/// recorded at once, for the organizer to pay back.
#[tokio::test]
async fn a_manual_payment_books_the_hold_and_its_refund_is_recorded_at_once() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let someone_else = app.organizer().await;
    let customer = app.customer().await;
    let event = priced_event(&app, &organizer, 3000, 5).await;
    let (_, hold) = app.hold(&customer, id(&event), 2).await;
    let hold_id = id(&hold);
    // Without Stripe, a card payment is not offered.
    let (status, _) = start_payment(&app, &customer, hold_id).await;
    assert_eq!(status, 409);
    let path = format!("/api/v1/holds/{hold_id}/mark_paid");
    let (status, _) = app
        .post(
            &path,
            Some(&someone_else.token),
            json!({"reference": "cash"}),
        )
        .await;
    assert_eq!(status, 404, "not their event");
    let (status, _) = app
        .post(&path, Some(&organizer.token), json!({"reference": " "}))
        .await;
    assert_eq!(status, 422);
    let (status, booking) = app
        .post(
            &path,
            Some(&organizer.token),
            json!({"reference": "bank transfer 42"}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(
        booking["payment"],
        json!({"provider": "manual", "status": "paid", "amount": 6000, "refunded_amount": 0, "currency": "EUR"})
    );
    let (status, _) = app
        .post(&path, Some(&organizer.token), json!({"reference": "again"}))
        .await;
    assert_eq!(status, 409, "paid once");
    let (status, cancelled) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["payment"]["status"], "refunded");
    assert_eq!(cancelled["payment"]["refunded_amount"], 6000);
    let mails = app.smtp.wait_for(3).await;
    assert!(
        mails.iter().any(|m| m.subject().starts_with("Refund")),
        "{:?}",
        mails
            .iter()
            .map(|m| m.subject().to_owned())
            .collect::<Vec<_>>()
    );
}

/// The organizer's report adds up what was sold and taken: revenue per type
/// after discounts, money taken, refunded and net, tax included in the
/// prices split out by rate; the attendee CSV has one row per ticket, its
/// cells quoted and formulas defused.
#[tokio::test]
async fn the_report_and_attendee_list_add_up_what_was_sold_and_taken() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob, cat] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Report night", "venue": "Hall A",
                "starts_at": "2030-05-01T19:00:00Z", "ends_at": "2030-05-01T23:00:00Z",
                "ticket_types": [
                    {"name": "Standard", "price": 2000, "quantity": 10, "tax_rate": 19},
                    {"name": "VIP", "price": 10000, "quantity": 2},
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event).to_owned();
    let standard = event["ticket_types"][0]["id"].as_str().unwrap().to_owned();
    let vip = event["ticket_types"][1]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/events/{event_id}/promo_codes"),
            Some(&organizer.token),
            json!({"code": "FRIEND", "discount": {"amount": 1000}, "ticket_type_ids": [vip]}),
        )
        .await;
    assert_eq!(status, 201);
    let items = |type_id: &str, quantity: i64| json!({"items": [{"ticket_type_id": type_id, "quantity": quantity}]});
    let (status, _) = app
        .buy(&ann, &organizer, &event_id, items(&standard, 2))
        .await;
    assert_eq!(status, 201);
    let mut with_code = items(&vip, 1);
    with_code["promo_code"] = json!("friend");
    let (status, booking) = app.buy(&bob, &organizer, &event_id, with_code).await;
    assert_eq!(
        (status, booking["total"].clone()),
        (201, json!(9000)),
        "{booking}"
    );
    let (status, cancelled) = app
        .buy(&cat, &organizer, &event_id, items(&standard, 1))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&cancelled)),
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);

    let (status, report) = app
        .get(
            &format!("/api/v1/events/{event_id}/report"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({
            "currency": "EUR",
            "ticket_types": [
                {"id": standard, "name": "Standard", "sold": 2, "held": 0, "available": 8, "revenue": 4000},
                {"id": vip, "name": "VIP", "sold": 1, "held": 0, "available": 1, "revenue": 9000},
            ],
            "gross": 15000, "refunded": 2000, "net": 13000,
            // 40.00 at 19 % includes 6.39 of tax.
            "tax": [{"rate": 0.0, "net": 9000, "tax": 0}, {"rate": 19.0, "net": 3361, "tax": 639}],
            "discounts": 1000, "bookings": 2, "cancelled": 1, "checked_in": 0,
        })
    );
    let (status, _) = app
        .get(
            &format!("/api/v1/events/{event_id}/report"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, 403);

    let response = app
        .http
        .get(app.url(&format!("/api/v1/events/{event_id}/attendees.csv")))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "ticket_id,booking_id,name,email,ticket_type,seat,price,status,checked_in_at"
    );
    assert_eq!(lines.len(), 1 + 4, "one row per ticket:\n{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&bob.email) && l.contains(",VIP,,9000,confirmed")),
        "{csv}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(",cancelled,")).count(),
        1,
        "{csv}"
    );
}

/// A hold paid twice (the organizer recorded a cash payment while the card
/// payment was under way): one booking, and the second payment refunded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_paid_twice_is_booked_once_and_the_second_payment_refunded() {
    let Some((app, stripe)) = TestApp::spawn_with_stripe(true, |_| {}).await else {
        return;
    };
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = priced_event(&app, &organizer, 1200, 10).await;
    let (_, hold) = app.hold(&customer, id(&event), 1).await;
    let hold_id = id(&hold).to_owned();
    let (_, payment) = start_payment(&app, &customer, &hold_id).await;
    let (status, booking) = app.pay_for(&organizer, &hold_id).await;
    assert_eq!(status, 201, "{booking}");
    let intent = payment["provider_ref"].as_str().unwrap();
    assert_eq!(
        stripe.pay(intent, "pm_card_visa").await.unwrap(),
        "succeeded"
    );
    let payment_id: Uuid = payment["id"].as_str().unwrap().parse().unwrap();
    let refund = until_refund(&app, payment_id, RefundStatus::Succeeded).await;
    assert_eq!(
        (refund.reason, refund.amount),
        (RefundReason::PaidTwice, 1200)
    );
    assert_eq!(stripe.refunds_of(intent).await.unwrap().len(), 1);
    let bookings = Booking::find()
        .filter(BookingColumn::UserId.eq(customer.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(bookings.len(), 1, "booked once");
    assert_eq!(
        app.assert_ticket_invariant(id(&event)).await.booked_tickets,
        1
    );
}
