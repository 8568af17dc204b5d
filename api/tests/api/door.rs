//! Tickets and the door (SPEC §15): a ticket per unit with a code anyone can
//! verify offline, door devices, and check-in that admits a ticket once
//! however many doors scan it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};
use uuid::Uuid;

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::helpers::{Mode, TestApp, TestUser, all_at_once, id, skipped};

async fn scan(app: &TestApp, token: &str, event_id: &str, code: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/events/{event_id}/checkin"),
        Some(token),
        json!({"code": code}),
    )
    .await
}

async fn device(app: &TestApp, organizer: &TestUser, event_id: &str, name: &str) -> Value {
    let (status, device) = app
        .post(
            &format!("/api/v1/events/{event_id}/checkin/devices"),
            Some(&organizer.token),
            json!({"name": name}),
        )
        .await;
    assert_eq!(status, 201, "{device}");
    assert!(device["token"].as_str().unwrap().starts_with("door_"));
    device
}

/// What a scanner does offline with the README's layout and the public key
/// alone: base64url → 96 bytes = ticket id (16), event id (16), Ed25519
/// signature (64) over the first 32.
fn verify_offline(public_key: &str, code: &str, event_id: &str) -> Option<Uuid> {
    let key: [u8; 32] = URL_SAFE_NO_PAD.decode(public_key).ok()?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&key).ok()?;
    let raw = URL_SAFE_NO_PAD.decode(code).ok()?;
    if raw.len() != 96 || code.len() > 128 {
        return None;
    }
    let signature = Signature::from_bytes(&raw[32..96].try_into().ok()?);
    key.verify(&raw[..32], &signature).ok()?;
    let event = Uuid::from_slice(&raw[16..32]).ok()?;
    (event.to_string() == event_id).then(|| Uuid::from_slice(&raw[..16]).ok())?
}

/// A booking has one ticket per unit, each with a code of at most 128
/// URL-safe characters that verifies offline with only the public key; a
/// code with one character changed, signed by another key or for another
/// event never checks in; a cancelled booking's tickets are refused.
#[tokio::test]
async fn tickets_carry_codes_that_verify_offline_and_forgeries_never_check_in() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 20).await;
    let event_id = id(&event).to_owned();
    let other_event = app.event(&organizer, 5).await;
    let (status, booking) = app.book(&customer, &event_id, 3).await;
    assert_eq!(status, 201, "{booking}");
    let issued = app.tickets(&customer, id(&booking)).await;
    assert_eq!(issued.len(), 3);
    assert_eq!(app.tickets(&organizer, id(&booking)).await.len(), 3);
    let stranger = app.customer().await;
    let (status, _) = app
        .get(
            &format!("/api/v1/bookings/{}/tickets", id(&booking)),
            Some(&stranger.token),
        )
        .await;
    assert_eq!(status, 404);

    let (status, key) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkin/key"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["algorithm"], "ed25519");
    let public_key = key["public_key"].as_str().unwrap();
    for ticket in &issued {
        let code = ticket["code"].as_str().unwrap();
        assert!(code.len() <= 128);
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            verify_offline(public_key, code, &event_id),
            Some(ticket["id"].as_str().unwrap().parse().unwrap())
        );
        assert_eq!(verify_offline(public_key, code, id(&other_event)), None);
        assert_eq!(ticket["status"], "valid");
    }

    let code = issued[0]["code"].as_str().unwrap();
    let mut altered = code.to_owned().into_bytes();
    altered[50] = if altered[50] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(verify_offline(public_key, &altered, &event_id), None);
    let ticket_id: Uuid = issued[0]["id"].as_str().unwrap().parse().unwrap();
    let forged = ticket_code::Signer::from_seed(&ticket_code::Signer::generate_seed())
        .unwrap()
        .code(ticket_id, event_id.parse().unwrap());
    let other_events = ticket_code::Signer::from_seed(&ticket_code::Signer::generate_seed())
        .unwrap()
        .code(ticket_id, id(&other_event).parse().unwrap());
    for bad in [
        altered.as_str(),
        &forged,
        &code[..100],
        "garbage",
        "",
        &"A".repeat(128),
    ] {
        let (status, error) = scan(&app, &organizer.token, &event_id, bad).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (404, Some("unknown_ticket")),
            "{bad}: {error}"
        );
    }
    let (status, _) = scan(&app, &organizer.token, id(&other_event), code).await;
    assert_eq!(status, 404, "another event's door");
    let _ = other_events;

    let (status, admitted) = scan(&app, &organizer.token, &event_id, code).await;
    assert_eq!(status, 200, "{admitted}");
    assert_eq!(admitted["status"], "ok");
    assert_eq!(admitted["attendee"]["name"], "customer person");
    assert!(admitted["checked_in_at"].is_string());

    let (status, _) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", id(&booking)),
            Some(&customer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let cancelled = app.tickets(&customer, id(&booking)).await;
    assert!(cancelled.iter().all(|t| t["status"] == "cancelled"));
    let (status, error) = scan(
        &app,
        &organizer.token,
        &event_id,
        cancelled[1]["code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (409, Some("ticket_cancelled"))
    );
}

/// Fifty scans of one ticket at once, from five door devices: exactly one
/// admits it, the rest say when and by which device; a revoked device is
/// refused at once; a device works at its own event only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_scans_of_one_ticket_from_five_doors_admit_it_once() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = id(&event).to_owned();
    let (_, booking) = app.book(&customer, &event_id, 1).await;
    let code = app.tickets(&customer, id(&booking)).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut devices = Vec::new();
    for n in 0..5 {
        devices.push(device(&app, &organizer, &event_id, &format!("Gate {n}")).await);
    }
    let url = app.url(&format!("/api/v1/events/{event_id}/checkin"));
    let shots = (0..50)
        .map(|i| {
            let token = devices[i % 5]["token"].as_str().unwrap().to_owned();
            (url.clone(), token, json!({"code": code}))
        })
        .collect();
    let answers = all_at_once(shots).await;
    let admitted: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(admitted.len(), 1, "{answers:?}");
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!(refused.len(), 49, "{answers:?}");
    let device_ids: Vec<&str> = devices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    for (_, error) in &refused {
        assert_eq!(error["error"]["code"], "already_checked_in");
        assert_eq!(
            error["error"]["details"]["checked_in_at"],
            admitted[0].1["checked_in_at"]
        );
        assert!(device_ids.contains(&error["error"]["details"]["device"].as_str().unwrap()));
    }

    let gate = &devices[0];
    let token = gate["token"].as_str().unwrap();
    let (status, _) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkin/key"),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "a device reads its event's key");
    let elsewhere = app.event(&organizer, 10).await;
    let (status, _) = scan(&app, token, id(&elsewhere), &code).await;
    assert_eq!(status, 403, "a device works at its own event only");
    let (status, revoked) = app
        .delete(
            &format!("/api/v1/events/{event_id}/checkin/devices/{}", id(gate)),
            &organizer.token,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert!(revoked.get("token").is_none(), "the token is shown once");
    let (status, error) = scan(&app, token, &event_id, &code).await;
    assert_eq!(status, 401, "revoked at once: {error}");
}

/// Sends the scans (code, door token) at once; a scan answered 503 (the
/// database's pool was busy past its timeout: nothing was written) is sent
/// again, as a scanner would. Returns each scan's final answer.
async fn scan_all_at_once(url: &str, scans: &[(String, String)]) -> Vec<(u16, Value)> {
    let mut answers: Vec<(u16, Value)> = vec![(503, Value::Null); scans.len()];
    for _ in 0..5 {
        let pending: Vec<usize> = (0..scans.len()).filter(|&i| answers[i].0 == 503).collect();
        if pending.is_empty() {
            break;
        }
        let shots = pending
            .iter()
            .map(|&i| {
                let (code, token) = &scans[i];
                (url.to_owned(), token.clone(), json!({"code": code}))
            })
            .collect();
        for (i, answer) in pending.into_iter().zip(all_at_once(shots).await) {
            answers[i] = answer;
        }
    }
    answers
}

/// A thousand tickets of a hundred customers scanned at once at two doors
/// (the scans of one moment are checked in together): each admitted once,
/// and each answer is its own scan's: its ticket, its attendee, its door;
/// scanned again, each refused; the report counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_tickets_checked_in_at_once_are_each_admitted_once() {
    // As many connections as a production api has.
    let app = TestApp::spawn_with(|settings| settings.db_max_connections = 32).await;
    let organizer = app.organizer().await;
    let event = app.event(&organizer, 1_000).await;
    let event_id = id(&event).to_owned();
    let customers = app.customers(100).await;
    let gates = [
        device(&app, &organizer, &event_id, "North gate").await,
        device(&app, &organizer, &event_id, "South gate").await,
    ];
    // (code, door token), and what its answer must say: ticket, attendee, door.
    let mut scans = Vec::new();
    let mut expected = Vec::new();
    for (n, customer) in customers.iter().enumerate() {
        let (status, booking) = app.book(customer, &event_id, 10).await;
        assert_eq!(status, 201, "{booking}");
        for ticket in app.tickets(customer, id(&booking)).await {
            let gate = &gates[scans.len() % 2];
            scans.push((
                ticket["code"].as_str().unwrap().to_owned(),
                gate["token"].as_str().unwrap().to_owned(),
            ));
            expected.push((
                ticket["id"].clone(),
                format!("Crowd {n}"),
                gate["id"].clone(),
            ));
        }
    }
    assert_eq!(scans.len(), 1_000);
    let url = app.url(&format!("/api/v1/events/{event_id}/checkin"));
    let first = scan_all_at_once(&url, &scans).await;
    for ((status, answer), (ticket_id, attendee, _)) in first.iter().zip(&expected) {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(&answer["ticket"]["id"], ticket_id, "{answer}");
        assert_eq!(answer["attendee"]["name"], attendee.as_str(), "{answer}");
        assert_eq!(answer["ticket"]["checked_in_at"], answer["checked_in_at"]);
    }
    let again = scan_all_at_once(&url, &scans).await;
    for ((status, answer), (_, _, gate_id)) in again.iter().zip(&expected) {
        assert_eq!(*status, 409, "{answer}");
        assert_eq!(answer["error"]["code"], "already_checked_in");
        assert_eq!(&answer["error"]["details"]["device"], gate_id, "{answer}");
    }
    let (_, report) = app
        .get(
            &format!("/api/v1/events/{event_id}/report"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(report["checked_in"], 1_000);
}

/// Offline: the scanner's cache lists every ticket; an upload answers each
/// scan as a scan would; an offline scan earlier than the online one becomes
/// the entry; the same upload again changes nothing; an upload too large is
/// refused whole.
#[tokio::test]
async fn offline_scans_upload_idempotently_and_the_earliest_is_the_entry() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id = id(&event).to_owned();
    let (_, booking) = app.book(&customer, &event_id, 3).await;
    let issued = app.tickets(&customer, id(&booking)).await;
    let code = |i: usize| issued[i]["code"].as_str().unwrap().to_owned();
    let gate = device(&app, &organizer, &event_id, "Back door").await;
    let token = gate["token"].as_str().unwrap().to_owned();

    let (status, page) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkin/tickets"),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert!(page["next_cursor"].is_null());

    let (status, online) = scan(&app, &token, &event_id, &code(0)).await;
    assert_eq!(status, 200);
    let online_at: chrono::DateTime<chrono::Utc> =
        online["checked_in_at"].as_str().unwrap().parse().unwrap();
    let earlier = (online_at - chrono::Duration::minutes(10)).to_rfc3339();
    let later = (online_at + chrono::Duration::minutes(10)).to_rfc3339();
    let upload = json!({"scans": [
        {"code": code(0), "scanned_at": earlier},
        {"code": code(1), "scanned_at": earlier},
        {"code": code(1), "scanned_at": later},
        {"code": "forged", "scanned_at": earlier},
    ]});
    let path = format!("/api/v1/events/{event_id}/checkin/upload");
    let (status, first) = app.post(&path, Some(&token), upload.clone()).await;
    assert_eq!(status, 200, "{first}");
    let statuses: Vec<&str> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "error", "error"], "{first}");
    assert_eq!(first["results"][2]["error"]["code"], "already_checked_in");
    assert_eq!(first["results"][3]["error"]["code"], "unknown_ticket");
    let state = || async {
        let (_, page) = app
            .get(
                &format!("/api/v1/events/{event_id}/checkin/tickets"),
                Some(&token),
            )
            .await;
        page
    };
    let after_first = state().await;
    let entry = |page: &Value, ticket: &Value| -> Option<chrono::DateTime<chrono::Utc>> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == ticket["id"])
            .and_then(|t| t["checked_in_at"].as_str())
            .map(|at| at.parse().unwrap())
    };
    assert_eq!(
        entry(&after_first, &issued[0]),
        Some(online_at - chrono::Duration::minutes(10)),
        "the earliest scan is the entry"
    );
    assert_eq!(
        entry(&after_first, &issued[1]),
        Some(online_at - chrono::Duration::minutes(10))
    );
    assert_eq!(entry(&after_first, &issued[2]), None);
    let (status, second) = app.post(&path, Some(&token), upload).await;
    assert_eq!(status, 200);
    assert_eq!(second["results"], first["results"], "the same answers");
    assert_eq!(state().await, after_first, "and the same state");

    let many: Vec<Value> = (0..10_000)
        .map(|_| json!({"code": code(2), "scanned_at": earlier}))
        .collect();
    let (status, _) = app.post(&path, Some(&token), json!({"scans": many})).await;
    assert_eq!(status, 413);
    assert_eq!(entry(&state().await, &issued[2]), None, "nothing applied");
}

/// A booking's tickets are read through their booking's index even from a
/// table PostgreSQL has no statistics for yet, as on a new database in an
/// on-sale's first minute (autovacuum analyzes it later). Asked for them in id
/// order, the planner scanned every ticket instead: one scan per round of
/// confirmation emails, which took the worker's database time and the
/// bookings' with it.
#[tokio::test]
async fn a_bookings_tickets_are_read_by_index_before_the_table_has_statistics() {
    if skipped(Mode::Production) {
        return;
    }
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (status, booking) = app.book(&customer, id(&event), 2).await;
    assert_eq!(status, 201, "{booking}");
    let booking_id: Uuid = id(&booking).parse().unwrap();
    let ticket_type = event["ticket_types"][0]["id"].as_str().unwrap();
    // Other bookings' tickets, written with no ANALYZE after them.
    app.db
        .execute_unprepared(&format!(
            "INSERT INTO tickets (id, booking_id, event_id, ticket_type_id, status, created_at) \
             SELECT gen_random_uuid(), gen_random_uuid(), '{}', '{ticket_type}', 'valid', now() \
             FROM generate_series(1, 200000)",
            id(&event)
        ))
        .await
        .unwrap();

    let txn = app.db.begin().await.unwrap();
    let tickets = inventory::issued::of_bookings(&txn, &[booking_id])
        .await
        .unwrap();
    assert_eq!(tickets[&booking_id].len(), 2);
    assert!(tickets[&booking_id][0].id < tickets[&booking_id][1].id);
    // This transaction's own scans of the table, counted before they are
    // reported to the statistics collector.
    let scans = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'tickets'",
        ))
        .await
        .unwrap()
        .unwrap();
    let sequential: i64 = scans.try_get("", "seq_scan").unwrap();
    let by_index: i64 = scans.try_get("", "idx_scan").unwrap();
    assert_eq!((sequential, by_index), (0, 1));
}
