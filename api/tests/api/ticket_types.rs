//! Ticket types (SPEC §13): every event sells at least one type, and every
//! hold and booking says which tickets it has, at what price.

use entity::prelude::*;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id};

/// An event made the old way sells one free "General admission" type: a
/// booking or hold by quantity, or by naming that type, carries it as an item
/// with its unit price, total and currency, and a confirmation keeps them.
#[tokio::test]
async fn an_event_without_types_sells_its_one_free_type_by_quantity_or_by_name() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [first, second] = [app.customer().await, app.customer().await];
    let event = app.event(&organizer, 20).await;
    let event_id = id(&event);

    let (status, booking) = app
        .post(
            &format!("/api/v1/events/{event_id}/bookings"),
            Some(&first.token),
            json!({"quantity": 2}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(
        (booking["total"].clone(), booking["currency"].clone()),
        (json!(0), json!("EUR"))
    );
    let items = booking["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{booking}");
    assert_eq!(items[0]["name"], "General admission");
    assert_eq!(
        (items[0]["quantity"].clone(), items[0]["unit_price"].clone()),
        (json!(2), json!(0))
    );
    let general_admission = items[0]["ticket_type_id"].as_str().unwrap().to_owned();

    let (status, hold) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&second.token),
            json!({"items": [{"ticket_type_id": general_admission, "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["quantity"], 3);
    assert_eq!(
        hold["items"][0]["ticket_type_id"],
        general_admission.as_str()
    );
    let (status, confirmed) = app
        .post(
            &format!("/api/v1/holds/{}/confirm", id(&hold)),
            Some(&second.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{confirmed}");
    assert_eq!(confirmed["items"], hold["items"]);
    assert_eq!(confirmed["currency"], "EUR");
    let (_, fetched) = app
        .get(
            &format!("/api/v1/bookings/{}", id(&confirmed)),
            Some(&second.token),
        )
        .await;
    assert_eq!(fetched["items"], hold["items"]);

    let event = app.assert_ticket_invariant(event_id).await;
    assert_eq!(event.booked_tickets, 5);
    let ticket_type = TicketType::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        (ticket_type.available, ticket_type.booked),
        (15, 5),
        "{ticket_type:?}"
    );
}

/// Items that cannot be sold are a 422 naming the field, and nothing is
/// written: a type of no event or of another event, a type named twice, a
/// quantity of 0, more than 10 in all, or items beside a quantity.
#[tokio::test]
async fn items_that_cannot_be_sold_are_refused_field_by_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 20).await;
    let other = app.event(&organizer, 20).await;
    let (_, booking) = app
        .post(
            &format!("/api/v1/events/{}/bookings", id(&other)),
            Some(&customer.token),
            json!({"quantity": 1}),
        )
        .await;
    let foreign = booking["items"][0]["ticket_type_id"].clone();
    let unknown = json!(uuid::Uuid::now_v7().to_string());
    let item = |ticket_type_id: &Value, quantity: i64| json!({"ticket_type_id": ticket_type_id, "quantity": quantity});
    let cases = [
        (
            json!({"items": [item(&unknown, 1)]}),
            "items[0].ticket_type_id",
        ),
        (
            json!({"items": [item(&foreign, 1)]}),
            "items[0].ticket_type_id",
        ),
        (
            json!({"items": [item(&unknown, 1), item(&unknown, 1)]}),
            "items[1].ticket_type_id",
        ),
        (json!({"items": [item(&unknown, 0)]}), "items[0].quantity"),
        (
            json!({"items": [item(&unknown, 6), item(&foreign, 5)]}),
            "items",
        ),
        (json!({"items": []}), "items"),
        (
            json!({"quantity": 1, "items": [item(&foreign, 1)]}),
            "items",
        ),
    ];
    for path in ["bookings", "holds"] {
        for (body, field) in &cases {
            let (status, answer) = app
                .post(
                    &format!("/api/v1/events/{}/{path}", id(&event)),
                    Some(&customer.token),
                    body.clone(),
                )
                .await;
            assert_eq!(status, 422, "{path} {body}: {answer}");
            assert!(
                answer["error"]["details"][field].is_string(),
                "{path} {body}: {answer}"
            );
        }
    }
    assert_eq!(
        app.count::<Booking>().await,
        1,
        "only the other event's booking"
    );
    assert_eq!(app.count::<Hold>().await, 0);
    let event = app.assert_ticket_invariant(id(&event)).await;
    assert_eq!(event.available_tickets, 20);
}
