//! Turning one outbox row into one sent email, at most once per successful send.
//!
//! A row moves `pending → sending → sent`, or back to `pending` with a later
//! `next_attempt_at` after a failed send, or to `failed` after the last attempt.
//! Taking a row to `sending` is a conditional update, so of two workers handed the
//! same id only one sends. A worker that dies between sending and marking the row
//! `sent` leaves it `sending`; once its lease runs out the row is sent again, which
//! is why delivery is at-least-once in that one window and exactly-once otherwise.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use entity::prelude::*;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use platform::{DeliverNotification, gather::Gather};
use ticket_code::Signer;

use crate::{
    compose::{ComposeError, Composer},
    gather,
    mailer::Mailer,
    metrics,
    settings::{DeliveryPolicy, MailSettings},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Someone else has it, it is already done, or it is not due yet.
    Skipped,
    RetryScheduled,
    Failed,
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    Mail(#[from] crate::mailer::MailError),
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("bad address {0:?}: {1}")]
    Address(String, lettre::address::AddressError),
    #[error("{0}")]
    Compose(#[from] ComposeError),
}

impl SendError {
    /// Whether trying again could help. A missing row, an address the mailer
    /// cannot use or an SMTP 5xx will fail the same way every time; a network
    /// error, a 4xx or a busy database may not.
    fn is_permanent(&self) -> bool {
        match self {
            SendError::Mail(crate::mailer::MailError::Smtp(error)) => error.is_permanent(),
            SendError::Mail(_) => false,
            SendError::Compose(error) => error.is_permanent(),
            SendError::Build(_) | SendError::Address(..) => true,
        }
    }
}

pub struct Deliverer {
    pub db: DatabaseConnection,
    composer: Composer,
    pub mailer: Mailer,
    pub mail: MailSettings,
    pub policy: DeliveryPolicy,
    /// Concurrent claims, one statement per round.
    claims: Gather<(), Uuid, Result<Option<NotificationModel>, DbErr>>,
    /// Concurrent "sent" marks, one statement per round.
    sent: Gather<(), Uuid, Result<(), DbErr>>,
}

/// The most rows one claim or one "sent" statement covers.
const ROWS_PER_ROUND: usize = 256;

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl Deliverer {
    pub fn new(
        db: DatabaseConnection,
        mailer: Mailer,
        mail: MailSettings,
        policy: DeliveryPolicy,
        tickets: Arc<Signer>,
    ) -> Self {
        Self {
            composer: Composer::new(db.clone(), tickets, mail.from.email.to_string()),
            db,
            mailer,
            mail,
            policy,
            claims: Gather::new(ROWS_PER_ROUND),
            sent: Gather::new(ROWS_PER_ROUND),
        }
    }

    pub async fn deliver(&self, id: Uuid) -> Result<Outcome, DbErr> {
        let Some(notification) = self.claim(id).await? else {
            return Ok(Outcome::Skipped);
        };
        let started = std::time::Instant::now();
        let sent = self.send(&notification).await;
        metrics::SEND_SECONDS.observe(started.elapsed().as_secs_f64());
        match sent {
            Ok(()) => {
                self.sent
                    .call((), id, |ids| mark_all_sent(&self.db, ids))
                    .await
                    .unwrap_or_else(|| Err(gather::lost()))?;
                tracing::info!(notification_id = %id, kind = ?notification.kind, "notification sent");
                Ok(Outcome::Sent)
            }
            Err(error)
                if error.is_permanent() || notification.attempts >= self.policy.max_attempts =>
            {
                tracing::error!(notification_id = %id, attempts = notification.attempts, permanent = error.is_permanent(), %error, "notification failed for good");
                self.finish(
                    id,
                    NotificationStatus::Failed,
                    Some(error.to_string()),
                    None,
                )
                .await?;
                Ok(Outcome::Failed)
            }
            Err(error) => {
                let retry_at = now() + self.policy.retry_delay(notification.attempts);
                tracing::warn!(notification_id = %id, attempts = notification.attempts, %error, %retry_at, "notification send failed, will retry");
                self.finish(
                    id,
                    NotificationStatus::Pending,
                    Some(error.to_string()),
                    Some(retry_at),
                )
                .await?;
                Ok(Outcome::RetryScheduled)
            }
        }
    }

    /// Takes the row if it is due and nobody holds a live lease on it (with
    /// the other claims waiting at the same moment, in one statement).
    async fn claim(&self, id: Uuid) -> Result<Option<NotificationModel>, DbErr> {
        self.claims
            .call((), id, |ids| claim_all(&self.db, self.policy.lease, ids))
            .await
            .unwrap_or_else(|| Err(gather::lost()))
    }

    async fn finish(
        &self,
        id: Uuid,
        status: NotificationStatus,
        error: Option<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), DbErr> {
        let mut update = Notification::update_many()
            .col_expr(NotificationColumn::Status, Expr::value(status))
            .col_expr(
                NotificationColumn::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(NotificationColumn::LastError, Expr::value(error));
        if let Some(retry_at) = retry_at {
            // Clearing `enqueued_at` lets the sweep push it again once it is due.
            update = update
                .col_expr(NotificationColumn::NextAttemptAt, Expr::value(retry_at))
                .col_expr(
                    NotificationColumn::EnqueuedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                );
        }
        update
            .filter(NotificationColumn::Id.eq(id))
            .filter(NotificationColumn::Status.eq(NotificationStatus::Sending))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn send(&self, notification: &NotificationModel) -> Result<(), SendError> {
        let (customer, email) = self.composer.compose(notification).await?;
        let address = customer
            .email
            .parse()
            .map_err(|e| SendError::Address(customer.email.clone(), e))?;
        let message = email.message(
            self.mail.from.clone(),
            lettre::message::Mailbox::new(Some(customer.name.clone()), address),
            format!("<{}@booking.notifications>", notification.id),
        )?;
        self.mailer.send(message).await?;
        Ok(())
    }

    /// Marks due rows whose job is missing as enqueued and returns their jobs, for
    /// the caller to push. Concurrent sweeps (several workers) get disjoint rows,
    /// because the marking update re-checks the condition row by row.
    ///
    /// A row never pushed (or whose retry is due) always needs a job. A row pushed
    /// `redeliver_after` ago and still not delivered may have lost its job (Redis
    /// restarted empty) or may simply be waiting behind a backlog; the caller says
    /// which is plausible with `queue_drained`, so a long queue is not flooded
    /// with duplicates of the jobs it already holds.
    pub async fn sweep(
        &self,
        limit: u64,
        queue_drained: bool,
    ) -> Result<Vec<DeliverNotification>, DbErr> {
        let now = now();
        let stale = now - self.policy.redeliver_after;
        let mut needs_job = Condition::any().add(NotificationColumn::EnqueuedAt.is_null());
        if queue_drained {
            needs_job = needs_job.add(NotificationColumn::EnqueuedAt.lt(stale));
        }
        let due = Condition::all().add(claimable(now)).add(needs_job);
        let candidates: Vec<Uuid> = Notification::find()
            .select_only()
            .column(NotificationColumn::Id)
            .filter(due.clone())
            .order_by_asc(NotificationColumn::NextAttemptAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let marked = Notification::update_many()
            .col_expr(NotificationColumn::EnqueuedAt, Expr::value(Some(now)))
            .filter(NotificationColumn::Id.is_in(candidates))
            .filter(due)
            .exec_with_returning(&self.db)
            .await?;
        Ok(marked
            .into_iter()
            .map(|n| DeliverNotification {
                notification_id: n.id,
                request_id: n.request_id,
            })
            .collect())
    }
}

/// Claims the rows among `ids` that are claimable, for `lease`; each claimed
/// row goes to the first asker of its id (the same job twice gets it once).
async fn claim_all(
    db: &DatabaseConnection,
    lease: std::time::Duration,
    ids: Vec<Uuid>,
) -> Vec<Result<Option<NotificationModel>, DbErr>> {
    let now = now();
    let claimed = Notification::update_many()
        .col_expr(
            NotificationColumn::Status,
            Expr::value(NotificationStatus::Sending),
        )
        .col_expr(
            NotificationColumn::Attempts,
            Expr::col(NotificationColumn::Attempts).add(1),
        )
        .col_expr(
            NotificationColumn::LockedUntil,
            Expr::value(Some(now + lease)),
        )
        .filter(NotificationColumn::Id.is_in(ids.iter().copied()))
        .filter(claimable(now))
        .exec_with_returning(db)
        .await;
    match claimed {
        Ok(rows) => {
            let mut claimed: HashMap<Uuid, NotificationModel> =
                rows.into_iter().map(|row| (row.id, row)).collect();
            ids.iter().map(|id| Ok(claimed.remove(id))).collect()
        }
        Err(error) => gather::each_failed(&error, ids.len()),
    }
}

/// Marks the rows sent (those still `sending`: a lease that ran out and was
/// taken over is the other worker's to mark).
async fn mark_all_sent(db: &DatabaseConnection, ids: Vec<Uuid>) -> Vec<Result<(), DbErr>> {
    let count = ids.len();
    let marked = Notification::update_many()
        .col_expr(
            NotificationColumn::Status,
            Expr::value(NotificationStatus::Sent),
        )
        .col_expr(
            NotificationColumn::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            NotificationColumn::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(NotificationColumn::SentAt, Expr::value(Some(now())))
        .filter(NotificationColumn::Id.is_in(ids))
        .filter(NotificationColumn::Status.eq(NotificationStatus::Sending))
        .exec(db)
        .await;
    match marked {
        Ok(_) => (0..count).map(|_| Ok(())).collect(),
        Err(error) => gather::each_failed(&error, count),
    }
}

/// Due and not held: pending and past its backoff, or `sending` under an expired
/// lease (its worker died).
fn claimable(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(NotificationColumn::Status.eq(NotificationStatus::Pending))
                .add(NotificationColumn::NextAttemptAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(NotificationColumn::Status.eq(NotificationStatus::Sending))
                .add(NotificationColumn::LockedUntil.lt(now)),
        )
}
