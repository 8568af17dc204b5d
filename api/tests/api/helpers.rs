//! `TestApp::spawn()`: a fresh database (SQLite file, or a new PostgreSQL database
//! when `DATABASE_URL` is set), its own queue (embedded, or a per-test Redis key
//! space when `REDIS_URL` is set), a real SMTP sink, and the api serving on a
//! real socket.

use std::time::Duration;

use api::{
    Settings,
    http::rate_limit::RateLimits,
    settings::{AuthSettings, random_secret},
    startup,
};
use entity::prelude::*;
use platform::{JobQueue, QueueBackend, StorageSettings};
use rocket::{fairing::AdHoc, figment::Figment};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};
use uuid::Uuid;
use worker::{DeliveryPolicy, MailSettings, WorkerHandle, WorkerSettings};

use crate::smtp::SmtpSink;

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub db: DatabaseConnection,
    pub smtp: SmtpSink,
    pub settings: Settings,
    /// The api's live-stream hub, to see what open streams hold.
    pub live: std::sync::Arc<api::live::LiveHub>,
    shutdown: rocket::Shutdown,
    /// Production mode: the worker runs beside the api, as its own process would.
    worker: Option<WorkerHandle>,
    /// The localstripe webhook pointed at this app, if any.
    stripe_webhook: Option<stripe_client::local::WebhookSlot>,
    _storage: Storage,
}

/// What a test's data lives in; removed when the test ends.
enum Storage {
    Sqlite(
        #[expect(
            dead_code,
            reason = "held only so the directory lives as long as the test"
        )]
        tempfile::TempDir,
    ),
    Postgres {
        admin_url: String,
        name: String,
        redis: Option<(String, String)>,
    },
}

pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

pub fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 3,
        retry_base: Duration::from_millis(100),
        retry_cap: Duration::from_secs(1),
        lease: Duration::from_secs(10),
        sweep_interval: Duration::from_millis(200),
        redeliver_after: Duration::from_secs(1),
    }
}

/// A JSON resource's `id`.
pub fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

/// Sends the POSTs `(url, bearer token, body)` truly at once: each on its own
/// connection (no pooling), released together by a barrier. Returns each
/// answer's status and body, in the order given.
pub async fn all_at_once(requests: Vec<(String, String, Value)>) -> Vec<(u16, Value)> {
    let shots = requests
        .into_iter()
        .map(|(url, token, body)| Shot {
            url,
            token,
            body,
            idempotency_key: None,
        })
        .collect();
    fire_together(shots).await
}

/// One POST for [`fire_together`].
pub struct Shot {
    pub url: String,
    pub token: String,
    pub body: Value,
    pub idempotency_key: Option<String>,
}

/// [`all_at_once`], with an `Idempotency-Key` where a shot has one.
pub async fn fire_together(shots: Vec<Shot>) -> Vec<(u16, Value)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(shots.len()));
    let requests = shots.into_iter().map(|shot| {
        let (http, barrier) = (http.clone(), barrier.clone());
        tokio::spawn(async move {
            let mut request = http.post(shot.url).bearer_auth(shot.token).json(&shot.body);
            if let Some(key) = shot.idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            barrier.wait().await;
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    });
    futures::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

pub fn production_mode() -> bool {
    std::env::var("DATABASE_URL").is_ok_and(|url| url.starts_with("postgres"))
}

/// The mode a test needs: production (PostgreSQL and Redis) or embedded
/// (SQLite, the in-process queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Embedded,
}

/// `true` (and the test should return) when this run is not in `needs` mode.
/// A skip is never silent: one line `SKIP <mode>-only <test> …` on stderr and,
/// when `TEST_SKIPS_FILE` names a file, appended to it, so CI counts the skips
/// of each run and fails a production run that skipped a production-only test.
pub fn skipped(needs: Mode) -> bool {
    let here = if production_mode() {
        Mode::Production
    } else {
        Mode::Embedded
    };
    if needs == here {
        return false;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    let line = format!("SKIP {needs:?}-only {test} in {here:?} mode");
    eprintln!("{line}");
    if let Ok(path) = std::env::var("TEST_SKIPS_FILE") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
    true
}

/// The shared local Stripe (`stripe_client::local`), or `None` with a
/// `SKIP Stripe-needed` line (CI fails on one) when none can be started.
pub fn local_stripe() -> Option<&'static stripe_client::local::LocalStripe> {
    let stripe = stripe_client::local::shared();
    if stripe.is_none() {
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed test")
            .to_owned();
        let line = format!(
            "SKIP Stripe-needed {test}: no STRIPE_API_BASE and localstripe would not start (pip install localstripe)"
        );
        eprintln!("{line}");
        if let Ok(path) = std::env::var("TEST_SKIPS_FILE") {
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{line}");
            }
        }
    }
    stripe
}

impl TestApp {
    /// An app that takes card payments through the local Stripe, whose
    /// webhooks reach it when `webhooks` (else they are lost on the way).
    pub async fn spawn_with_stripe(
        webhooks: bool,
        tweak: impl FnOnce(&mut Settings),
    ) -> Option<(Self, &'static stripe_client::local::LocalStripe)> {
        let stripe = local_stripe()?;
        let mut app = Self::spawn_with(|settings| {
            settings.stripe = Some(stripe.settings());
            settings.worker.payments.stripe = Some(stripe.settings());
            tweak(settings);
        })
        .await;
        if webhooks {
            let slot = stripe
                .send_webhooks_to(&app.url("/api/v1/payments/stripe/webhook"))
                .await
                .expect("register the webhook at localstripe");
            app.stripe_webhook = Some(slot);
        }
        Some((app, stripe))
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// `tweak` may change the settings before anything starts.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let smtp = SmtpSink::start().await;
        let (mut settings, storage) = fresh_settings(&smtp).await;
        tweak(&mut settings);
        let app = startup::build(&settings).await.expect("build app");
        let db = app.services.db.clone();
        let live = app.live.clone();
        let worker = match app.embedded_worker {
            Some(_) => None,
            None => Some(spawn_worker(&settings).await),
        };
        let (address, shutdown) = serve(app).await;
        Self {
            address,
            http: reqwest::Client::new(),
            db,
            smtp,
            settings,
            live,
            shutdown,
            worker,
            stripe_webhook: None,
            _storage: storage,
        }
    }

    /// Another api process on the same database and queue (and token key).
    pub async fn second_instance(&self) -> (String, rocket::Shutdown) {
        let mut settings = self.settings.clone();
        // An embedded worker already runs in the first instance.
        settings.worker.concurrency = 1;
        let mut app = startup::build(&settings).await.expect("build second app");
        app.embedded_worker = None;
        serve(app).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.patch(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let request = self.http.delete(self.url(path)).bearer_auth(token);
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn post_with_key(
        &self,
        path: &str,
        token: &str,
        key: &str,
        body: Value,
    ) -> (u16, Value) {
        let request = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body);
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn user(&self, role: &str) -> TestUser {
        let email = format!("{role}-{}@example.com", Uuid::now_v7().simple());
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": "correct horse", "name": format!("{role} person"), "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, login) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        TestUser {
            id: body["id"].as_str().unwrap().parse().unwrap(),
            email,
            token: login["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `count` customers at once, written straight to the database with tokens
    /// signed by the app's key: for stampedes, which need many customers and
    /// would otherwise spend minutes hashing passwords. They cannot log in.
    pub async fn customers(&self, count: usize) -> Vec<TestUser> {
        let keys =
            api::auth::TokenKeys::new(&self.settings.auth.secret, self.settings.auth.token_ttl);
        let now = chrono::Utc::now();
        let users: Vec<UserActiveModel> = (0..count)
            .map(|i| UserActiveModel {
                id: sea_orm::Set(Uuid::now_v7()),
                email: sea_orm::Set(format!("crowd-{i}-{}@example.com", Uuid::now_v7().simple())),
                password_hash: sea_orm::Set("-".into()),
                name: sea_orm::Set(format!("Crowd {i}")),
                role: sea_orm::Set(Role::Customer),
                created_at: sea_orm::Set(now),
            })
            .collect();
        let customers = users
            .iter()
            .map(|user| TestUser {
                id: *user.id.as_ref(),
                email: user.email.as_ref().clone(),
                token: keys.issue(*user.id.as_ref(), Role::Customer),
            })
            .collect();
        for chunk in users.chunks(500) {
            User::insert_many(chunk.to_vec())
                .exec_without_returning(&self.db)
                .await
                .unwrap();
        }
        customers
    }

    pub async fn organizer(&self) -> TestUser {
        self.user("organizer").await
    }

    pub async fn customer(&self) -> TestUser {
        self.user("customer").await
    }

    pub async fn event(&self, organizer: &TestUser, tickets: i64) -> Value {
        let (status, event) = self
            .post(
                "/api/v1/events",
                Some(&organizer.token),
                json!({
                    "title": "Night of Rust",
                    "description": "Talks and music",
                    "venue": "Hall A",
                    "starts_at": "2030-05-01T19:00:00Z",
                    "ends_at": "2030-05-01T23:00:00Z",
                    "total_tickets": tickets,
                }),
            )
            .await;
        assert_eq!(status, 201, "{event}");
        event
    }

    pub async fn book(&self, customer: &TestUser, event_id: &str, quantity: i64) -> (u16, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/bookings"),
            Some(&customer.token),
            json!({"quantity": quantity}),
        )
        .await
    }

    /// Paid tickets bought: held with `ask` (`{quantity}`, `{items}`, …),
    /// then paid as the organizer records a payment taken elsewhere. Returns
    /// the booking, or the hold's refusal.
    pub async fn buy(
        &self,
        customer: &TestUser,
        organizer: &TestUser,
        event_id: &str,
        ask: Value,
    ) -> (u16, Value) {
        let (status, hold) = self
            .post(
                &format!("/api/v1/events/{event_id}/holds"),
                Some(&customer.token),
                ask,
            )
            .await;
        if status != 201 {
            return (status, hold);
        }
        self.pay_for(organizer, id(&hold)).await
    }

    /// The organizer records the hold's payment: the booking.
    pub async fn pay_for(&self, organizer: &TestUser, hold_id: &str) -> (u16, Value) {
        self.post(
            &format!("/api/v1/holds/{hold_id}/mark_paid"),
            Some(&organizer.token),
            json!({"reference": "paid at the box office"}),
        )
        .await
    }

    /// A booking's tickets, as `viewer` may see them.
    pub async fn tickets(&self, viewer: &TestUser, booking_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/api/v1/bookings/{booking_id}/tickets"),
                Some(&viewer.token),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().expect("items").clone()
    }

    pub async fn hold(&self, customer: &TestUser, event_id: &str, quantity: i64) -> (u16, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&customer.token),
            json!({"quantity": quantity}),
        )
        .await
    }

    /// SPEC §5 and §8, checked in the database: `available + held + booked ==
    /// total`, each at least 0, `held` the sum of active holds and `booked` the
    /// sum of confirmed bookings; on a seated event, as many seats held and
    /// booked, each taken seat belonging to a hold in the matching state. And
    /// no ticket, booking item or notification names a booking that is not
    /// there (on PostgreSQL no foreign key refuses it: migration 18).
    pub async fn assert_ticket_invariant(&self, event_id: &str) -> EventModel {
        let id: Uuid = event_id.parse().unwrap();
        let event = Event::find_by_id(id).one(&self.db).await.unwrap().unwrap();
        let booked: i64 = Booking::find()
            .filter(BookingColumn::EventId.eq(id))
            .filter(BookingColumn::Status.eq(BookingStatus::Confirmed))
            .all(&self.db)
            .await
            .unwrap()
            .iter()
            .map(|b| i64::from(b.quantity))
            .sum();
        let holds = Hold::find()
            .filter(HoldColumn::EventId.eq(id))
            .all(&self.db)
            .await
            .unwrap();
        let held: i64 = holds
            .iter()
            .filter(|h| h.status == HoldStatus::Active)
            .map(|h| i64::from(h.quantity))
            .sum();
        assert!(
            event.available_tickets >= 0 && event.held_tickets >= 0 && event.booked_tickets >= 0,
            "a negative count: {event:?}"
        );
        assert_eq!(
            (
                i64::from(event.held_tickets),
                i64::from(event.booked_tickets)
            ),
            (held, booked),
            "counters disagree with the rows (active holds, confirmed bookings): {event:?}"
        );
        assert_eq!(
            event.available_tickets + event.held_tickets + event.booked_tickets,
            event.total_tickets,
            "tickets leaked or doubled: {event:?}"
        );
        // Per type: the counts add up, the event's are their sums, and each
        // type's held and booked are its items in active holds and confirmed
        // bookings.
        let types = TicketType::find()
            .filter(TicketTypeColumn::EventId.eq(id))
            .all(&self.db)
            .await
            .unwrap();
        assert!(!types.is_empty(), "an event without a ticket type");
        let sum = |count: fn(&TicketTypeModel) -> i32| types.iter().map(count).sum::<i32>();
        assert_eq!(
            (
                sum(|t| t.quantity),
                sum(|t| t.available),
                sum(|t| t.held),
                sum(|t| t.booked)
            ),
            (
                event.total_tickets,
                event.available_tickets,
                event.held_tickets,
                event.booked_tickets
            ),
            "the event's counts are not its types' sums: {types:?}"
        );
        let active: Vec<Uuid> = holds
            .iter()
            .filter(|h| h.status == HoldStatus::Active)
            .map(|h| h.id)
            .collect();
        let held_items = HoldItem::find()
            .filter(HoldItemColumn::HoldId.is_in(active))
            .all(&self.db)
            .await
            .unwrap();
        let confirmed: Vec<Uuid> = Booking::find()
            .filter(BookingColumn::EventId.eq(id))
            .filter(BookingColumn::Status.eq(BookingStatus::Confirmed))
            .all(&self.db)
            .await
            .unwrap()
            .iter()
            .map(|b| b.id)
            .collect();
        let booked_items = BookingItem::find()
            .filter(BookingItemColumn::BookingId.is_in(confirmed))
            .all(&self.db)
            .await
            .unwrap();
        for t in &types {
            assert_eq!(
                t.available + t.held + t.booked,
                t.quantity,
                "a type's tickets leaked: {t:?}"
            );
            let held: i32 = held_items
                .iter()
                .filter(|i| i.ticket_type_id == t.id)
                .map(|i| i.quantity)
                .sum();
            let booked: i32 = booked_items
                .iter()
                .filter(|i| i.ticket_type_id == t.id)
                .map(|i| i.quantity)
                .sum();
            assert_eq!(
                (t.held, t.booked),
                (held, booked),
                "a type's counts disagree with its items: {t:?}"
            );
        }
        for (table, rows) in [
            ("tickets", "tickets"),
            ("booking items", "booking_items"),
            ("notifications", "notifications"),
        ] {
            let orphans = self
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    self.db.get_database_backend(),
                    format!(
                        "SELECT COUNT(*) AS n FROM {rows} WHERE booking_id IS NOT NULL \
                         AND booking_id NOT IN (SELECT id FROM bookings)"
                    ),
                ))
                .await
                .unwrap()
                .and_then(|row| row.try_get::<i64>("", "n").ok());
            assert_eq!(orphans, Some(0), "{table} of a booking that is not there");
        }
        if event.seated {
            let seats = Seat::find()
                .filter(SeatColumn::EventId.eq(id))
                .all(&self.db)
                .await
                .unwrap();
            assert_eq!(
                seats.len() as i32,
                event.total_tickets,
                "one ticket per seat"
            );
            let by_id: std::collections::HashMap<Uuid, &HoldModel> =
                holds.iter().map(|h| (h.id, h)).collect();
            let mut counts = (0, 0);
            for seat in &seats {
                let owner = seat.hold_id.and_then(|h| by_id.get(&h));
                match seat.status {
                    SeatStatus::Available => assert!(seat.hold_id.is_none(), "{seat:?}"),
                    SeatStatus::Held => {
                        counts.0 += 1;
                        assert_eq!(
                            owner.map(|h| h.status),
                            Some(HoldStatus::Active),
                            "{seat:?}"
                        );
                    }
                    SeatStatus::Booked => {
                        counts.1 += 1;
                        let booking = owner.and_then(|h| h.booking_id);
                        assert!(
                            booking.is_some(),
                            "a booked seat without a booking: {seat:?}"
                        );
                    }
                }
            }
            assert_eq!(
                counts,
                (event.held_tickets, event.booked_tickets),
                "seats match the counters"
            );
        }
        event
    }

    pub async fn count<E>(&self) -> u64
    where
        E: EntityTrait,
        E::Model: Sync,
    {
        E::find().count(&self.db).await.unwrap()
    }

    pub async fn notifications(&self) -> Vec<NotificationModel> {
        Notification::find().all(&self.db).await.unwrap()
    }

    /// Waits (bounded) until no notification is pending or in flight.
    pub async fn settle_notifications(&self) -> Vec<NotificationModel> {
        for _ in 0..600 {
            let all = self.notifications().await;
            if all.iter().all(|n| {
                matches!(
                    n.status,
                    NotificationStatus::Sent | NotificationStatus::Failed
                )
            }) {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "notifications did not settle: {:?}",
            self.notifications().await
        );
    }

    /// Whether the worker (beside the api, or inside it) says its email sends
    /// are stuck, as its `/health` does.
    pub async fn mail_stuck(&self) -> bool {
        match &self.worker {
            Some(worker) => worker.mail_health.stuck().is_some(),
            None => self.get("/health", None).await.0 == 503,
        }
    }

    /// Production mode: stops the worker process's stand-in (waiting for it).
    pub async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.shutdown().await;
        }
    }

    /// Production mode: starts a worker again, with these delivery settings.
    pub async fn start_worker(&mut self, tweak: impl FnOnce(&mut Settings)) {
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        self.worker = Some(spawn_worker(&settings).await);
    }

    /// Handles on this app's queues, as the api sees them.
    pub async fn queues(&self) -> platform::Queues {
        platform::Queues::open(
            &self.settings.storage.queue,
            &self.settings.storage.queue_namespace,
            &self.db,
        )
        .await
        .unwrap()
    }

    /// A handle on this app's queue, as the api sees it.
    pub async fn queue(&self) -> JobQueue {
        JobQueue::open(
            &self.settings.storage.queue,
            &self.settings.storage.queue_namespace,
            &self.db,
        )
        .await
        .unwrap()
    }
}

async fn into_parts(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    if status == 204 {
        assert!(text.is_empty(), "a 204 with a body: {text}");
        return (status, Value::Null);
    }
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("non-JSON response ({status}, {content_type}): {text}"));
    (status, body)
}

async fn fresh_settings(smtp: &SmtpSink) -> (Settings, Storage) {
    let mail = MailSettings {
        smtp_url: Some(smtp.url()),
        dir: std::env::temp_dir(),
        from: "Tickets <no-reply@test.local>".parse().unwrap(),
        send_timeout: Duration::from_secs(30),
    };
    let (database_url, queue, queue_namespace, storage) = if production_mode() {
        let admin_url = std::env::var("DATABASE_URL").unwrap();
        let name = format!("booking_test_{}", Uuid::now_v7().simple());
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .expect("connect to DATABASE_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
        url.set_path(&name);
        let redis_url =
            std::env::var("REDIS_URL").expect("REDIS_URL must be set with a postgres DATABASE_URL");
        let queue_namespace = format!("test:{}", Uuid::now_v7().simple());
        let storage = Storage::Postgres {
            admin_url,
            name,
            redis: Some((redis_url.clone(), queue_namespace.clone())),
        };
        (
            url.to_string(),
            QueueBackend::Redis { url: redis_url },
            queue_namespace,
            storage,
        )
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("booking.db").display()
        );
        (
            url,
            QueueBackend::Sqlite,
            platform::QUEUE_NAMESPACE.to_owned(),
            Storage::Sqlite(dir),
        )
    };
    let settings = Settings {
        storage: StorageSettings {
            database_url,
            queue,
            queue_namespace,
        },
        worker: WorkerSettings {
            webhooks: worker::WebhookPolicy::default(),
            concurrency: 4,
            nice: 0,
            mail,
            delivery: policy(),
            payments: worker::PaymentPolicy {
                stripe: None,
                reconcile_after: Duration::from_secs(120),
                refund_attempts: 12,
                refund_retry: DeliveryPolicy {
                    retry_base: Duration::from_millis(200),
                    lease: Duration::from_secs(5),
                    ..policy()
                },
            },
        },
        auth: AuthSettings {
            secret: random_secret(),
            token_ttl: Duration::from_secs(3600),
        },
        db_max_connections: 8,
        idempotency_ttl: Duration::from_secs(86_400),
        // Tests that are about limits turn them on; the stampedes must not hit them.
        rate_limits: RateLimits::off(),
        // Each change emailed at once; the coalescing test sets its own delay.
        event_update_delay: Duration::ZERO,
        metrics_token: None,
        stripe: None,
        // As in production: public https only. Tests that deliver allow more.
        webhook_destinations: webhook::DestinationRules::default(),
        // Made once and kept in the test's database, as in production.
        ticket_signing_key: None,
    };
    (settings, storage)
}

pub async fn spawn_worker(settings: &Settings) -> WorkerHandle {
    let db = platform::db::connect(&settings.storage.database_url, 6)
        .await
        .expect("worker db");
    let queues = platform::Queues::open(
        &settings.storage.queue,
        &settings.storage.queue_namespace,
        &db,
    )
    .await
    .expect("worker queues");
    let live = platform::ChangeFeed::open(
        &settings.storage.queue,
        &settings.storage.queue_namespace,
        queues.notifications.redis_connection(),
    )
    .expect("worker change feed");
    let tickets = inventory::signing::signer(&db, settings.ticket_signing_key.as_deref())
        .await
        .expect("the ticket signing key");
    worker::Worker::new(
        &settings.worker,
        db,
        queues,
        live,
        std::sync::Arc::new(tickets),
    )
    .expect("worker")
    .spawn()
}

fn figment() -> Figment {
    rocket::Config::figment()
        .merge(("address", "127.0.0.1"))
        .merge(("port", 0))
        .merge(("log_level", "off"))
        .merge(("shutdown.ctrlc", false))
}

/// Launches on an ephemeral port; returns its base URL.
async fn serve(app: startup::App) -> (String, rocket::Shutdown) {
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let rocket =
        api::rocket(figment(), app).attach(AdHoc::on_liftoff("report port", move |rocket| {
            Box::pin(async move {
                let _ = port_tx.send(rocket.config().port);
            })
        }));
    let rocket = rocket.ignite().await.expect("ignite");
    let shutdown = rocket.shutdown();
    tokio::spawn(api::launch(rocket));
    let port = port_rx.await.expect("rocket reported its port");
    (format!("http://127.0.0.1:{port}"), shutdown)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.stripe_webhook.take());
        self.shutdown.clone().notify();
        drop(self.worker.take());
        if let Storage::Postgres {
            admin_url,
            name,
            redis,
        } = &self._storage
        {
            let (admin_url, name, redis) = (admin_url.clone(), name.clone(), redis.clone());
            // Drop runs inside the test's runtime; clean up from a thread of our own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                    }
                    if let Some((url, prefix)) = redis {
                        delete_redis_keys(&url, &prefix).await;
                    }
                });
            })
            .join();
        }
    }
}

pub async fn delete_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
    // apalis also lists every queue in one shared registry.
    const REGISTRY: &str = "core:apalis:queues:list";
    let registered: Vec<String> = redis::cmd("ZRANGE")
        .arg(REGISTRY)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let ours: Vec<_> = registered
        .into_iter()
        .filter(|q| q.starts_with(prefix))
        .collect();
    if !ours.is_empty() {
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg(REGISTRY)
            .arg(ours)
            .query_async(&mut conn)
            .await;
    }
}
