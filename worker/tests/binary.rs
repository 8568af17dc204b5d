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
        currency: Set("EUR".into()),
        refund_until: Set(None),
        calendar_sequence: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    let ticket_type = TicketTypeActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event.id),
        position: Set(0),
        name: Set("General admission".into()),
        description: Set(None),
        price: Set(0),
        tax_rate: Set(0),
        quantity: Set(10),
        available: Set(8),
        held: Set(0),
        booked: Set(2),
        sales_start: Set(None),
        sales_end: Set(None),
        max_per_order: Set(10),
        hidden: Set(false),
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
        total: Set(0),
        currency: Set("EUR".into()),
        promo_code_id: Set(None),
        promo_uses: Set(0),
        payment_id: Set(None),
        status: Set(BookingStatus::Confirmed),
        created_at: Set(now),
        cancelled_at: Set(None),
    }
    .insert(&db)
    .await
    .unwrap();
    BookingItemActiveModel {
        booking_id: Set(booking.id),
        ticket_type_id: Set(ticket_type.id),
        quantity: Set(2),
        unit_price: Set(0),
        discount: Set(0),
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
        refund_id: Set(None),
        webhook_endpoint_id: Set(None),
    }
    .insert(&db)
    .await
    .unwrap();
    (db, booking.id, notification.id)
}

/// SIGTERM, and waits for the worker to exit.
fn stop(worker: &mut std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    worker.wait().unwrap();
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

/// SIGKILL in the middle of a 500-email event-update fan-out to a real SMTP
/// server (on PostgreSQL and Redis in production mode), then a restart: every
/// customer gets the update. A worker killed between handing a message to
/// the mail transport and recording it as sent makes a duplicate possible, so
/// the promise is at-least-once; this measures how many duplicates a kill costs
/// and holds it to the messages that can be in flight (the worker's concurrency).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_fan_out_leaves_nobody_without_their_email() {
    const CUSTOMERS: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let (url, env, postgres) = storage(dir.path()).await;
    let (db, _, _) = seed_pending_confirmation(&url).await;
    let emails = seed_fan_out(&db, CUSTOMERS).await;
    let smtp = TestSmtp::start(|_| None).await;

    let mut first = start_worker_with(&url, &env, &smtp);
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.total() < 100 {
        assert!(Instant::now() < deadline, "the fan-out did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let sent_at_kill = smtp.total();
    assert!(
        sent_at_kill < CUSTOMERS,
        "killed mid-way ({sent_at_kill} of {CUSTOMERS} sent)"
    );

    let mut second = start_worker_with(&url, &env, &smtp);
    wait_all_sent(&db, Duration::from_secs(60)).await;
    stop(&mut second);

    let received = smtp.by_recipient();
    let missing: Vec<_> = emails
        .iter()
        .filter(|e| !received.contains_key(*e))
        .collect();
    assert!(
        missing.is_empty(),
        "every customer got the update: {missing:?}"
    );
    let duplicates: usize = emails
        .iter()
        .map(|e| received.get(e).copied().unwrap_or(1) - 1)
        .sum();
    eprintln!(
        "SIGKILL after {sent_at_kill} of {CUSTOMERS} emails: {duplicates} duplicate(s) after restart"
    );
    assert!(
        duplicates <= 8,
        "duplicates are bounded by what was in flight: {duplicates}"
    );
    clean_up(db, &env, postgres).await;
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
    let customers = insert_customers(&db, "holder", HOLDS).await;
    // The seeded event grows by HOLDS tickets, all of them held, all of the
    // holds due a second ago.
    let total = event.total_tickets + HOLDS as i32;
    let mut grown: EventActiveModel = event.clone().into();
    grown.total_tickets = Set(total);
    grown.held_tickets = Set(HOLDS as i32);
    grown.update(&db).await.unwrap();
    let ticket_type = TicketType::find().one(&db).await.unwrap().unwrap();
    let mut grown: TicketTypeActiveModel = ticket_type.clone().into();
    grown.quantity = Set(ticket_type.quantity + HOLDS as i32);
    grown.held = Set(HOLDS as i32);
    grown.update(&db).await.unwrap();
    let holds: Vec<_> = customers
        .iter()
        .map(|customer| HoldActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            user_id: Set(customer.id),
            quantity: Set(1),
            total: Set(0),
            currency: Set("EUR".into()),
            promo_code_id: Set(None),
            promo_uses: Set(0),
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
        let items = chunk.iter().map(|hold| HoldItemActiveModel {
            hold_id: hold.id.clone(),
            ticket_type_id: Set(ticket_type.id),
            quantity: Set(1),
            unit_price: Set(0),
            discount: Set(0),
        });
        HoldItem::insert_many(items)
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    // 500 customers wait for one ticket each: the first 500 tickets to come
    // back are offered to them, in the transactions that return them.
    const WAITING: usize = 500;
    let waiting = insert_customers(&db, "waiting", WAITING).await;
    let line: Vec<_> = waiting
        .iter()
        .enumerate()
        .map(|(i, customer)| WaitlistEntryActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            user_id: Set(customer.id),
            quantity: Set(1),
            status: Set(WaitlistStatus::Waiting),
            ticket_type_id: Set(None),
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
        stop(worker);
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
    clean_up(db, &env, postgres).await;
}

/// Drops what [`storage`] made: the PostgreSQL database and the Redis keys.
async fn clean_up(
    db: sea_orm::DatabaseConnection,
    env: &[(&'static str, String)],
    postgres: Option<(String, String)>,
) {
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

/// What the test mail server does to the first message for a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `451` at `RCPT TO`: refused before any of it was sent.
    RefuseRecipient,
    /// The connection dropped half-way through the message: not delivered.
    DropMidData,
    /// The whole message taken, then the connection dropped before the `250`:
    /// delivered, but the sender cannot know (the at-least-once window).
    DropAfterData,
}

/// A real SMTP server on a local port that keeps what it is sent, and fails a
/// recipient's first message as `fault` says.
#[derive(Clone)]
struct TestSmtp {
    port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tried: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl TestSmtp {
    async fn start(fault: fn(&str) -> Option<Fault>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            port: listener.local_addr().unwrap().port(),
            received: Default::default(),
            tried: Default::default(),
        };
        let shared = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(shared.clone().session(stream, fault));
            }
        });
        server
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Messages kept, per recipient.
    fn by_recipient(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for to in self.received.lock().unwrap().iter() {
            *counts.entry(to.clone()).or_insert(0) += 1;
        }
        counts
    }

    fn total(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    async fn session(self, stream: tokio::net::TcpStream, fault: fn(&str) -> Option<Fault>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        if write.write_all(b"220 test ready\r\n").await.is_err() {
            return;
        }
        let mut to = String::new();
        let mut now = None;
        while let Ok(Some(line)) = lines.next_line().await {
            let command = line.to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                b"250 test\r\n"
            } else if command.starts_with("MAIL FROM") {
                b"250 OK\r\n"
            } else if command.starts_with("RCPT TO") {
                to = line[8..]
                    .trim()
                    .trim_start_matches(':')
                    .trim()
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_owned();
                let first = self.tried.lock().unwrap().insert(to.clone());
                now = if first { fault(&to) } else { None };
                if now == Some(Fault::RefuseRecipient) {
                    b"451 try again later\r\n"
                } else {
                    b"250 OK\r\n"
                }
            } else if command == "DATA" {
                if write.write_all(b"354 go on\r\n").await.is_err() {
                    return;
                }
                let mut body_lines = 0;
                while let Ok(Some(line)) = lines.next_line().await {
                    body_lines += 1;
                    if now == Some(Fault::DropMidData) && body_lines == 3 {
                        return; // the connection drops with the message half sent
                    }
                    if line == "." {
                        break;
                    }
                }
                self.received.lock().unwrap().push(to.clone());
                if now == Some(Fault::DropAfterData) {
                    return; // delivered, but the 250 never goes out
                }
                b"250 queued\r\n"
            } else if command == "QUIT" {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 OK\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}

/// `count` customers, `{prefix}{i}@example.com`, in the database.
async fn insert_customers(
    db: &sea_orm::DatabaseConnection,
    prefix: &str,
    count: usize,
) -> Vec<UserModel> {
    let now = Utc::now();
    let users: Vec<UserModel> = (0..count)
        .map(|i| UserModel {
            id: Uuid::now_v7(),
            email: format!("{prefix}{i}@example.com"),
            password_hash: "-".into(),
            name: format!("{prefix} {i}"),
            role: Role::Customer,
            created_at: now,
        })
        .collect();
    for chunk in users.chunks(500) {
        User::insert_many(chunk.iter().cloned().map(UserActiveModel::from))
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    users
}

/// `count` customers with a pending event-update notice each (never
/// enqueued: the sweep finds them), added to the seeded event. Returns their
/// emails.
async fn seed_fan_out(db: &sea_orm::DatabaseConnection, count: usize) -> Vec<String> {
    // The seeded confirmation is done; this is about the fan-out.
    Notification::update_many()
        .col_expr(
            entity::notification::Column::Status,
            sea_orm::sea_query::Expr::value(NotificationStatus::Sent),
        )
        .exec(db)
        .await
        .unwrap();
    let event = Event::find().one(db).await.unwrap().unwrap();
    let now = Utc::now();
    let users = insert_customers(db, "fan", count).await;
    let changes = serde_json::json!([{"field": "venue", "old": "Hall A", "new": "Hall B"}]);
    let notices: Vec<_> = users
        .iter()
        .map(|user| NotificationActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(NotificationKind::EventUpdated),
            user_id: Set(user.id),
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
            refund_id: Set(None),
            webhook_endpoint_id: Set(None),
        })
        .collect();
    let emails = users.into_iter().map(|u| u.email).collect();
    for chunk in notices.chunks(100) {
        Notification::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    emails
}

fn start_worker_with(
    url: &str,
    env: &[(&'static str, String)],
    smtp: &TestSmtp,
) -> std::process::Child {
    let metrics: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_worker"));
    command
        .env_clear()
        .env("DATABASE_URL", url)
        .env("SMTP_URL", smtp.url())
        .env("METRICS_ADDR", metrics.to_string())
        .env("WORKER_CONCURRENCY", "8")
        .env("NOTIFY_SWEEP_INTERVAL_MS", "100")
        .env("NOTIFY_REDELIVER_AFTER_MS", "500")
        .env("NOTIFY_RETRY_BASE_MS", "100")
        .env("NOTIFY_LEASE_MS", "1000")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

async fn wait_all_sent(db: &sea_orm::DatabaseConnection, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let undelivered = Notification::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.status != NotificationStatus::Sent)
            .count();
        if undelivered == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{undelivered} notifications still undelivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The worker binary against the database and queue of this run (PostgreSQL
/// and Redis in production mode) and a real SMTP server that fails each
/// recipient's first message at a different point: refused at RCPT, cut off
/// mid-DATA, or cut off after DATA (delivered, unacknowledged). Every customer
/// gets the email; only the last kind gets it twice, and it must happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_retries_through_smtp_failures_at_every_step() {
    const CUSTOMERS: usize = 60;
    fn fault(to: &str) -> Option<Fault> {
        let n: usize = to
            .trim_start_matches("fan")
            .split('@')
            .next()?
            .parse()
            .ok()?;
        match n % 4 {
            1 => Some(Fault::RefuseRecipient),
            2 => Some(Fault::DropMidData),
            3 => Some(Fault::DropAfterData),
            _ => None,
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (url, env, postgres) = storage(dir.path()).await;
    let (db, _, _) = seed_pending_confirmation(&url).await;
    let emails = seed_fan_out(&db, CUSTOMERS).await;
    let smtp = TestSmtp::start(fault).await;
    let mut worker = start_worker_with(&url, &env, &smtp);
    wait_all_sent(&db, Duration::from_secs(60)).await;
    stop(&mut worker);

    let received = smtp.by_recipient();
    for email in &emails {
        let expected = if fault(email) == Some(Fault::DropAfterData) {
            2
        } else {
            1
        };
        assert_eq!(
            received.get(email).copied().unwrap_or(0),
            expected,
            "{email} ({:?})",
            fault(email)
        );
    }
    let retried = Notification::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.attempts > 1)
        .count();
    assert_eq!(
        retried,
        emails.iter().filter(|e| fault(e).is_some()).count(),
        "every failed first send was retried, and only those"
    );
    clean_up(db, &env, postgres).await;
}

/// An event's cancellation left 50 paid bookings to refund through Stripe
/// (localstripe), one of them already made at Stripe by a worker that died
/// before recording it; the worker doing them is SIGKILLed part-way, and two
/// fresh ones finish. Every payment is refunded exactly once at Stripe (its refund
/// list says so, not only our rows), and each customer gets one refund email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_refunding_refunds_every_payment_exactly_once() {
    const PAID: usize = 50;
    let Some(stripe) = stripe_client::local::shared() else {
        eprintln!("SKIP Stripe-needed: no STRIPE_API_BASE and localstripe would not start");
        if let Ok(path) = std::env::var("TEST_SKIPS_FILE") {
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "SKIP Stripe-needed a_worker_killed_while_refunding");
            }
        }
        return;
    };
    let client = stripe_client::Stripe::new(&stripe.settings()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, env, postgres) = storage(dir.path()).await;
    let (db, _, _) = seed_pending_confirmation(&url).await;
    let event = Event::find().one(&db).await.unwrap().unwrap();
    let now = Utc::now();
    let customers = insert_customers(&db, "payer", PAID).await;
    let mut intents = Vec::new();
    for customer in &customers {
        let attempt = Uuid::now_v7();
        let intent = client
            .create_payment_intent(stripe_client::NewPaymentIntent {
                amount: 2500,
                currency: "EUR",
                idempotency_key: &attempt.to_string(),
                metadata: &[],
            })
            .await
            .unwrap();
        assert_eq!(
            stripe.pay(&intent.id, "pm_card_visa").await.unwrap(),
            "succeeded"
        );
        let hold = HoldActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            user_id: Set(customer.id),
            quantity: Set(1),
            total: Set(2500),
            currency: Set("EUR".into()),
            promo_code_id: Set(None),
            promo_uses: Set(0),
            status: Set(HoldStatus::Confirmed),
            expires_at: Set(now),
            booking_id: Set(None),
            created_at: Set(now),
            ended_at: Set(Some(now)),
        }
        .insert(&db)
        .await
        .unwrap();
        let payment = PaymentActiveModel {
            id: Set(attempt),
            hold_id: Set(hold.id),
            event_id: Set(event.id),
            user_id: Set(customer.id),
            booking_id: Set(None),
            provider: Set(PaymentProvider::Stripe),
            status: Set(PaymentStatus::Succeeded),
            amount: Set(2500),
            currency: Set("EUR".into()),
            provider_ref: Set(Some(intent.id.clone())),
            client_secret: Set(None),
            reference: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&db)
        .await
        .unwrap();
        let booking = BookingActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            user_id: Set(customer.id),
            quantity: Set(1),
            total: Set(2500),
            currency: Set("EUR".into()),
            promo_code_id: Set(None),
            promo_uses: Set(0),
            payment_id: Set(Some(payment.id)),
            status: Set(BookingStatus::Cancelled),
            created_at: Set(now),
            cancelled_at: Set(Some(now)),
        }
        .insert(&db)
        .await
        .unwrap();
        // What the event's cancellation wrote: one refund row per payment.
        let payment = PaymentModel {
            booking_id: Some(booking.id),
            ..payment
        };
        inventory::payments::refund(
            &db,
            &payment,
            Some(booking.id),
            RefundReason::EventCancelled,
            now,
        )
        .await
        .unwrap();
        intents.push(intent.id);
    }
    // One refund was made at Stripe by a worker that died before it could
    // record it: its row is `sending`, its lease over. It must not be made twice.
    {
        use sea_orm::{ColumnTrait, QueryFilter};
        let payment = Payment::find()
            .filter(entity::payment::Column::ProviderRef.eq(intents[0].clone()))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        let refund = Refund::find()
            .filter(entity::refund::Column::PaymentId.eq(payment.id))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        client
            .refund(&intents[0], refund.amount, &refund.id.to_string())
            .await
            .unwrap();
        let mut dying: RefundActiveModel = refund.into();
        dying.status = Set(RefundStatus::Sending);
        dying.attempts = Set(1);
        dying.locked_until = Set(Some(now - chrono::Duration::seconds(1)));
        dying.update(&db).await.unwrap();
    }
    let succeeded = || {
        let db = db.clone();
        async move {
            use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
            Refund::find()
                .filter(entity::refund::Column::Status.eq(RefundStatus::Succeeded))
                .count(&db)
                .await
                .unwrap() as usize
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
            .env("STRIPE_SECRET_KEY", stripe_client::local::SECRET_KEY)
            .env(
                "STRIPE_WEBHOOK_SECRET",
                stripe_client::local::WEBHOOK_SECRET,
            )
            .env("STRIPE_API_BASE", &stripe.base)
            .env("REFUND_LEASE_MS", "2000")
            .env("REFUND_RETRY_BASE_MS", "200")
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
    while succeeded().await < 5 {
        assert!(Instant::now() < deadline, "refunds did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = succeeded().await;
    assert!(
        at_kill < PAID,
        "the kill must land part-way: {at_kill} of {PAID}"
    );

    let mut second = start(&env);
    let mut third = start(&env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while succeeded().await < PAID {
        assert!(
            Instant::now() < deadline,
            "refunds unfinished after a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for worker in [&mut second, &mut third] {
        stop(worker);
    }
    for intent in &intents {
        let refunds = client.refunds_of(intent).await.unwrap();
        assert_eq!(
            refunds.len(),
            1,
            "{intent} refunded {} times",
            refunds.len()
        );
        assert_eq!(refunds[0].amount, 2500);
    }
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let emails = Notification::find()
        .filter(entity::notification::Column::Kind.eq(NotificationKind::PaymentRefunded))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(emails, PAID as u64, "one refund email each");
    let refunded = Payment::find()
        .filter(entity::payment::Column::Status.eq(PaymentStatus::Refunded))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(refunded, PAID as u64);
    eprintln!(
        "SIGKILL after {at_kill} of {PAID} refunds; two fresh workers made the rest, each once at Stripe"
    );
    clean_up(db, &env, postgres).await;
}

/// Webhooks through a worker killed mid-way: 1,000 messages (as a burst of
/// bookings leaves them, never queued), the first worker SIGKILLed after 100
/// deliveries, a second started: every message reaches the receiver at
/// least once, and the database says each was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_burst_delivers_every_webhook_at_least_once() {
    const MESSAGES: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let (url, mut env, postgres) = storage(dir.path()).await;
    let (db, _, _) = seed_pending_confirmation(&url).await;
    let receiver = TestReceiver::start().await;
    let event = Event::find().one(&db).await.unwrap().unwrap();
    let now = Utc::now();
    let endpoint = WebhookEndpointModel {
        id: Uuid::now_v7(),
        organizer_id: event.organizer_id,
        url: format!("http://127.0.0.1:{}/hooks", receiver.port),
        types: "booking.confirmed".into(),
        all_events: true,
        secret: webhook::Secret::generate().expose(),
        enabled: true,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    WebhookEndpointActiveModel::from(endpoint.clone())
        .reset_all()
        .insert(&db)
        .await
        .unwrap();
    let messages: Vec<WebhookMessageActiveModel> = (0..MESSAGES)
        .map(|i| {
            let id = Uuid::now_v7();
            WebhookMessageActiveModel {
                id: Set(id),
                endpoint_id: Set(endpoint.id),
                event_id: Set(event.id),
                r#type: Set("booking.confirmed".into()),
                payload: Set(format!(r#"{{"id":"{}","n":{i}}}"#, id.simple())),
                status: Set(WebhookMessageStatus::Pending),
                attempts: Set(0),
                next_attempt_at: Set(now),
                locked_until: Set(None),
                enqueued_at: Set(None),
                last_status_code: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
            }
        })
        .collect();
    for chunk in messages.chunks(100) {
        WebhookMessage::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    env.push(("WEBHOOK_ALLOW_HTTP", "true".into()));
    env.push(("WEBHOOK_ALLOW_PRIVATE", "true".into()));
    env.push(("WEBHOOK_LEASE_MS", "1000".into()));
    let smtp = TestSmtp::start(|_| None).await;

    let mut first = start_worker_with(&url, &env, &smtp);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.total() < 100 {
        assert!(Instant::now() < deadline, "the deliveries did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = receiver.total();
    assert!(
        at_kill < MESSAGES,
        "killed mid-way ({at_kill} of {MESSAGES})"
    );

    let mut second = start_worker_with(&url, &env, &smtp);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let undelivered = WebhookMessage::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.status != WebhookMessageStatus::Delivered)
            .count();
        if undelivered == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{undelivered} webhooks undelivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(&mut second);
    let ids = receiver.ids();
    for message in WebhookMessage::find().all(&db).await.unwrap() {
        let id = format!("msg_{}", message.id.simple());
        assert!(ids.contains(&id), "{id} never reached the receiver");
    }
    eprintln!(
        "SIGKILL after {at_kill} of {MESSAGES} webhooks: {} request(s) in all",
        receiver.total()
    );
    clean_up(db, &env, postgres).await;
}

/// A webhook receiver: answers 200 to every request and keeps its `webhook-id`.
#[derive(Clone)]
struct TestReceiver {
    port: u16,
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TestReceiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            port: listener.local_addr().unwrap().port(),
            ids: Default::default(),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        receiver
    }

    fn total(&self) -> usize {
        self.ids.lock().unwrap().len()
    }

    fn ids(&self) -> std::collections::HashSet<String> {
        self.ids.lock().unwrap().iter().cloned().collect()
    }

    async fn serve(self, stream: tokio::net::TcpStream) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let (mut length, mut id) = (0usize, String::new());
            loop {
                line.clear();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "webhook-id" => id = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            self.ids.lock().unwrap().push(id);
            if write
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
