//! Delivering webhook messages (SPEC §16): each message is claimed with a
//! lease like an email, signed with its endpoint's secret (Standard Webhooks),
//! and POSTed with a 10 s deadline, following no redirect, to an address its
//! name resolves to at that moment, which must be public unless
//! `WEBHOOK_ALLOW_PRIVATE`. A 2xx delivers it; 410 Gone fails it and switches
//! the endpoint off; anything else is tried again with exponential backoff
//! until it has been failing for `give_up_after` (3 days), when it fails and
//! its endpoint is switched off. An endpoint has at most `per_endpoint`
//! deliveries in flight: a message for a busy one is put back for a moment,
//! so a slow or dead endpoint never holds the others' (or email's) turns.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::{DeliverNotification, DeliverWebhook, JobQueue, db::now};
use reqwest::dns::{Name, Resolve, Resolving};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;
use webhook::{Destination, DestinationRules, Secret};

use crate::metrics;

/// How webhook messages are delivered (`WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// Where endpoints may point, checked again at each delivery.
    pub destinations: DestinationRules,
    /// The first retry's delay (`WEBHOOK_RETRY_BASE_MS`); doubling after.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_cap: Duration,
    /// A message failing this long is given up and its endpoint switched off.
    pub give_up_after: Duration,
    /// One attempt's deadline, connection to answer.
    pub timeout: Duration,
    /// How long a worker may hold a claimed message.
    pub lease: Duration,
    /// Deliveries in flight to one endpoint.
    pub per_endpoint: usize,
    /// Deliveries in flight in all (`WEBHOOK_CONCURRENCY`).
    pub concurrency: usize,
    /// How often due messages are queued.
    pub sweep_interval: Duration,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            destinations: DestinationRules::default(),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(6 * 3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            per_endpoint: 4,
            concurrency: 64,
            sweep_interval: Duration::from_millis(200),
        }
    }
}

impl WebhookPolicy {
    pub fn from_env() -> Result<Self, platform::env::ConfigError> {
        let defaults = Self::default();
        let concurrency = platform::env::parsed_or("WEBHOOK_CONCURRENCY", defaults.concurrency)?;
        if concurrency == 0 {
            return Err(platform::env::ConfigError::new(
                "WEBHOOK_CONCURRENCY",
                "must be at least 1",
            ));
        }
        Ok(Self {
            destinations: inventory::webhooks::destinations_from_env()?,
            retry_base: platform::env::millis_or("WEBHOOK_RETRY_BASE_MS", defaults.retry_base)?,
            lease: platform::env::millis_or("WEBHOOK_LEASE_MS", defaults.lease)?,
            concurrency,
            ..defaults
        })
    }

    fn retry_delay(&self, attempts: i32) -> Duration {
        let doublings = Ord::min(u32::try_from(attempts.saturating_sub(1)).unwrap_or(0), 20);
        Ord::min(
            self.retry_base
                .saturating_mul(2u32.saturating_pow(doublings)),
            self.retry_cap,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Delivered,
    RetryScheduled,
    Failed,
    /// Its endpoint was busy: put back for a moment, no attempt counted.
    Deferred,
    /// Someone else has it, it is done, or it is not due.
    Skipped,
}

impl WebhookOutcome {
    pub fn label(self) -> &'static str {
        match self {
            WebhookOutcome::Delivered => "delivered",
            WebhookOutcome::RetryScheduled => "retry_scheduled",
            WebhookOutcome::Failed => "failed",
            WebhookOutcome::Deferred => "deferred",
            WebhookOutcome::Skipped => "skipped",
        }
    }
}

/// Resolves a name for a delivery, refusing it when any address it gives is
/// not allowed: the check and the connection use the same answer.
struct CheckedResolver {
    rules: DestinationRules,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        Box::pin(async move {
            let url = format!("https://{}/", name.as_str());
            let destination = Destination::parse(&url, rules)?;
            let addresses: Vec<SocketAddr> = destination.resolve(rules).await?;
            let addresses: Box<dyn Iterator<Item = SocketAddr> + Send> =
                Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// How long a delivery waits for its endpoint's turn before putting its
/// message back.
const TURN_WAIT: Duration = Duration::from_millis(250);

pub struct WebhookDeliverer {
    db: DatabaseConnection,
    /// Where the email to an organizer whose endpoint was switched off goes.
    notifications: JobQueue<DeliverNotification>,
    pub policy: WebhookPolicy,
    http: reqwest::Client,
    /// Endpoints with deliveries in flight (bounded by the consumer's
    /// concurrency: an entry goes when its last delivery does).
    in_flight: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

impl WebhookDeliverer {
    pub fn new(
        db: DatabaseConnection,
        notifications: JobQueue<DeliverNotification>,
        policy: WebhookPolicy,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver {
                rules: policy.destinations,
            }))
            .user_agent("booking-webhooks/1")
            .build()?;
        Ok(Self {
            db,
            notifications,
            policy,
            http,
            in_flight: Mutex::default(),
        })
    }

    /// A turn to deliver to `endpoint_id`, if one comes free within
    /// [`TURN_WAIT`] (a fast endpoint's turns come back in milliseconds; a
    /// slow one's do not, and its messages are put back instead).
    async fn turn(&self, endpoint_id: Uuid) -> Option<OwnedSemaphorePermit> {
        let turns = self.turns_of(endpoint_id);
        tokio::time::timeout(TURN_WAIT, turns.acquire_owned())
            .await
            .ok()?
            .ok()
    }

    fn turns_of(&self, endpoint_id: Uuid) -> Arc<Semaphore> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        in_flight.retain(|_, turns| {
            Arc::strong_count(turns) > 1 || turns.available_permits() < self.policy.per_endpoint
        });
        in_flight
            .entry(endpoint_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.policy.per_endpoint)))
            .clone()
    }

    pub async fn deliver(&self, id: Uuid) -> Result<WebhookOutcome, DbErr> {
        let Some(message) = WebhookMessage::find_by_id(id).one(&self.db).await? else {
            return Ok(WebhookOutcome::Skipped);
        };
        let Some(_turn) = self.turn(message.endpoint_id).await else {
            self.defer(id).await?;
            return Ok(WebhookOutcome::Deferred);
        };
        let Some(message) = self.claim(id).await? else {
            return Ok(WebhookOutcome::Skipped);
        };
        let Some(endpoint) = WebhookEndpoint::find_by_id(message.endpoint_id)
            .one(&self.db)
            .await?
        else {
            return Ok(WebhookOutcome::Skipped);
        };
        if !endpoint.enabled {
            self.finish(
                &message,
                WebhookMessageStatus::Failed,
                None,
                Some("the endpoint is switched off".into()),
                None,
            )
            .await?;
            return Ok(WebhookOutcome::Failed);
        }
        let started = std::time::Instant::now();
        let answer = self.send(&endpoint, &message).await;
        metrics::WEBHOOK_SECONDS.observe(started.elapsed().as_secs_f64());
        let outcome = match answer {
            Ok(status) if (200..300).contains(&status) => {
                self.finish(
                    &message,
                    WebhookMessageStatus::Delivered,
                    Some(status),
                    None,
                    None,
                )
                .await?;
                WebhookOutcome::Delivered
            }
            Ok(410) => {
                self.finish(
                    &message,
                    WebhookMessageStatus::Failed,
                    Some(410),
                    Some("410 Gone: the endpoint is switched off".into()),
                    None,
                )
                .await?;
                self.switch_off(endpoint.id, "answered 410 Gone").await?;
                WebhookOutcome::Failed
            }
            other => {
                let (code, error) = match other {
                    Ok(status) => (Some(status), format!("answered {status}")),
                    Err(error) => (None, error),
                };
                let failing_for = (now() - message.created_at).to_std().unwrap_or_default();
                if failing_for >= self.policy.give_up_after {
                    self.finish(
                        &message,
                        WebhookMessageStatus::Failed,
                        code,
                        Some(error),
                        None,
                    )
                    .await?;
                    self.give_up(&endpoint, &message).await?;
                    WebhookOutcome::Failed
                } else {
                    let retry_at = now() + self.policy.retry_delay(message.attempts);
                    self.finish(
                        &message,
                        WebhookMessageStatus::Pending,
                        code,
                        Some(error),
                        Some(retry_at),
                    )
                    .await?;
                    WebhookOutcome::RetryScheduled
                }
            }
        };
        Ok(outcome)
    }

    /// One attempt: the answer's status, or why there was none.
    async fn send(
        &self,
        endpoint: &WebhookEndpointModel,
        message: &WebhookMessageModel,
    ) -> Result<u16, String> {
        // A literal address is judged here; a name, by the resolver.
        let destination = Destination::parse(&endpoint.url, self.policy.destinations)
            .map_err(|refused| refused.to_string())?;
        let secret = Secret::parse(&endpoint.secret).map_err(|e| e.to_string())?;
        let webhook_id = inventory::webhooks::message_id(message.id);
        let timestamp = now().timestamp();
        let signature = webhook::sign(&secret, &webhook_id, timestamp, message.payload.as_bytes());
        let answer = self
            .http
            .post(destination.url().clone())
            .header("content-type", "application/json")
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.payload.clone())
            .send()
            .await
            .map_err(|error| describe(&error))?;
        Ok(answer.status().as_u16())
    }

    /// Puts a message whose endpoint is busy back for a moment.
    async fn defer(&self, id: Uuid) -> Result<(), DbErr> {
        WebhookMessage::update_many()
            .col_expr(
                WebhookMessageColumn::NextAttemptAt,
                Expr::value(now() + Duration::from_millis(500)),
            )
            .col_expr(
                WebhookMessageColumn::EnqueuedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(WebhookMessageColumn::Id.eq(id))
            .filter(WebhookMessageColumn::Status.eq(WebhookMessageStatus::Pending))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn claim(&self, id: Uuid) -> Result<Option<WebhookMessageModel>, DbErr> {
        let now = now();
        let mut claimed = WebhookMessage::update_many()
            .col_expr(
                WebhookMessageColumn::Status,
                Expr::value(WebhookMessageStatus::Sending),
            )
            .col_expr(
                WebhookMessageColumn::Attempts,
                Expr::col(WebhookMessageColumn::Attempts).add(1),
            )
            .col_expr(
                WebhookMessageColumn::LockedUntil,
                Expr::value(Some(now + self.policy.lease)),
            )
            .filter(WebhookMessageColumn::Id.eq(id))
            .filter(claimable(now))
            .exec_with_returning(&self.db)
            .await?;
        Ok(claimed.pop())
    }

    async fn finish(
        &self,
        message: &WebhookMessageModel,
        status: WebhookMessageStatus,
        code: Option<u16>,
        error: Option<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), DbErr> {
        let mut update = WebhookMessage::update_many()
            .col_expr(WebhookMessageColumn::Status, Expr::value(status))
            .col_expr(
                WebhookMessageColumn::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                WebhookMessageColumn::LastStatusCode,
                Expr::value(code.map(i32::from)),
            )
            .col_expr(WebhookMessageColumn::LastError, Expr::value(error));
        if status == WebhookMessageStatus::Delivered {
            update = update.col_expr(WebhookMessageColumn::DeliveredAt, Expr::value(Some(now())));
        }
        if let Some(retry_at) = retry_at {
            update = update
                .col_expr(WebhookMessageColumn::NextAttemptAt, Expr::value(retry_at))
                .col_expr(
                    WebhookMessageColumn::EnqueuedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                );
        }
        update
            .filter(WebhookMessageColumn::Id.eq(message.id))
            .filter(WebhookMessageColumn::Status.eq(WebhookMessageStatus::Sending))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// An endpoint whose message kept failing until given up is switched
    /// off, and its organizer emailed (in the same transaction).
    async fn give_up(
        &self,
        endpoint: &WebhookEndpointModel,
        message: &WebhookMessageModel,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        let switched =
            switch_off(&txn, endpoint.id, "deliveries kept failing until given up").await?;
        let ids = if switched {
            inventory::outbox::write(
                &txn,
                None,
                vec![inventory::outbox::Notice {
                    kind: NotificationKind::WebhookDisabled,
                    user_id: endpoint.organizer_id,
                    event_id: message.event_id,
                    booking_id: None,
                    hold_id: None,
                    changes: None,
                    refund_id: None,
                    webhook_endpoint_id: Some(endpoint.id),
                }],
            )
            .await?
        } else {
            Vec::new()
        };
        txn.commit().await?;
        let jobs = ids
            .into_iter()
            .map(|notification_id| DeliverNotification {
                notification_id,
                request_id: None,
            })
            .collect();
        if let Err(error) = self.notifications.push(jobs).await {
            tracing::warn!(%error, "the switched-off endpoint's email waits for the sweep");
        }
        Ok(())
    }

    async fn switch_off(&self, endpoint_id: Uuid, reason: &str) -> Result<(), DbErr> {
        switch_off(&self.db, endpoint_id, reason).await?;
        Ok(())
    }

    /// Marks due messages with no job as queued and returns their jobs, for
    /// the caller to push (concurrent sweeps get disjoint rows). With
    /// `lost_after`, a message queued that long ago and still due is taken to
    /// have lost its job (the caller passes it only when the queue is nearly
    /// empty, so a long queue is not flooded with duplicates).
    pub async fn sweep(
        &self,
        limit: u64,
        lost_after: Option<Duration>,
    ) -> Result<Vec<DeliverWebhook>, DbErr> {
        let now = now();
        let mut needs_job = Condition::any().add(WebhookMessageColumn::EnqueuedAt.is_null());
        if let Some(lost_after) = lost_after {
            needs_job = needs_job.add(WebhookMessageColumn::EnqueuedAt.lt(now - lost_after));
        }
        let due = Condition::all().add(claimable(now)).add(needs_job);
        let candidates: Vec<Uuid> = WebhookMessage::find()
            .select_only()
            .column(WebhookMessageColumn::Id)
            .filter(due.clone())
            .order_by_asc(WebhookMessageColumn::NextAttemptAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let marked: Vec<Uuid> = WebhookMessage::update_many()
            .col_expr(WebhookMessageColumn::EnqueuedAt, Expr::value(Some(now)))
            .filter(WebhookMessageColumn::Id.is_in(candidates))
            .filter(due)
            .exec_with_returning(&self.db)
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        Ok(marked
            .into_iter()
            .map(|message_id| DeliverWebhook { message_id })
            .collect())
    }
}

/// Switches an endpoint off, saying why; whether it was on.
async fn switch_off<C: ConnectionTrait>(
    db: &C,
    endpoint_id: Uuid,
    reason: &str,
) -> Result<bool, DbErr> {
    tracing::warn!(%endpoint_id, reason, "webhook endpoint switched off");
    let switched = WebhookEndpoint::update_many()
        .col_expr(WebhookEndpointColumn::Enabled, Expr::value(false))
        .col_expr(
            WebhookEndpointColumn::DisabledReason,
            Expr::value(Some(reason.to_owned())),
        )
        .col_expr(WebhookEndpointColumn::UpdatedAt, Expr::value(now()))
        .filter(WebhookEndpointColumn::Id.eq(endpoint_id))
        .filter(WebhookEndpointColumn::Enabled.eq(true))
        .exec(db)
        .await?;
    Ok(switched.rows_affected > 0)
}

/// Due and not held: pending and past its backoff, or `sending` under an
/// expired lease (its worker died).
fn claimable(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(WebhookMessageColumn::Status.eq(WebhookMessageStatus::Pending))
                .add(WebhookMessageColumn::NextAttemptAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(WebhookMessageColumn::Status.eq(WebhookMessageStatus::Sending))
                .add(WebhookMessageColumn::LockedUntil.lt(now)),
        )
}

/// An error as the delivery log shows it: the innermost cause says most.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "no answer within the deadline".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
