//! Refunds and reconciliation (SPEC §14).
//!
//! A refund row is written by whatever decided the money goes back (a
//! cancellation, a payment that could not be booked), in that change's own
//! transaction; here it is carried out like an outbox row: claimed with a
//! lease (`pending → sending`), the provider called with the refund's id as
//! the `Idempotency-Key`, then `succeeded` with its email, or back to
//! `pending` with a later `next_attempt_at`, or `failed` for good. A worker
//! that dies mid-call leaves it `sending` until its lease ends; the next
//! attempt first looks for a refund of ours at the provider (by the refund id
//! in its metadata) and only then asks for one, so a payment is never
//! refunded twice, even by a provider that ignores idempotency keys.
//!
//! Reconciliation asks Stripe about payments still pending a while after
//! they were last looked at, and applies what it learns exactly as the
//! webhook would (`inventory::payments`).

use chrono::{DateTime, Utc};
use entity::prelude::*;
use inventory::AfterCommit;
use platform::{ChangeFeed, Queues, db::begin_write};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use stripe_client::{Stripe, StripeError};
use uuid::Uuid;

use crate::settings::PaymentPolicy;

/// Refunds claimed per round, payments reconciled per round.
const PER_ROUND: u64 = 50;

/// Pending payments older than this are no longer asked about: a customer
/// who never paid does not cost a Stripe call every round for ever.
const RECONCILE_FOR: chrono::Duration = chrono::Duration::days(7);

pub struct Payments {
    pub db: DatabaseConnection,
    pub stripe: Option<Stripe>,
    pub policy: PaymentPolicy,
    pub queues: Queues,
    pub live: ChangeFeed,
}

impl Payments {
    pub fn new(
        db: DatabaseConnection,
        policy: PaymentPolicy,
        queues: Queues,
        live: ChangeFeed,
    ) -> Result<Self, StripeError> {
        let stripe = policy.stripe.as_ref().map(Stripe::new).transpose()?;
        Ok(Self {
            db,
            stripe,
            policy,
            queues,
            live,
        })
    }

    /// Carries out the refunds that are due. Returns how many were taken.
    pub async fn refund_due(&self) -> Result<usize, DbErr> {
        let now = Utc::now();
        let due: Vec<Uuid> = Refund::find()
            .select_only()
            .column(RefundColumn::Id)
            .filter(due_condition(now))
            .order_by_asc(RefundColumn::NextAttemptAt)
            .limit(PER_ROUND)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut taken = 0;
        for id in due {
            if let Some(refund) = self.claim(id).await? {
                taken += 1;
                let outcome = self.carry_out(&refund).await?;
                platform::metrics::REFUNDS
                    .with_label_values(&[outcome])
                    .inc();
            }
        }
        Ok(taken)
    }

    async fn claim(&self, id: Uuid) -> Result<Option<RefundModel>, DbErr> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(self.policy.refund_retry.lease)
            .unwrap_or(chrono::Duration::seconds(60));
        Ok(Refund::update_many()
            .col_expr(RefundColumn::Status, Expr::value(RefundStatus::Sending))
            .col_expr(RefundColumn::LockedUntil, Expr::value(Some(now + lease)))
            .col_expr(
                RefundColumn::Attempts,
                Expr::col(RefundColumn::Attempts).add(1),
            )
            .filter(RefundColumn::Id.eq(id))
            .filter(due_condition(now))
            .exec_with_returning(&self.db)
            .await?
            .into_iter()
            .next())
    }

    /// Returns the outcome, as a metrics label.
    async fn carry_out(&self, refund: &RefundModel) -> Result<&'static str, DbErr> {
        let Some(stripe) = &self.stripe else {
            return self
                .retry_or_fail(refund, "card payments are not configured on this worker")
                .await;
        };
        let payment = Payment::find_by_id(refund.payment_id).one(&self.db).await?;
        let Some(intent) = payment.and_then(|p| p.provider_ref) else {
            return self.fail(refund, "the payment has no PaymentIntent").await;
        };
        let refund_id = refund.id.to_string();
        let done = async {
            if refund.attempts > 1 {
                // An earlier attempt may have refunded and lost the answer.
                let earlier = stripe.refunds_of(&intent).await?.into_iter().find(|r| {
                    r.metadata.get("refund_id") == Some(&refund_id) && r.status != "failed"
                });
                if let Some(earlier) = earlier {
                    return Ok(earlier);
                }
            }
            stripe.refund(&intent, refund.amount, &refund_id).await
        }
        .await;
        match done {
            Ok(made) => {
                self.succeed(refund, &made.id).await?;
                tracing::info!(refund_id = %refund.id, provider_ref = %made.id, "refund made");
                Ok("succeeded")
            }
            Err(error) if error.is_transient() => {
                self.retry_or_fail(refund, &error.to_string()).await
            }
            Err(error) => self.fail(refund, &error.to_string()).await,
        }
    }

    async fn succeed(&self, refund: &RefundModel, provider_ref: &str) -> Result<(), DbErr> {
        let now = Utc::now();
        let txn = begin_write(&self.db).await?;
        let finished = Refund::update_many()
            .col_expr(RefundColumn::Status, Expr::value(RefundStatus::Succeeded))
            .col_expr(
                RefundColumn::ProviderRef,
                Expr::value(Some(provider_ref.to_owned())),
            )
            .col_expr(RefundColumn::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                RefundColumn::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(RefundColumn::LastError, Expr::value(Option::<String>::None))
            .filter(RefundColumn::Id.eq(refund.id))
            .filter(RefundColumn::Status.eq(RefundStatus::Sending))
            .exec(&txn)
            .await?;
        if finished.rows_affected == 0 {
            // Another worker took it over after this one's lease ran out and
            // finished it; its email is its own.
            return Ok(());
        }
        let ids = inventory::payments::refunded(&txn, refund, now).await?;
        txn.commit().await?;
        AfterCommit::default()
            .notify(ids)
            .publish(&self.queues, &self.live)
            .await;
        Ok(())
    }

    async fn retry_or_fail(
        &self,
        refund: &RefundModel,
        error: &str,
    ) -> Result<&'static str, DbErr> {
        if refund.attempts >= self.policy.refund_attempts {
            return self.fail(refund, error).await;
        }
        let delay = self.policy.refund_retry.retry_delay(refund.attempts);
        let retry_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        tracing::warn!(refund_id = %refund.id, attempts = refund.attempts, %error, %retry_at, "refund failed; will retry");
        self.finish(refund, RefundStatus::Pending, error, Some(retry_at))
            .await?;
        Ok("retry_scheduled")
    }

    async fn fail(&self, refund: &RefundModel, error: &str) -> Result<&'static str, DbErr> {
        tracing::error!(refund_id = %refund.id, attempts = refund.attempts, %error, "refund failed for good; pay it back by hand");
        self.finish(refund, RefundStatus::Failed, error, None)
            .await?;
        Ok("failed")
    }

    async fn finish(
        &self,
        refund: &RefundModel,
        status: RefundStatus,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), DbErr> {
        let mut update = Refund::update_many()
            .col_expr(RefundColumn::Status, Expr::value(status))
            .col_expr(RefundColumn::LastError, Expr::value(Some(error.to_owned())))
            .col_expr(
                RefundColumn::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            );
        if let Some(retry_at) = retry_at {
            update = update.col_expr(RefundColumn::NextAttemptAt, Expr::value(retry_at));
        }
        if status == RefundStatus::Failed {
            update = update.col_expr(RefundColumn::FinishedAt, Expr::value(Some(Utc::now())));
        }
        update
            .filter(RefundColumn::Id.eq(refund.id))
            .filter(RefundColumn::Status.eq(RefundStatus::Sending))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Asks Stripe about pending payments not looked at for
    /// `reconcile_after`, and applies what it says. Returns how many changed.
    pub async fn reconcile(&self) -> Result<usize, DbErr> {
        let Some(stripe) = &self.stripe else {
            return Ok(0);
        };
        let now = Utc::now();
        let stale = now
            - chrono::Duration::from_std(self.policy.reconcile_after)
                .unwrap_or(chrono::Duration::seconds(120));
        let pending = Payment::find()
            // A literal, so that PostgreSQL's generic plan uses the partial index.
            .filter(Expr::cust("payments.status = 'pending'"))
            .filter(PaymentColumn::Provider.eq(PaymentProvider::Stripe))
            .filter(PaymentColumn::UpdatedAt.lte(stale))
            .filter(PaymentColumn::CreatedAt.gt(now - RECONCILE_FOR))
            .order_by_asc(PaymentColumn::UpdatedAt)
            .limit(PER_ROUND)
            .all(&self.db)
            .await?;
        let mut changed = 0;
        for payment in pending {
            // To the back of the line, whatever Stripe says.
            Payment::update_many()
                .col_expr(PaymentColumn::UpdatedAt, Expr::value(now))
                .filter(PaymentColumn::Id.eq(payment.id))
                .filter(PaymentColumn::Status.eq(PaymentStatus::Pending))
                .exec(&self.db)
                .await?;
            let Some(intent_id) = &payment.provider_ref else {
                // Its PaymentIntent was never made (the api stopped between
                // the two): nobody can pay it.
                inventory::payments::fail_attempt(&self.db, payment.id, now).await?;
                continue;
            };
            let intent = match stripe.payment_intent(intent_id).await {
                Ok(intent) => intent,
                Err(error) => {
                    tracing::warn!(payment_id = %payment.id, %error, "could not ask Stripe about a pending payment; will ask again");
                    continue;
                }
            };
            let applied = if intent.succeeded() {
                let report = inventory::payments::Report {
                    amount: intent.amount,
                    currency: &intent.currency,
                };
                inventory::payments::succeeded(&self.db, intent_id, report, None, Utc::now())
                    .await?
            } else if intent.failed() {
                inventory::payments::failed(&self.db, intent_id).await?
            } else {
                continue;
            };
            tracing::info!(payment_id = %payment.id, outcome = applied.outcome(), "payment reconciled with Stripe");
            platform::metrics::PAYMENTS
                .with_label_values(&["stripe", applied.outcome()])
                .inc();
            changed += 1;
            applied
                .into_after_commit()
                .publish(&self.queues, &self.live)
                .await;
        }
        Ok(changed)
    }
}

/// Due now: pending and its time has come, or claimed by a worker whose
/// lease ran out.
fn due_condition(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(RefundColumn::Status.eq(RefundStatus::Pending))
                .add(RefundColumn::NextAttemptAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(RefundColumn::Status.eq(RefundStatus::Sending))
                .add(RefundColumn::LockedUntil.lt(now)),
        )
}
