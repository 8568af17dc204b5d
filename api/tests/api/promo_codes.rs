//! Promo codes (SPEC §13): discounts per ticket on the types a code covers,
//! hidden types it unlocks, and uses counted in tickets that hold exactly
//! under a stampede and come back when a hold ends or a booking is cancelled.

use entity::prelude::*;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, id};

struct Sale {
    event_id: String,
    standard: String,
    vip: String,
}

/// Standard (20 at 20.00) and a hidden VIP (5 at 99.00).
async fn sale(app: &TestApp, organizer: &TestUser) -> Sale {
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Night of Rust",
                "venue": "Hall A",
                "starts_at": "2030-05-01T19:00:00Z",
                "ends_at": "2030-05-01T23:00:00Z",
                "ticket_types": [
                    {"name": "Standard", "price": 2000, "quantity": 20},
                    {"name": "VIP", "price": 9900, "quantity": 5, "hidden": true},
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event).to_owned();
    let (_, types) = app
        .get(
            &format!("/api/v1/events/{event_id}/ticket_types"),
            Some(&organizer.token),
        )
        .await;
    let type_id = |i: usize| types["items"][i]["id"].as_str().unwrap().to_owned();
    Sale {
        standard: type_id(0),
        vip: type_id(1),
        event_id,
    }
}

async fn code(app: &TestApp, organizer: &TestUser, event_id: &str, body: Value) -> Value {
    let (status, code) = app
        .post(
            &format!("/api/v1/events/{event_id}/promo_codes"),
            Some(&organizer.token),
            body,
        )
        .await;
    assert_eq!(status, 201, "{code}");
    code
}

fn hold_with(type_id: &str, quantity: i64, promo_code: &str) -> Value {
    json!({"items": [{"ticket_type_id": type_id, "quantity": quantity}], "promo_code": promo_code})
}

/// A percent code discounts the types it lists, whatever case it is typed
/// in; an amount code unlocks a hidden type; a code is refused (422 naming
/// `promo_code`) when unknown, not for the asked types, expired or disabled;
/// and `used` follows holds as they are made and released.
#[tokio::test]
async fn a_code_discounts_what_it_covers_unlocks_hidden_types_and_counts_its_uses() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob, cat] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let sale = sale(&app, &organizer).await;
    let holds = format!("/api/v1/events/{}/holds", sale.event_id);
    let early = code(
        &app,
        &organizer,
        &sale.event_id,
        json!({"code": "Early10", "discount": {"percent": 10}, "ticket_type_ids": [sale.standard]}),
    )
    .await;
    assert_eq!(early["code"], "EARLY10");
    code(
        &app,
        &organizer,
        &sale.event_id,
        json!({"code": "VIP-ACCESS", "discount": {"amount": 900}, "ticket_type_ids": [sale.vip], "unlocks": [sale.vip]}),
    )
    .await;
    code(
        &app,
        &organizer,
        &sale.event_id,
        json!({"code": "GONE", "discount": {"amount": 100}, "valid_until": "2020-01-01T00:00:00Z"}),
    )
    .await;

    let (status, hold) = app
        .post(
            &holds,
            Some(&ann.token),
            hold_with(&sale.standard, 2, " early10 "),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["items"][0]["discount"], 200);
    assert_eq!(hold["total"], 2 * (2000 - 200));

    let (status, refused) = app
        .post(
            &holds,
            Some(&bob.token),
            json!({"items": [{"ticket_type_id": sale.vip, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 422, "a hidden type without its code: {refused}");
    for (typed, ticket_type) in [
        ("NOPE", &sale.standard),
        ("VIP-ACCESS", &sale.standard),
        ("GONE", &sale.standard),
    ] {
        let (status, refused) = app
            .post(&holds, Some(&bob.token), hold_with(ticket_type, 1, typed))
            .await;
        assert_eq!(status, 422, "{typed}: {refused}");
        assert!(
            refused["error"]["details"]["promo_code"].is_string(),
            "{typed}: {refused}"
        );
    }
    let (status, vip) = app
        .post(
            &holds,
            Some(&bob.token),
            hold_with(&sale.vip, 1, "vip-access"),
        )
        .await;
    assert_eq!(status, 201, "{vip}");
    assert_eq!(vip["total"], 9900 - 900);

    let codes = format!("/api/v1/events/{}/promo_codes", sale.event_id);
    let used = |listed: &Value, code: &str| {
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code)
            .map(|c| c["used"].as_i64().unwrap())
            .unwrap()
    };
    let (_, listed) = app.get(&codes, Some(&organizer.token)).await;
    assert_eq!(
        (used(&listed, "EARLY10"), used(&listed, "VIP-ACCESS")),
        (2, 1)
    );
    let (status, _) = app
        .delete(&format!("/api/v1/holds/{}", id(&hold)), &ann.token)
        .await;
    assert_eq!(status, 200);
    let (_, listed) = app.get(&codes, Some(&organizer.token)).await;
    assert_eq!(
        used(&listed, "EARLY10"),
        0,
        "a released hold gives its uses back"
    );

    // A code that was used can only be disabled; disabled, it is refused.
    let one = format!("{codes}/{}", id(&early));
    let (status, _) = app.delete(&one, &organizer.token).await;
    assert_eq!(status, 409);
    let (status, _) = app
        .patch(&one, Some(&organizer.token), json!({"max_uses": 5}))
        .await;
    assert_eq!(status, 409);
    let (status, changed) = app
        .patch(&one, Some(&organizer.token), json!({"disabled": true}))
        .await;
    assert_eq!((status, changed["disabled"].clone()), (200, json!(true)));
    let (status, _) = app
        .post(
            &holds,
            Some(&cat.token),
            hold_with(&sale.standard, 1, "EARLY10"),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = app.get(&codes, Some(&cat.token)).await;
    assert_eq!(status, 403, "customers cannot list codes");
    app.assert_ticket_invariant(&sale.event_id).await;
}

/// A stampede of 1,000 holds with a code that may be used for 100 tickets:
/// exactly 100 discounted tickets, every other request refused as used up;
/// releasing 10 of those holds frees 10 uses, and cancelling a booking made
/// with the code frees its use too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_uses_a_code_exactly_as_often_as_it_may_be_used() {
    const REQUESTS: usize = 1_000;
    const USES: i64 = 100;
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customers = app.customers(REQUESTS).await;
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Night of Rust",
                "venue": "Hall A",
                "starts_at": "2030-05-01T19:00:00Z",
                "ends_at": "2030-05-01T23:00:00Z",
                "ticket_types": [{"name": "Standard", "price": 2000, "quantity": 500}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let event_id = id(&event).to_owned();
    code(
        &app,
        &organizer,
        &event_id,
        json!({"code": "HALF", "discount": {"percent": 50}, "max_uses": USES}),
    )
    .await;
    let shots = customers
        .iter()
        .map(|customer| {
            (
                format!("{}/api/v1/events/{event_id}/holds", app.address),
                customer.token.clone(),
                json!({"quantity": 1, "promo_code": "HALF"}),
            )
        })
        .collect();
    let answers = crate::helpers::all_at_once(shots).await;
    let mut won = Vec::new();
    for (status, body) in &answers {
        match status {
            201 => {
                assert_eq!(body["total"], 1000, "{body}");
                won.push(body.clone());
            }
            422 => assert!(body["error"]["details"]["promo_code"].is_string(), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(won.len() as i64, USES);
    let code = PromoCode::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(i64::from(code.used), USES);
    let holds = Hold::find().all(&app.db).await.unwrap();
    assert_eq!(
        holds.iter().map(|h| i64::from(h.promo_uses)).sum::<i64>(),
        USES
    );

    let token = |hold: &Value| {
        let owner = hold["user_id"].as_str().unwrap();
        customers
            .iter()
            .find(|c| c.id.to_string() == owner)
            .unwrap()
            .token
            .clone()
    };
    for hold in &won[..10] {
        let (status, _) = app
            .delete(&format!("/api/v1/holds/{}", id(hold)), &token(hold))
            .await;
        assert_eq!(status, 200);
    }
    let code = PromoCode::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(i64::from(code.used), USES - 10);
    let last = &won[USES as usize - 1];
    let (status, booking) = app.pay_for(&organizer, id(last)).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(booking["total"], 1000);
    let (status, _) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&token(last)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let code = PromoCode::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        i64::from(code.used),
        USES - 11,
        "a cancelled booking gives its use back"
    );
    app.assert_ticket_invariant(&event_id).await;
}

/// Codes that cannot be are a 422 naming the field, and none is made.
#[tokio::test]
async fn bad_promo_codes_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let sale = sale(&app, &organizer).await;
    let other = app.event(&organizer, 10).await;
    let (_, other_types) = app
        .get(
            &format!("/api/v1/events/{}/ticket_types", id(&other)),
            Some(&organizer.token),
        )
        .await;
    let foreign = other_types["items"][0]["id"].clone();
    code(
        &app,
        &organizer,
        &sale.event_id,
        json!({"code": "TAKEN", "discount": {"percent": 5}}),
    )
    .await;
    let cases = [
        (
            json!({"code": "no spaces", "discount": {"percent": 5}}),
            "code",
        ),
        (json!({"code": "", "discount": {"percent": 5}}), "code"),
        (json!({"code": "taken", "discount": {"percent": 5}}), "code"),
        (json!({"code": "A", "discount": {}}), "discount"),
        (
            json!({"code": "A", "discount": {"percent": 5, "amount": 5}}),
            "discount",
        ),
        (
            json!({"code": "A", "discount": {"percent": 0}}),
            "discount.percent",
        ),
        (
            json!({"code": "A", "discount": {"percent": 101}}),
            "discount.percent",
        ),
        (
            json!({"code": "A", "discount": {"amount": 10_000_001}}),
            "discount.amount",
        ),
        (
            json!({"code": "A", "discount": {"amount": 5}, "max_uses": 0}),
            "max_uses",
        ),
        (
            json!({"code": "A", "discount": {"amount": 5}, "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
            "valid_until",
        ),
        (
            json!({"code": "A", "discount": {"amount": 5}, "ticket_type_ids": [foreign]}),
            "ticket_type_ids",
        ),
        (
            json!({"code": "A", "discount": {"amount": 5}, "unlocks": [foreign]}),
            "unlocks",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app
            .post(
                &format!("/api/v1/events/{}/promo_codes", sale.event_id),
                Some(&organizer.token),
                body.clone(),
            )
            .await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["error"]["details"][field].is_string(),
            "{body}: {answer}"
        );
    }
    assert_eq!(app.count::<PromoCode>().await, 1);
}
