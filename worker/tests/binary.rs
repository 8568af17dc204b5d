//! The `worker` binary as an operator runs it: it finds an undelivered
//! notification, sends it, reports healthy, and exits 0 on SIGTERM.

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use entity::prelude::*;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use uuid::Uuid;

async fn seed_pending_confirmation(url: &str) -> (sea_orm::DatabaseConnection, Uuid, Uuid) {
    let db = platform::db::connect(url, 2).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let now = Utc::now();
    let user = UserActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set("ann@example.com".into()),
        password_hash: Set("-".into()),
        name: Set("Ann".into()),
        role: Set(Role::Customer),
        created_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    let event = EventActiveModel {
        id: Set(Uuid::now_v7()),
        organizer_id: Set(user.id),
        title: Set("Night of Rust".into()),
        description: Set(None),
        venue: Set("Hall A".into()),
        starts_at: Set(now + chrono::Duration::days(30)),
        ends_at: Set(now + chrono::Duration::days(30) + chrono::Duration::hours(3)),
        total_tickets: Set(10),
        available_tickets: Set(8),
        held_tickets: Set(0),
        booked_tickets: Set(2),
        hold_minutes: Set(10),
        offer_minutes: Set(30),
        on_sale_at: Set(None),
        waiting_room_enabled: Set(false),
        admit_per_minute: Set(60),
        pass_minutes: Set(10),
        seated: Set(false),
        status: Set(EventStatus::Scheduled),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    let booking = BookingActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event.id),
        user_id: Set(user.id),
        quantity: Set(2),
        status: Set(BookingStatus::Confirmed),
        created_at: Set(now),
        cancelled_at: Set(None),
    }
    .insert(&db)
    .await
    .unwrap();
    // Never enqueued: only the sweep can find it.
    let notification = NotificationActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(NotificationKind::BookingConfirmed),
        user_id: Set(user.id),
        event_id: Set(event.id),
        booking_id: Set(Some(booking.id)),
        hold_id: Set(None),
        changes: Set(None),
        status: Set(NotificationStatus::Pending),
        attempts: Set(0),
        last_error: Set(None),
        next_attempt_at: Set(now),
        enqueued_at: Set(None),
        locked_until: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
        request_id: Set(Some("seeded".into())),
    }
    .insert(&db)
    .await
    .unwrap();
    (db, booking.id, notification.id)
}

fn healthcheck(metrics: SocketAddr) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("healthcheck")
        .env("METRICS_ADDR", metrics.to_string())
        .status()
        .unwrap()
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_delivers_reports_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("booking.db").display()
    );
    let (db, booking_id, notification_id) = seed_pending_confirmation(&url).await;
    let mail_dir = dir.path().join("mail");
    let metrics: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("MAIL_DIR", &mail_dir)
        .env("METRICS_ADDR", metrics.to_string())
        .env("NOTIFY_SWEEP_INTERVAL_MS", "100")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let found = std::fs::read_dir(&mail_dir).ok().and_then(|entries| {
            entries
                .flatten()
                .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        });
        if let Some(entry) = found {
            break std::fs::read_to_string(entry.path()).unwrap();
        }
        assert!(Instant::now() < deadline, "no email within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        mail.contains("Subject: Booking confirmed: Night of Rust"),
        "{mail}"
    );
    assert!(mail.contains(&booking_id.to_string()), "{mail}");
    assert_eq!(healthcheck(metrics), Some(0));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("worker did not exit within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        healthcheck(metrics),
        Some(1),
        "nothing answers once it has stopped"
    );

    let row = Notification::find_by_id(notification_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, NotificationStatus::Sent);
    assert_eq!(row.attempts, 1);
}

#[test]
fn a_bad_setting_stops_the_worker_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_worker"))
        .env_clear()
        .env("WORKER_CONCURRENCY", "many")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: WORKER_CONCURRENCY:"), "{stderr}");
}

/// Counts the `.eml` files per recipient.
fn mails_by_recipient(dir: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if let Some(to) = text.lines().find_map(|l| l.strip_prefix("To: ")) {
            *counts.entry(to.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

fn start_worker(url: &str, mail_dir: &std::path::Path) -> std::process::Child {
    let metrics: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .env_clear()
        .env("DATABASE_URL", url)
        .env("MAIL_DIR", mail_dir)
        .env("METRICS_ADDR", metrics.to_string())
        .env("WORKER_CONCURRENCY", "8")
        .env("NOTIFY_SWEEP_INTERVAL_MS", "100")
        .env("NOTIFY_REDELIVER_AFTER_MS", "500")
        .env("NOTIFY_LEASE_MS", "1000")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL in the middle of a 500-email event-update fan-out, then a restart:
/// every customer gets the update. A worker killed between handing a message to
/// the mail transport and recording it as sent makes a duplicate possible, so
/// the promise is at-least-once; this measures how many duplicates a kill costs
/// and holds it to the messages that can be in flight (the worker's concurrency).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_fan_out_leaves_nobody_without_their_email() {
    const CUSTOMERS: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("booking.db").display()
    );
    let (db, _, _) = seed_pending_confirmation(&url).await;
    // Mark the seeded confirmation done; this test is about the fan-out.
    Notification::update_many()
        .col_expr(
            entity::notification::Column::Status,
            sea_orm::sea_query::Expr::value(NotificationStatus::Sent),
        )
        .exec(&db)
        .await
        .unwrap();
    let event = Event::find().one(&db).await.unwrap().unwrap();
    let now = Utc::now();
    let users: Vec<_> = (0..CUSTOMERS)
        .map(|i| UserActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(format!("fan{i}@example.com")),
            password_hash: Set("-".into()),
            name: Set(format!("Fan {i}")),
            role: Set(Role::Customer),
            created_at: Set(now),
        })
        .collect();
    let ids: Vec<Uuid> = users.iter().map(|u| *u.id.as_ref()).collect();
    for chunk in users.chunks(100) {
        User::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    let changes = serde_json::json!([{"field": "venue", "old": "Hall A", "new": "Hall B"}]);
    let notices: Vec<_> = ids
        .iter()
        .map(|&user_id| NotificationActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(NotificationKind::EventUpdated),
            user_id: Set(user_id),
            event_id: Set(event.id),
            booking_id: Set(None),
            hold_id: Set(None),
            changes: Set(Some(changes.clone())),
            status: Set(NotificationStatus::Pending),
            attempts: Set(0),
            last_error: Set(None),
            next_attempt_at: Set(now),
            enqueued_at: Set(None),
            locked_until: Set(None),
            sent_at: Set(None),
            created_at: Set(now),
            request_id: Set(None),
        })
        .collect();
    for chunk in notices.chunks(100) {
        Notification::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .unwrap();
    }

    let mail_dir = dir.path().join("mail");
    let mut first = start_worker(&url, &mail_dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while mails_by_recipient(&mail_dir).values().sum::<usize>() < 100 {
        assert!(Instant::now() < deadline, "the fan-out did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let sent_at_kill: usize = mails_by_recipient(&mail_dir).values().sum();
    assert!(
        sent_at_kill < CUSTOMERS,
        "killed mid-way ({sent_at_kill} of {CUSTOMERS} sent)"
    );

    let mut second = start_worker(&url, &mail_dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = Notification::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.status != NotificationStatus::Sent)
            .count();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} notifications still undelivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    second.wait().unwrap();

    let received = mails_by_recipient(&mail_dir);
    let fans: Vec<_> = received
        .iter()
        .filter(|(to, _)| to.contains("fan"))
        .collect();
    assert_eq!(fans.len(), CUSTOMERS, "every customer got the update");
    let duplicates: usize = fans.iter().map(|(_, n)| **n - 1).sum();
    eprintln!(
        "SIGKILL after {sent_at_kill} of {CUSTOMERS} emails: {duplicates} duplicate(s) after restart"
    );
    assert!(
        duplicates <= 8,
        "duplicates are bounded by what was in flight: {duplicates}"
    );
}

/// Where the hold-expiry test keeps its data: a fresh PostgreSQL database and a
/// Redis namespace of its own when `DATABASE_URL`/`REDIS_URL` say so, else a
/// SQLite file. Returns the worker's environment.
async fn storage(
    dir: &std::path::Path,
) -> (
    String,
    Vec<(&'static str, String)>,
    Option<(String, String)>,
) {
    match std::env::var("DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let name = format!("booking_test_{}", Uuid::now_v7().simple());
            let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
            sea_orm::ConnectionTrait::execute_unprepared(
                &admin,
                &format!("CREATE DATABASE {name}"),
            )
            .await
            .unwrap();
            let mut url = url::Url::parse(&admin_url).unwrap();
            url.set_path(&name);
            let redis = std::env::var("REDIS_URL").expect("REDIS_URL with a postgres DATABASE_URL");
            let env = vec![
                ("REDIS_URL", redis),
                (
                    "QUEUE_NAMESPACE",
                    format!("test:{}", Uuid::now_v7().simple()),
                ),
            ];
            (url.to_string(), env, Some((admin_url, name)))
        }
        _ => (
            format!("sqlite://{}?mode=rwc", dir.join("booking.db").display()),
            Vec::new(),
            None,
        ),
    }
}

/// Expiry when every worker was down at the moment (no timer jobs at all, only
/// due rows), with the first worker SIGKILLed part-way through and two more
/// started together: every held ticket comes back exactly once, and the first
/// to come back are offered to the waitlist, each entry once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_holds_expire_returns_every_ticket_once() {
    const HOLDS: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let (url, env, postgres) = storage(dir.path()).await;
    let (db, _, _) = seed_pending_confirmation(&url).await;
    let event = Event::find().one(&db).await.unwrap().unwrap();
    let now = Utc::now();
    let customers: Vec<_> = (0..HOLDS)
        .map(|i| UserActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(format!("holder{i}@example.com")),
            password_hash: Set("-".into()),
            name: Set(format!("Holder {i}")),
            role: Set(Role::Customer),
            created_at: Set(now),
        })
        .collect();
    for chunk in customers.chunks(500) {
        User::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    // The seeded event grows by HOLDS tickets, all of them held, all of the
    // holds due a second ago.
    let total = event.total_tickets + HOLDS as i32;
    let mut grown: EventActiveModel = event.clone().into();
    grown.total_tickets = Set(total);
    grown.held_tickets = Set(HOLDS as i32);
    grown.update(&db).await.unwrap();
    let holds: Vec<_> = customers
        .iter()
        .map(|customer| HoldActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            user_id: Set(*customer.id.as_ref()),
            quantity: Set(1),
            status: Set(HoldStatus::Active),
            expires_at: Set(now - chrono::Duration::seconds(1)),
            booking_id: Set(None),
            created_at: Set(now - chrono::Duration::minutes(10)),
            ended_at: Set(None),
        })
        .collect();
    for chunk in holds.chunks(500) {
        Hold::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    // 500 customers wait for one ticket each: the first 500 tickets to come
    // back are offered to them, in the transactions that return them.
    const WAITING: usize = 500;
    let waiting: Vec<_> = (0..WAITING)
        .map(|i| UserActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(format!("waiting{i}@example.com")),
            password_hash: Set("-".into()),
            name: Set(format!("Waiting {i}")),
            role: Set(Role::Customer),
            created_at: Set(now),
        })
        .collect();
    User::insert_many(waiting.clone())
        .exec_without_returning(&db)
        .await
        .unwrap();
    let line: Vec<_> = waiting
        .iter()
        .enumerate()
        .map(|(i, customer)| WaitlistEntryActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            user_id: Set(*customer.id.as_ref()),
            quantity: Set(1),
            status: Set(WaitlistStatus::Waiting),
            hold_id: Set(None),
            created_at: Set(now + chrono::Duration::milliseconds(i as i64)),
            ended_at: Set(None),
        })
        .collect();
    WaitlistEntry::insert_many(line)
        .exec_without_returning(&db)
        .await
        .unwrap();
    let count = |status: HoldStatus| {
        let db = db.clone();
        async move {
            use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
            Hold::find()
                .filter(entity::hold::Column::Status.eq(status))
                .count(&db)
                .await
                .unwrap() as usize
        }
    };
    let books_balance = || {
        let db = db.clone();
        async move {
            let event = Event::find_by_id(event.id).one(&db).await.unwrap().unwrap();
            assert_eq!(
                event.available_tickets + event.held_tickets + event.booked_tickets,
                event.total_tickets
            );
            event
        }
    };

    let mail_dir = dir.path().join("mail");
    let start = |env: &[(&'static str, String)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_worker"));
        command
            .env_clear()
            .env("DATABASE_URL", &url)
            .env("MAIL_DIR", &mail_dir)
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        command.spawn().unwrap()
    };
    let mut first = start(&env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(HoldStatus::Expired).await < 100 {
        assert!(Instant::now() < deadline, "expiry did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let expired_at_kill = count(HoldStatus::Expired).await;
    assert!(
        (100..HOLDS).contains(&expired_at_kill),
        "the kill must land part-way through the expiries: {expired_at_kill} of {HOLDS}"
    );
    let event_at_kill = books_balance().await;
    assert_eq!(
        event_at_kill.held_tickets as usize,
        count(HoldStatus::Active).await
    );

    // Two workers take over at once: expiring is exactly-once among them too.
    let mut second = start(&env);
    let mut third = start(&env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(HoldStatus::Expired).await < HOLDS {
        assert!(
            Instant::now() < deadline,
            "holds still active after a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for worker in [&mut second, &mut third] {
        Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status()
            .unwrap();
        worker.wait().unwrap();
    }

    let event_after = books_balance().await;
    assert_eq!(count(HoldStatus::Expired).await, HOLDS);
    assert_eq!(
        (event_after.held_tickets, count(HoldStatus::Active).await),
        (WAITING as i32, WAITING),
        "each waiting customer holds one offered ticket"
    );
    assert_eq!(
        event_after.available_tickets,
        event.available_tickets + (HOLDS - WAITING) as i32,
        "every held ticket came back, once; the first 500 to the line"
    );
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let offered = WaitlistEntry::find()
        .filter(entity::waitlist_entry::Column::Status.eq(WaitlistStatus::Offered))
        .count(&db)
        .await
        .unwrap();
    let offer_emails = Notification::find()
        .filter(entity::notification::Column::Kind.eq(NotificationKind::WaitlistOffered))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(
        (offered, offer_emails),
        (WAITING as u64, WAITING as u64),
        "every entry offered once, with one email"
    );
    eprintln!(
        "SIGKILL after {expired_at_kill} of {HOLDS} holds expired; two fresh workers returned the rest"
    );
    if let Some((admin_url, name)) = postgres {
        let redis_url = env
            .iter()
            .find(|(k, _)| *k == "REDIS_URL")
            .map(|(_, v)| v.clone());
        let namespace = env
            .iter()
            .find(|(k, _)| *k == "QUEUE_NAMESPACE")
            .map(|(_, v)| v.clone());
        if let (Some(redis_url), Some(namespace)) = (redis_url, namespace) {
            let mut redis = redis::Client::open(redis_url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{namespace}*"))
                .query_async(&mut redis)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
            }
        }
        db.close().await.ok();
        let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
        let _ = sea_orm::ConnectionTrait::execute_unprepared(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
}
