//! Ticket types (SPEC §13): every event sells at least one type, and every
//! hold and booking says which tickets it has, at what price.

use entity::prelude::*;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, Statement,
    TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, id};

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

fn three_types() -> Value {
    json!({
        "title": "Night of Rust",
        "venue": "Hall A",
        "starts_at": "2030-05-01T19:00:00Z",
        "ends_at": "2030-05-01T23:00:00Z",
        "currency": "EUR",
        "ticket_types": [
            {"name": "Early bird", "price": 1500, "quantity": 5, "max_per_order": 2},
            {"name": "Standard", "price": 2500, "quantity": 10, "description": "The floor"},
            {"name": "VIP", "price": 9900, "quantity": 2, "tax_rate": 19.5},
        ],
    })
}

async fn type_ids(event: &Value) -> Vec<String> {
    event["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An event selling `types` (the rest of it as [`three_types`]): its id and
/// its types' ids, in order.
async fn event_selling(app: &TestApp, organizer: &TestUser, types: Value) -> (String, Vec<String>) {
    let mut body = three_types();
    body["ticket_types"] = types;
    let (status, event) = app
        .post("/api/v1/events", Some(&organizer.token), body)
        .await;
    assert_eq!(status, 201, "{event}");
    (id(&event).to_owned(), type_ids(&event).await)
}

/// An event with three priced types: its body lists them in order with their
/// counts, a hold by items is priced at their prices, a bare quantity is
/// refused (several types are on sale), a type's `max_per_order` holds, and a
/// type that runs out is named in the refusal.
#[tokio::test]
async fn an_event_with_three_types_sells_each_at_its_price() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [first, second, third] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let (status, event) = app
        .post("/api/v1/events", Some(&organizer.token), three_types())
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["total_tickets"], 17);
    let names: Vec<&str> = event["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Early bird", "Standard", "VIP"]);
    assert_eq!(event["ticket_types"][2]["tax_rate"], 19.5);
    assert_eq!(event["ticket_types"][1]["description"], "The floor");
    let [early, _standard, vip] = <[String; 3]>::try_from(type_ids(&event).await).unwrap();
    let event_id = id(&event).to_owned();
    let holds = format!("/api/v1/events/{event_id}/holds");
    let bookings = format!("/api/v1/events/{event_id}/bookings");

    let (status, hold) = app
        .post(
            &holds,
            Some(&first.token),
            json!({"items": [
                {"ticket_type_id": early, "quantity": 2},
                {"ticket_type_id": vip, "quantity": 1},
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["quantity"], 3);
    assert_eq!(hold["total"], 2 * 1500 + 9900);
    assert_eq!(hold["items"][1]["unit_price"], 9900);

    let (status, refused) = app
        .post(&bookings, Some(&second.token), json!({"quantity": 1}))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["details"]["items"].is_string(),
        "{refused}"
    );
    let (status, refused) = app
        .post(
            &bookings,
            Some(&second.token),
            json!({"items": [{"ticket_type_id": early, "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["details"]["items[0].quantity"].is_string(),
        "{refused}"
    );

    let one_vip = json!({"items": [{"ticket_type_id": vip, "quantity": 1}]});
    let (status, booking) = app.buy(&second, &organizer, &event_id, one_vip).await;
    assert_eq!(status, 201, "{booking}");
    let (status, refused) = app
        .post(
            &bookings,
            Some(&third.token),
            json!({"items": [{"ticket_type_id": vip, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "sold_out");
    assert_eq!(refused["error"]["details"]["ticket_type_id"], vip.as_str());
    assert_eq!(refused["error"]["details"]["available"], 0);

    let (_, fetched) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    let counts: Vec<(i64, i64, i64)> = fetched["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["available"].as_i64().unwrap(),
                t["held"].as_i64().unwrap(),
                t["booked"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [(3, 2, 0), (10, 0, 0), (0, 1, 1)]);
    app.assert_ticket_invariant(&event_id).await;
}

/// A type outside its sales window is `not_on_sale`, naming it; a hidden type
/// is neither listed nor sold.
#[tokio::test]
async fn types_sell_only_in_their_window_and_hidden_ones_not_at_all() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let mut body = three_types();
    body["ticket_types"][0]["sales_start"] = json!("2029-01-01T00:00:00Z");
    body["ticket_types"][0]["sales_end"] = json!("2029-02-01T00:00:00Z");
    body["ticket_types"][2]["hidden"] = json!(true);
    let (status, event) = app
        .post("/api/v1/events", Some(&organizer.token), body)
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(
        event["ticket_types"].as_array().unwrap().len(),
        2,
        "{event}"
    );
    assert_eq!(event["total_tickets"], 17, "hidden tickets are tickets");
    let early = event["ticket_types"][0]["id"].as_str().unwrap().to_owned();
    let vip = TicketType::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.hidden)
        .unwrap()
        .id;
    let holds = format!("/api/v1/events/{}/holds", id(&event));
    let (status, refused) = app
        .post(
            &holds,
            Some(&customer.token),
            json!({"items": [{"ticket_type_id": early, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "not_on_sale");
    assert_eq!(
        refused["error"]["details"]["ticket_type_id"],
        early.as_str()
    );
    let (status, refused) = app
        .post(
            &holds,
            Some(&customer.token),
            json!({"items": [{"ticket_type_id": vip, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"]["details"]["items[0].ticket_type_id"].is_string());
    // Only Standard is on sale and listed: a bare quantity buys it.
    let (status, hold) = app
        .post(&holds, Some(&customer.token), json!({"quantity": 2}))
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["items"][0]["name"], "Standard");
    assert_eq!(hold["total"], 5000);
    assert_eq!(app.count::<Hold>().await, 1);
}

/// Ticket types that cannot be are a 422 naming the field, and no event is
/// made.
#[tokio::test]
async fn bad_ticket_types_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = three_types();
        change(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&|b| b["ticket_types"] = json!([])), "ticket_types"),
        (
            with(&|b| {
                b["ticket_types"] = (0..21)
                    .map(|i| json!({"name": format!("T{i}"), "price": 0, "quantity": 1}))
                    .collect()
            }),
            "ticket_types",
        ),
        (
            with(&|b| b["ticket_types"][1]["name"] = json!("early BIRD")),
            "ticket_types[1].name",
        ),
        (
            with(&|b| b["ticket_types"][0]["price"] = json!(-1)),
            "ticket_types[0].price",
        ),
        (
            with(&|b| b["ticket_types"][0]["price"] = json!(10_000_001)),
            "ticket_types[0].price",
        ),
        (
            with(&|b| b["ticket_types"][0]["quantity"] = json!(0)),
            "ticket_types[0].quantity",
        ),
        (
            with(&|b| {
                b["ticket_types"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("quantity")
                    .map(drop)
                    .unwrap_or(())
            }),
            "ticket_types[0].quantity",
        ),
        (
            with(&|b| b["ticket_types"][2]["tax_rate"] = json!(12.345)),
            "ticket_types[2].tax_rate",
        ),
        (
            with(&|b| b["ticket_types"][2]["tax_rate"] = json!(101)),
            "ticket_types[2].tax_rate",
        ),
        (
            with(&|b| b["ticket_types"][0]["max_per_order"] = json!(11)),
            "ticket_types[0].max_per_order",
        ),
        (
            with(&|b| {
                b["ticket_types"][0]["sales_start"] = json!("2029-02-01T00:00:00Z");
                b["ticket_types"][0]["sales_end"] = json!("2029-01-01T00:00:00Z");
            }),
            "ticket_types[0].sales_end",
        ),
        (
            with(&|b| b["ticket_types"][0]["sales_start"] = json!("soon")),
            "ticket_types[0].sales_start",
        ),
        (
            with(&|b| b["ticket_types"][0]["name"] = json!("a\u{0}b")),
            "ticket_types[0].name",
        ),
        (with(&|b| b["total_tickets"] = json!(16)), "total_tickets"),
    ];
    for (body, field) in cases {
        let (status, answer) = app
            .post("/api/v1/events", Some(&organizer.token), body.clone())
            .await;
        assert_eq!(status, 422, "{field}: {answer}");
        assert!(
            answer["error"]["details"][field].is_string(),
            "{field}: {answer}"
        );
    }
    assert_eq!(app.count::<Event>().await, 0);
    assert_eq!(app.count::<TicketType>().await, 0);
}

/// A thousand concurrent holds spread over three small types: each type
/// sells exactly its quantity, the refusals name the type, and every count
/// agrees with the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_over_three_types_sells_each_exactly_its_quantity() {
    const REQUESTS: usize = 999;
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customers = app.customers(REQUESTS).await;
    let (event_id, types) = event_selling(
        &app,
        &organizer,
        json!([
            {"name": "A", "price": 1000, "quantity": 20},
            {"name": "B", "price": 2000, "quantity": 30},
            {"name": "C", "price": 3000, "quantity": 40},
        ]),
    )
    .await;
    let shots = customers
        .iter()
        .enumerate()
        .map(|(i, customer)| {
            (
                format!("{}/api/v1/events/{event_id}/holds", app.address),
                customer.token.clone(),
                json!({"items": [{"ticket_type_id": types[i % 3], "quantity": 1}]}),
            )
        })
        .collect();
    let answers = crate::helpers::all_at_once(shots).await;
    let mut held = [0; 3];
    let mut refused = [0; 3];
    for (i, (status, body)) in answers.iter().enumerate() {
        match status {
            201 => held[i % 3] += 1,
            409 => {
                assert_eq!(body["error"]["code"], "sold_out", "{body}");
                assert_eq!(
                    body["error"]["details"]["ticket_type_id"],
                    types[i % 3].as_str()
                );
                refused[i % 3] += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(held, [20, 30, 40]);
    assert_eq!(
        refused,
        [313, 303, 293],
        "each type was asked for more than it had"
    );
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_eq!((event.available_tickets, event.held_tickets), (0, 90));
}

/// A type removed while its first tickets are selling: either the removal
/// comes after a sale and is refused (409), or it comes first and no sale of
/// the type is left behind (answered 201 or written as items). On
/// PostgreSQL, where no foreign key guards the items (migration 17), every
/// other round holds the event row while the removal queues for it and
/// bookings then write their items side by side, so each batch meets a type
/// removed after it read it; the other rounds mix holds and bookings. The counts agree with the rows every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_type_removed_while_its_first_tickets_sell_leaves_no_sale_of_it() {
    const ROUNDS: u64 = 12;
    const SALES: usize = 60;
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customers = app.customers(SALES).await;
    let postgres = app.db.get_database_backend() == DbBackend::Postgres;
    let (mut removed, mut kept) = (0, 0);
    for round in 0..ROUNDS {
        let (event_id, mut types) = event_selling(
            &app,
            &organizer,
            json!([
                {"name": "General", "price": 0, "quantity": 100},
                {"name": "Extra", "price": 0, "quantity": 100},
            ]),
        )
        .await;
        let extra = types.remove(1);
        let items = json!({"items": [{"ticket_type_id": extra, "quantity": 1}]});
        let shots = customers
            .iter()
            .enumerate()
            .map(|(i, customer)| {
                // Bookings alone go side by side (the event row locked
                // only to move the counts, after their items are written).
                let taking = if round % 2 == 1 && i % 2 == 0 {
                    "holds"
                } else {
                    "bookings"
                };
                (
                    format!("{}/api/v1/events/{event_id}/{taking}", app.address),
                    customer.token.clone(),
                    items.clone(),
                )
            })
            .collect();
        let held_row = if postgres && round % 2 == 0 {
            let txn = app.db.begin().await.unwrap();
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id FROM events WHERE id = $1 FOR UPDATE",
                [event_id.parse::<Uuid>().unwrap().into()],
            ))
            .await
            .unwrap();
            Some(txn)
        } else {
            None
        };
        let (removal_delay, sales_delay) = match held_row {
            // The removal queues first; the sales write behind it.
            Some(_) => (0, 100),
            // From before the first sale to well after it, over the rounds.
            None => (round * 3, 0),
        };
        let removal = async {
            tokio::time::sleep(Duration::from_millis(removal_delay)).await;
            app.delete(
                &format!("/api/v1/events/{event_id}/ticket_types/{extra}"),
                &organizer.token,
            )
            .await
        };
        let sales = async {
            tokio::time::sleep(Duration::from_millis(sales_delay)).await;
            crate::helpers::all_at_once(shots).await
        };
        let release = async {
            if let Some(txn) = held_row {
                tokio::time::sleep(Duration::from_millis(600)).await;
                txn.commit().await.unwrap();
            }
        };
        let (answers, (status, answer), ()) = tokio::join!(sales, removal, release);
        let sold = answers.iter().filter(|(status, _)| *status == 201).count();
        let extra_id: Uuid = extra.parse().unwrap();
        let items_left = BookingItem::find()
            .filter(BookingItemColumn::TicketTypeId.eq(extra_id))
            .count(&app.db)
            .await
            .unwrap()
            + HoldItem::find()
                .filter(HoldItemColumn::TicketTypeId.eq(extra_id))
                .count(&app.db)
                .await
                .unwrap();
        match status {
            204 => {
                removed += 1;
                assert_eq!(
                    (sold, items_left),
                    (0, 0),
                    "round {round}: the type was removed, yet sold: {answers:?}"
                );
            }
            409 => {
                kept += 1;
                assert!(
                    sold > 0,
                    "round {round}: refused with nothing sold: {answer}"
                );
                assert_eq!(items_left as usize, sold, "round {round}: one item a sale");
            }
            other => panic!("round {round}: removal answered {other}: {answer}"),
        }
        for (status, answer) in &answers {
            assert!(
                [201, 404, 409, 422].contains(status),
                "round {round}: {status} {answer}"
            );
        }
        app.assert_ticket_invariant(&event_id).await;
    }
    eprintln!("removed first in {removed} rounds, refused after a sale in {kept}");
    if postgres {
        assert!(removed >= ROUNDS / 2, "the held rounds remove first");
    }
}

/// The organizer adds, changes and removes types after the event is made:
/// the event's counts follow each type's quantity, a quantity cannot go below
/// what is held, a type that was ever held cannot be removed, and nobody else
/// may do any of it.
#[tokio::test]
async fn the_organizer_adds_changes_and_removes_types_and_the_counts_follow() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let stranger = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = id(&event).to_owned();
    let types = format!("/api/v1/events/{event_id}/ticket_types");

    let vip = json!({"name": "VIP", "price": 5000, "quantity": 5, "hidden": true});
    for (token, status) in [(&customer.token, 403), (&stranger.token, 403)] {
        let (got, body) = app.post(&types, Some(token), vip.clone()).await;
        assert_eq!(got, status, "{body}");
    }
    let (status, added) = app.post(&types, Some(&organizer.token), vip.clone()).await;
    assert_eq!(status, 201, "{added}");
    let vip_id = id(&added).to_owned();
    let (status, again) = app.post(&types, Some(&organizer.token), vip).await;
    assert_eq!(status, 422, "{again}");
    assert!(again["error"]["details"]["name"].is_string(), "{again}");
    let (_, listed) = app.get(&types, Some(&organizer.token)).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "the owner sees hidden types"
    );
    let (status, _) = app.get(&types, Some(&stranger.token)).await;
    assert_eq!(status, 403);
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_eq!((event.total_tickets, event.available_tickets), (15, 15));

    let one = format!("{types}/{vip_id}");
    let (status, changed) = app
        .patch(
            &one,
            Some(&organizer.token),
            json!({"quantity": 8, "hidden": false}),
        )
        .await;
    assert_eq!(
        status, 422,
        "hidden is not a field a patch may change: {changed}"
    );
    let (status, changed) = app
        .patch(
            &one,
            Some(&organizer.token),
            json!({"quantity": 8, "name": "V.I.P."}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["quantity"].clone(), changed["name"].clone()),
        (json!(8), json!("V.I.P."))
    );
    assert_eq!(
        app.assert_ticket_invariant(&event_id).await.total_tickets,
        18
    );

    let general = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, hold) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&customer.token),
            json!({"items": [{"ticket_type_id": general, "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    let general_one = format!("{types}/{general}");
    let (status, refused) = app
        .patch(&general_one, Some(&organizer.token), json!({"quantity": 2}))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (status, refused) = app.delete(&general_one, &organizer.token).await;
    assert_eq!(status, 409, "a type that was held stays: {refused}");
    let (status, refused) = app
        .patch(
            &general_one,
            Some(&organizer.token),
            json!({"name": "v.i.p."}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, changed) = app
        .patch(&general_one, Some(&organizer.token), json!({"quantity": 3}))
        .await;
    assert_eq!(status, 200, "down to what is held: {changed}");
    assert_eq!(changed["available"], 0);

    let (status, _) = app.delete(&one, &organizer.token).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&one, &organizer.token).await;
    assert_eq!(status, 404);
    let event = app.assert_ticket_invariant(&event_id).await;
    assert_eq!(
        (
            event.total_tickets,
            event.available_tickets,
            event.held_tickets
        ),
        (3, 0, 3)
    );
    let (status, refused) = app.delete(&general_one, &organizer.token).await;
    assert_eq!(status, 409, "the only type stays: {refused}");
}

/// A new price applies to holds made afterwards; a hold keeps the prices it
/// was made at through its confirmation, and every total is Σ quantity ×
/// unit price.
#[tokio::test]
async fn a_price_change_applies_to_holds_made_afterwards() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [early, late] = [app.customer().await, app.customer().await];
    let (event_id, mut types) = event_selling(
        &app,
        &organizer,
        json!([{"name": "Standard", "price": 2000, "quantity": 10}]),
    )
    .await;
    let standard = types.remove(0);
    let holds = format!("/api/v1/events/{event_id}/holds");
    let (_, first) = app
        .post(&holds, Some(&early.token), json!({"quantity": 2}))
        .await;
    assert_eq!(first["total"], 4000, "{first}");
    let (status, changed) = app
        .patch(
            &format!("/api/v1/events/{event_id}/ticket_types/{standard}"),
            Some(&organizer.token),
            json!({"price": 3000}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (_, second) = app
        .post(&holds, Some(&late.token), json!({"quantity": 1}))
        .await;
    assert_eq!(
        (
            second["total"].clone(),
            second["items"][0]["unit_price"].clone()
        ),
        (json!(3000), json!(3000))
    );
    let (status, refused) = app
        .post(
            &format!("/api/v1/holds/{}/confirm", id(&first)),
            Some(&early.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 402, "a paid hold is booked by paying: {refused}");
    let (status, booking) = app.pay_for(&organizer, id(&first)).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(
        (
            booking["total"].clone(),
            booking["items"][0]["unit_price"].clone()
        ),
        (json!(4000), json!(2000))
    );
    for row in Booking::find().all(&app.db).await.unwrap() {
        let items = BookingItem::find().all(&app.db).await.unwrap();
        let sum: i64 = items
            .iter()
            .filter(|i| i.booking_id == row.id)
            .map(|i| i64::from(i.quantity) * i.unit_price)
            .sum();
        assert_eq!(row.total, sum);
    }
    app.assert_ticket_invariant(&event_id).await;
}

/// A waitlist entry may wait for one type: it can join only when that type is
/// sold out, and a returned ticket of that type is offered to it as a hold of
/// that type at that type's price.
#[tokio::test]
async fn a_waitlist_entry_for_a_type_is_offered_that_type() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [buyer, waiter, other] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let (event_id, types) = event_selling(
        &app,
        &organizer,
        json!([
            {"name": "Front", "price": 5000, "quantity": 1},
            {"name": "Back", "price": 1000, "quantity": 5},
        ]),
    )
    .await;
    let [front, back] = <[String; 2]>::try_from(types).unwrap();
    let one_front = json!({"items": [{"ticket_type_id": front, "quantity": 1}]});
    let (status, booking) = app.buy(&buyer, &organizer, &event_id, one_front).await;
    assert_eq!(status, 201, "{booking}");
    let waitlist = format!("/api/v1/events/{event_id}/waitlist");
    let (status, refused) = app
        .post(
            &waitlist,
            Some(&other.token),
            json!({"ticket_type_id": back}),
        )
        .await;
    assert_eq!(status, 409, "Back is on sale: {refused}");
    let (status, refused) = app
        .post(
            &waitlist,
            Some(&other.token),
            json!({"ticket_type_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"]["details"]["ticket_type_id"].is_string());
    let (status, place) = app
        .post(
            &waitlist,
            Some(&waiter.token),
            json!({"ticket_type_id": front}),
        )
        .await;
    assert_eq!(status, 201, "{place}");
    assert_eq!(place["ticket_type_id"], front.as_str());

    let (status, _) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, offers) = app
        .get("/api/v1/holds?status=active", Some(&waiter.token))
        .await;
    let offer = &offers["items"][0];
    assert_eq!(
        offer["items"][0]["ticket_type_id"],
        front.as_str(),
        "{offers}"
    );
    assert_eq!(offer["total"], 5000);
    app.assert_ticket_invariant(&event_id).await;
}

fn two_sections(types: Value, stalls: Value, balcony: Value) -> Value {
    json!({
        "title": "Quartet",
        "venue": "Small Hall",
        "starts_at": "2030-06-01T19:00:00Z",
        "ends_at": "2030-06-01T21:00:00Z",
        "ticket_types": types,
        "seating": {"sections": [
            {"name": "Stalls", "ticket_type": stalls, "rows": [{"label": "A", "seats": 4}]},
            {"name": "Balcony", "ticket_type": balcony, "rows": [{"label": "A", "seats": 4}]},
        ]},
    })
}

/// A seated event whose sections sell two priced types: a type's quantity is
/// its sections' seats, best-available holds and bookings by type stay inside
/// that type's sections, and particular seats are priced by their section.
#[tokio::test]
async fn a_seated_event_sells_each_section_at_its_type_s_price() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let [ann, bob, cat, dan] = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let types = json!([{"name": "Stalls", "price": 5000}, {"name": "Balcony", "price": 2000}]);
    let (status, event) = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            two_sections(types, json!("Stalls"), json!("Balcony")),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["total_tickets"], 8);
    assert_eq!(event["ticket_types"][1]["quantity"], 4);
    let [stalls, balcony] = <[String; 2]>::try_from(type_ids(&event).await).unwrap();
    let event_id = id(&event).to_owned();
    let labels = |body: &Value| -> Vec<String> {
        body["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["label"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, hold) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&ann.token),
            json!({"items": [{"ticket_type_id": balcony, "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(labels(&hold), ["Balcony A-1", "Balcony A-2"]);
    assert_eq!(hold["total"], 4000);

    let three_stalls = json!({"items": [{"ticket_type_id": stalls, "quantity": 3}]});
    let (status, booking) = app.buy(&bob, &organizer, &event_id, three_stalls).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(labels(&booking), ["Stalls A-1", "Stalls A-2", "Stalls A-3"]);
    assert_eq!(booking["total"], 15000);

    let (status, refused) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&cat.token),
            json!({"items": [{"ticket_type_id": balcony, "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["error"]["details"]["ticket_type_id"],
        balcony.as_str()
    );

    let (_, seats) = app
        .get(&format!("/api/v1/events/{event_id}/seats"), None)
        .await;
    let last_stall = seats["items"][3]["id"].as_str().unwrap().to_owned();
    let (status, seat_hold) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&dan.token),
            json!({"seat_ids": [last_stall]}),
        )
        .await;
    assert_eq!(status, 201, "{seat_hold}");
    assert_eq!(seat_hold["items"][0]["ticket_type_id"], stalls.as_str());
    assert_eq!(seat_hold["total"], 5000);
    app.assert_ticket_invariant(&event_id).await;
}

/// Sections and types that do not fit together are a 422 naming the field.
#[tokio::test]
async fn sections_must_name_the_event_s_types() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let types = json!([{"name": "Stalls", "price": 5000}, {"name": "Balcony", "price": 2000}]);
    let cases = [
        (
            two_sections(types.clone(), json!("Stalls"), json!("Gallery")),
            "seating.sections[1].ticket_type",
        ),
        (
            two_sections(types.clone(), json!("Stalls"), json!("Stalls")),
            "ticket_types[1].quantity",
        ),
        (
            two_sections(
                json!([{"name": "Stalls", "price": 5000, "quantity": 5}, {"name": "Balcony", "price": 2000}]),
                json!("Stalls"),
                json!("Balcony"),
            ),
            "ticket_types[0].quantity",
        ),
        (
            {
                let mut body = two_sections(types.clone(), json!("Stalls"), json!("Balcony"));
                body.as_object_mut().unwrap().remove("ticket_types");
                body
            },
            "seating.sections[0].ticket_type",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app
            .post("/api/v1/events", Some(&organizer.token), body)
            .await;
        assert_eq!(status, 422, "{field}: {answer}");
        assert!(
            answer["error"]["details"][field].is_string(),
            "{field}: {answer}"
        );
    }
    assert_eq!(app.count::<Event>().await, 0);
}
