//! The event-update email, coalesced: an organizer who changes an event
//! several times in a row sends each customer one email listing every change
//! (SPEC §4), not one per edit. A notice waits [`Services::event_update_delay`]
//! before it is due; a change made meanwhile is merged into the notices still
//! waiting, under the event's row lock, so no two edits race over one notice.

use std::collections::{BTreeMap, BTreeSet};

use entity::prelude::*;
use platform::EventChange;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{Services, now, outbox};

/// Ids per `IN (…)` list: under both databases' bind limits.
const IDS_PER_STATEMENT: usize = 1_000;

/// Tells `customers` of `changes` to `event_id`, in the caller's transaction
/// (which holds the event row). Returns the notices to push now: none when
/// they wait out the delay, for the worker's sweep to send once due.
pub async fn notify(
    txn: &DatabaseTransaction,
    services: &Services,
    event_id: Uuid,
    customers: Vec<Uuid>,
    changes: Vec<EventChange>,
) -> Result<Vec<Uuid>, DbErr> {
    let notices = |customers: Vec<Uuid>| {
        outbox::to_each(
            customers,
            NotificationKind::EventUpdated,
            event_id,
            Some(changes.clone()),
        )
    };
    let delay = services.event_update_delay;
    if delay.is_zero() {
        return outbox::write(txn, services, notices(customers)).await;
    }
    let now = now();
    let mut told: BTreeSet<Uuid> = BTreeSet::new();
    for (earlier, ids) in waiting(txn, event_id, now).await? {
        let merged = EventChange::merge(earlier, changes.clone());
        for ids in ids.chunks(IDS_PER_STATEMENT) {
            let still_waiting =
                not_yet_due(event_id, now).add(NotificationColumn::Id.is_in(ids.iter().copied()));
            if merged.is_empty() {
                // Changed back: nothing left to tell.
                let gone = Notification::delete_many()
                    .filter(still_waiting)
                    .exec_with_returning(txn)
                    .await?;
                told.extend(gone.into_iter().map(|n| n.user_id));
            } else {
                let value = serde_json::to_value(&merged).unwrap_or_default();
                let updated = Notification::update_many()
                    .col_expr(NotificationColumn::Changes, Expr::value(Some(value)))
                    .filter(still_waiting)
                    .exec_with_returning(txn)
                    .await?;
                told.extend(updated.into_iter().map(|n| n.user_id));
            }
        }
    }
    let rest: Vec<Uuid> = customers
        .into_iter()
        .filter(|customer| !told.contains(customer))
        .collect();
    let due_at =
        now + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::seconds(60));
    outbox::write_due(txn, services, notices(rest), due_at).await?;
    Ok(Vec::new())
}

/// Update notices of the event still waiting out their delay, grouped by what
/// they say so far (customers who booked between two edits were told less).
async fn waiting(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(Vec<EventChange>, Vec<Uuid>)>, DbErr> {
    let rows = Notification::find()
        .filter(not_yet_due(event_id, now))
        .all(txn)
        .await?;
    let mut groups: BTreeMap<String, (Vec<EventChange>, Vec<Uuid>)> = BTreeMap::new();
    for row in rows {
        let Some(stored) = row.changes else { continue };
        let key = stored.to_string();
        let Ok(changes) = serde_json::from_value::<Vec<EventChange>>(stored) else {
            continue;
        };
        groups
            .entry(key)
            .or_insert_with(|| (changes, Vec::new()))
            .1
            .push(row.id);
    }
    Ok(groups.into_values().collect())
}

/// Drops the event's update notices still waiting: the event was cancelled,
/// and its cancellation email says all there is to say.
pub async fn drop_waiting(txn: &DatabaseTransaction, event_id: Uuid) -> Result<(), DbErr> {
    Notification::delete_many()
        .filter(not_yet_due(event_id, now()))
        .exec(txn)
        .await?;
    Ok(())
}

/// An update notice of the event, not yet due, so not yet taken by a worker.
fn not_yet_due(event_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(NotificationColumn::EventId.eq(event_id))
        .add(NotificationColumn::Kind.eq(NotificationKind::EventUpdated))
        .add(NotificationColumn::Status.eq(NotificationStatus::Pending))
        .add(NotificationColumn::Attempts.eq(0))
        .add(NotificationColumn::NextAttemptAt.gt(now))
}
