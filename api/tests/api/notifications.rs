use std::{sync::Arc, time::Duration};

use entity::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use worker::{
    delivery::{Deliverer, Outcome},
    mailer::Mailer,
};

use crate::helpers::{Mode, TestApp, skipped};

/// A worker's delivery logic on its own, as a second worker racing the app's.
async fn deliverer(app: &TestApp) -> Arc<Deliverer> {
    let tickets = inventory::signing::signer(&app.db, None).await.unwrap();
    Arc::new(Deliverer::new(
        app.db.clone(),
        Mailer::from_settings(&app.settings.worker.mail, 1).unwrap(),
        app.settings.worker.mail.clone(),
        app.settings.worker.delivery.clone(),
        Arc::new(tickets),
    ))
}

#[tokio::test]
async fn a_booking_is_confirmed_by_email() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (_, booking) = app.book(&customer, event["id"].as_str().unwrap(), 2).await;

    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, std::slice::from_ref(&customer.email));
    assert_eq!(mail.subject(), "Booking confirmed: Night of Rust");
    for expected in [
        "Hall A",
        "Wednesday 1 May 2030, 19:00 UTC",
        "Tickets:  2",
        booking["id"].as_str().unwrap(),
    ] {
        assert!(
            mail.text.contains(expected),
            "missing {expected:?} in\n{}",
            mail.text
        );
    }
    let settled = app.settle_notifications().await;
    assert_eq!(settled[0].status, NotificationStatus::Sent);
    assert_eq!(settled[0].attempts, 1);
    assert!(settled[0].sent_at.is_some());
}

#[tokio::test]
async fn an_event_change_emails_each_booked_customer_once_saying_what_changed() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let cat = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();
    app.book(&ann, id, 1).await;
    app.book(&ann, id, 2).await; // two bookings, still one email per update
    app.book(&bob, id, 1).await;
    let (_, cancelled) = app.book(&cat, id, 1).await;
    app.post(
        &format!(
            "/api/v1/bookings/{}/cancel",
            cancelled["id"].as_str().unwrap()
        ),
        Some(&cat.token),
        json!({}),
    )
    .await;
    app.smtp.wait_for(5).await; // 4 confirmations, 1 cancellation
    app.settle_notifications().await;
    let before = app.smtp.messages().len();

    // Capacity alone is not news to customers.
    let path = format!("/api/v1/events/{id}");
    assert_eq!(
        app.patch(&path, Some(&organizer.token), json!({"total_tickets": 20}))
            .await
            .0,
        200
    );
    let (status, _) = app
        .patch(
            &path,
            Some(&organizer.token),
            json!({"venue": "Grand Hall", "starts_at": "2030-05-01T20:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200);

    let mails = app.smtp.wait_for(before + 2).await;
    app.settle_notifications().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let updates: Vec<_> = app
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject().starts_with("Event changed"))
        .collect();
    assert_eq!(mails.len(), before + 2);
    assert_eq!(
        updates.len(),
        2,
        "one per customer holding a confirmed booking"
    );
    assert_eq!(
        app.smtp
            .to(&ann.email)
            .iter()
            .filter(|m| m.subject().starts_with("Event changed"))
            .count(),
        1
    );
    assert_eq!(
        app.smtp
            .to(&bob.email)
            .iter()
            .filter(|m| m.subject().starts_with("Event changed"))
            .count(),
        1
    );
    assert!(
        app.smtp
            .to(&cat.email)
            .iter()
            .all(|m| !m.subject().starts_with("Event changed"))
    );
    let text = &updates[0].text;
    assert!(text.contains("Venue: Hall A → Grand Hall"), "{text}");
    assert!(
        text.contains("Starts: Wednesday 1 May 2030, 19:00 UTC → Wednesday 1 May 2030, 20:00 UTC"),
        "{text}"
    );
    assert!(!text.contains("total_tickets"), "{text}");
}

#[tokio::test]
async fn a_cancellation_is_confirmed_by_email() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (_, booking) = app.book(&customer, event["id"].as_str().unwrap(), 2).await;
    let booking_id = booking["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/bookings/{booking_id}/cancel"),
        Some(&customer.token),
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/v1/bookings/{booking_id}/cancel"),
        Some(&customer.token),
        json!({}),
    )
    .await;

    app.smtp.wait_for(2).await;
    app.settle_notifications().await;
    let mails = app.smtp.to(&customer.email);
    assert_eq!(mails.len(), 2);
    let cancellation = mails
        .iter()
        .find(|m| m.subject() == "Booking cancelled: Night of Rust")
        .expect("cancellation email");
    assert!(cancellation.text.contains(booking_id));
}

#[tokio::test]
async fn a_job_delivered_many_times_sends_one_email() {
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    app.book(&customer, event["id"].as_str().unwrap(), 1).await;
    app.smtp.wait_for(1).await;
    let id = app.settle_notifications().await[0].id;

    // The queue hands the same job out again (a retry, a redelivery, a duplicate push).
    let queue = app.queue().await;
    for _ in 0..5 {
        let job = platform::DeliverNotification {
            notification_id: id,
            request_id: None,
        };
        queue.push(vec![job]).await.unwrap();
    }
    // And several workers race for it directly.
    let deliverer = deliverer(&app).await;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let deliverer = deliverer.clone();
            tokio::spawn(async move { deliverer.deliver(id).await.unwrap() })
        })
        .collect();
    for racer in racers {
        assert_eq!(racer.await.unwrap(), Outcome::Skipped);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // the pushed jobs are consumed by now
    assert_eq!(app.smtp.messages().len(), 1);
    assert_eq!(app.notifications().await[0].attempts, 1);
}

/// Eight workers, each with its own deliverer (so each claims in a statement
/// of its own), released together on one pending notification: exactly one
/// sends. The row is written straight into the outbox with no job pushed and
/// the sweep idle, so the app's own worker never sees it: only the racers do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_a_pending_notification_send_once() {
    const RACERS: usize = 8;
    let app = TestApp::spawn_with(|s| {
        s.worker.delivery.redeliver_after = Duration::from_secs(3600);
        s.worker.delivery.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let (_, booking) = app.book(&customer, event["id"].as_str().unwrap(), 1).await;
    app.settle_notifications().await;
    let before = app.smtp.messages().len();
    let ids = inventory::outbox::write(
        &app.db,
        None,
        vec![inventory::outbox::Notice {
            kind: NotificationKind::BookingCancelled,
            user_id: customer.id,
            event_id: event["id"].as_str().unwrap().parse().unwrap(),
            booking_id: Some(booking["id"].as_str().unwrap().parse().unwrap()),
            hold_id: None,
            changes: None,
            refund_id: None,
            webhook_endpoint_id: None,
        }],
    )
    .await
    .unwrap();
    let id = ids[0];
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let (deliverer, start) = (deliverer(&app).await, start.clone());
        racers.push(tokio::spawn(async move {
            start.wait().await;
            deliverer.deliver(id).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    let sent = outcomes.iter().filter(|o| **o == Outcome::Sent).count();
    let skipped = outcomes.iter().filter(|o| **o == Outcome::Skipped).count();
    assert_eq!((sent, skipped), (1, RACERS - 1), "{outcomes:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), before + 1);
    let row = Notification::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status, row.attempts), (NotificationStatus::Sent, 1));
}

/// The queue loses the job after the booking committed (embedded queue here; the
/// Redis variant below stops a real Redis): the outbox sweep pushes it again.
#[tokio::test]
async fn a_lost_job_is_found_by_the_sweep_and_delivered() {
    if skipped(Mode::Embedded) {
        return;
    }
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;

    // Every job pushed from now on vanishes, as if the queue had been wiped; each
    // loss is recorded, so the test knows when the push has happened.
    app.db
        .execute_unprepared("CREATE TABLE lost_jobs (id TEXT)")
        .await
        .unwrap();
    app.db
        .execute_unprepared(
            "CREATE TRIGGER lose_jobs AFTER INSERT ON Jobs BEGIN \
             INSERT INTO lost_jobs VALUES (NEW.id); DELETE FROM Jobs WHERE id = NEW.id; END",
        )
        .await
        .unwrap();
    app.book(&customer, event["id"].as_str().unwrap(), 1).await;
    let first_push = app.notifications().await[0].enqueued_at.unwrap();
    let mut lost = 0;
    for _ in 0..600 {
        lost = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM lost_jobs",
            ))
            .await
            .unwrap()
            .and_then(|row| row.try_get::<i64>("", "n").ok())
            .unwrap_or(0);
        if lost > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lost > 0, "the premise: the job was pushed, and lost");
    assert!(
        app.smtp.messages().is_empty(),
        "the job was lost, nothing can have been sent"
    );
    app.db
        .execute_unprepared("DROP TRIGGER lose_jobs")
        .await
        .unwrap();

    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].subject(), "Booking confirmed: Night of Rust");
    let settled = app.settle_notifications().await;
    assert!(
        settled[0].enqueued_at.unwrap() > first_push,
        "delivered through the sweep's push"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.smtp.messages().len(),
        1,
        "re-enqueued, but not sent twice"
    );
}

#[tokio::test]
async fn refused_mail_is_retried_then_marked_failed() {
    let app = TestApp::spawn().await;
    app.smtp.refuse_mail(true);
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    app.book(&customer, event["id"].as_str().unwrap(), 1).await;

    let settled = app.settle_notifications().await;
    assert_eq!(settled[0].status, NotificationStatus::Failed);
    assert_eq!(
        settled[0].attempts,
        app.settings.worker.delivery.max_attempts
    );
    assert!(
        settled[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("refused"),
        "{:?}",
        settled[0].last_error
    );
    assert!(app.smtp.messages().is_empty());

    // And it shows: the outbox gauge (this test's database) and the worker's
    // counter (process-wide, so at least ours).
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"notifications{status="failed"} 1"#),
        "{metrics}"
    );
    let failed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"worker_jobs_processed_total{outcome="failed"} "#))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "{metrics}");
}

/// A send that can never succeed is not retried: a permanent SMTP rejection, or a
/// customer whose address the mailer cannot use.
#[tokio::test]
async fn permanent_failures_are_marked_failed_at_once() {
    let app = TestApp::spawn().await;
    app.smtp.reject_mail(true);
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();
    app.book(&customer, id, 1).await;
    let settled = app.settle_notifications().await;
    assert_eq!(settled[0].status, NotificationStatus::Failed);
    assert_eq!(settled[0].attempts, 1, "{:?}", settled[0]);
    assert!(
        settled[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("rejected")),
        "{:?}",
        settled[0].last_error
    );

    // An address that went bad behind the api's back.
    app.smtp.reject_mail(false);
    let other = app.customer().await;
    User::update_many()
        .col_expr(
            UserColumn::Email,
            sea_orm::sea_query::Expr::value("not an address"),
        )
        .filter(UserColumn::Id.eq(other.id))
        .exec(&app.db)
        .await
        .unwrap();
    app.book(&other, id, 1).await;
    let settled = app.settle_notifications().await;
    let theirs = settled.iter().find(|n| n.user_id == other.id).unwrap();
    assert_eq!(theirs.status, NotificationStatus::Failed);
    assert_eq!(theirs.attempts, 1, "{theirs:?}");
    assert!(app.smtp.messages().is_empty());
}

#[tokio::test]
async fn a_notification_refused_once_is_delivered_on_retry() {
    let app =
        TestApp::spawn_with(|s| s.worker.delivery.retry_base = Duration::from_millis(800)).await;
    app.smtp.refuse_mail(true);
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    app.book(&customer, event["id"].as_str().unwrap(), 1).await;
    for _ in 0..200 {
        if app.notifications().await[0].last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.smtp.refuse_mail(false);
    app.smtp.wait_for(1).await;
    let settled = app.settle_notifications().await;
    assert_eq!(settled[0].status, NotificationStatus::Sent);
    assert!(settled[0].attempts >= 2);
}

/// The delivery promise with a real Redis going away: bookings made while it is
/// down are confirmed once it is back, though it comes back empty.
#[tokio::test]
async fn confirmations_survive_redis_being_down_and_restarted_empty() {
    if skipped(Mode::Production) {
        return;
    }
    let redis = PrivateRedis::start();
    let app = TestApp::spawn_with(|s| {
        s.storage.queue = platform::QueueBackend::Redis { url: redis.url() };
    })
    .await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let id = event["id"].as_str().unwrap();

    redis.stop();
    let mut booked = Vec::new();
    for _ in 0..3 {
        let (status, booking) = app.book(&customer, id, 1).await;
        assert_eq!(status, 201, "bookings go on while Redis is down: {booking}");
        booked.push(booking["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.smtp.messages().is_empty());

    redis.start_again();
    let mails = app.smtp.wait_for(3).await;
    app.settle_notifications().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.smtp.messages().len(),
        3,
        "each confirmation exactly once"
    );
    for booking in booked {
        assert_eq!(
            mails.iter().filter(|m| m.text.contains(&booking)).count(),
            1
        );
    }
}

/// A redis-server of the test's own on a free port, so stopping it disturbs no
/// other test.
pub struct PrivateRedis {
    port: u16,
    child: std::sync::Mutex<Option<std::process::Child>>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = Self {
            port,
            child: std::sync::Mutex::new(None),
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start_again(&self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        *self.child.lock().unwrap() = Some(child);
    }

    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A worker down under load leaves a backlog far beyond what one apalis fetch
/// can move (about 8,000 jobs): all of it is delivered once the worker is back,
/// each email once, and Redis keeps nothing of the finished jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_backlog_is_delivered_once_and_leaves_redis_clean() {
    if skipped(Mode::Production) {
        return;
    }
    let count: usize = std::env::var("BACKLOG_NOTIFICATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let mut app = TestApp::spawn().await;
    let organizer = app.organizer().await;
    let customer = app.customer().await;
    let event = app.event(&organizer, 10).await;
    let event_id: uuid::Uuid = event["id"].as_str().unwrap().parse().unwrap();

    app.stop_worker().await;
    let queue = app.queue().await;
    let ids: Vec<uuid::Uuid> = (0..count).map(|_| uuid::Uuid::now_v7()).collect();
    // The rows the api writes, as if 50,000 updates had been committed.
    let notice = || api::domain::outbox::Notice {
        kind: NotificationKind::EventUpdated,
        user_id: customer.id,
        event_id,
        booking_id: None,
        hold_id: None,
        changes: None,
        refund_id: None,
        webhook_endpoint_id: None,
    };
    for chunk in ids.chunks(1_000) {
        Notification::insert_many(chunk.iter().map(|&id| notice().row(id, None)))
            .exec(&app.db)
            .await
            .unwrap();
        let jobs = chunk
            .iter()
            .map(|&notification_id| platform::DeliverNotification {
                notification_id,
                request_id: None,
            })
            .collect();
        queue.push(jobs).await.unwrap();
    }

    app.start_worker(|s| s.worker.concurrency = 32).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let sent = Notification::find()
            .filter(NotificationColumn::Status.eq(NotificationStatus::Sent))
            .count(&app.db)
            .await
            .unwrap();
        if sent as usize == count {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {sent} of {count} sent after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Jobs the sweep pushed again meanwhile find their rows sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.smtp.messages().len(), count, "each email exactly once");

    let settings = &app.settings.storage;
    let platform::QueueBackend::Redis { url } = &settings.queue else {
        unreachable!("production mode uses Redis");
    };
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:notifications*", settings.queue_namespace))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        keys.len() <= 8,
        "Redis keeps {} keys for a drained queue: {:?}",
        keys.len(),
        &keys[..keys.len().min(20)]
    );
    let payloads: usize = redis::cmd("HLEN")
        .arg(format!("{}:notifications:data", settings.queue_namespace))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(payloads, 0, "finished jobs' payloads are gone");
}
