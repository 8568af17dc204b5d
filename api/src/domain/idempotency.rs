//! `Idempotency-Key`: a retried request returns the first one's response instead
//! of doing the work again. The database decides, so it holds across any number of
//! api processes:
//!
//! 1. [`try_processing`] inserts an `in_flight` row for (user, key); of
//!    concurrent requests exactly one inserts it and goes on. The others replay a
//!    finished response, or are told to retry (still in flight), or are refused
//!    (same key, different request).
//! 2. The work completes the claim itself: a booking records its response (see
//!    [`Remember`]) in the same statement or transaction that books, so a booking
//!    without its remembered response cannot exist. Refusals (4xx) are saved with
//!    [`save_response`]; on a server error the claim is [`release`]d so the
//!    client can retry. `http::idempotency::respond_once` runs these steps.
//! 3. A claim still `in_flight` after [`ABANDONED_AFTER`] belonged to a process
//!    that died before booking anything (success would have completed it), so a
//!    retry may take it over.
//! 4. [`purge`] forgets keys older than their time to live (≥ 24 h).

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::idempotency_key::{
    ActiveModel as StoredKey, Column, Entity as StoredKeys, IdempotencyStatus,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, OnConflict},
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Error, now};

pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);
pub const MIN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err("Idempotency-Key must be 1 to 255 visible ASCII characters")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request asks for, reduced to a hash: the same key may only ever mean
/// the same request.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to do with a request that carries a key.
pub enum NextAction {
    /// Ours: do the work.
    StartProcessing,
    /// Done before: answer with this.
    ReturnSavedResponse { status: u16, body: String },
}

/// Handed to work done under a claimed key: how its successful response reads,
/// so the work can record it in its own statement, together with what it writes.
#[derive(Clone)]
pub struct Remember<T> {
    pub key: IdempotencyKey,
    pub status: u16,
    pub render: fn(&T) -> String,
}

impl<T> Remember<T> {
    /// The key, the status and the body to store for `value`.
    pub fn response(&self, value: &T) -> (String, u16, String) {
        (self.key.0.clone(), self.status, (self.render)(value))
    }
}

pub async fn try_processing(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<NextAction, Error> {
    let inserted = StoredKeys::insert(StoredKey {
        user_id: Set(user_id),
        key: Set(key.0.clone()),
        request_hash: Set(request_hash.to_owned()),
        status: Set(IdempotencyStatus::InFlight),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(now()),
    })
    .on_conflict(
        OnConflict::columns([Column::UserId, Column::Key])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 1 {
        return Ok(NextAction::StartProcessing);
    }
    let existing = StoredKeys::find_by_id((user_id, key.0.clone()))
        .one(db)
        .await?
        // Purged between the insert and this read: vanishingly rare; retrying works.
        .ok_or_else(|| Error::Conflict("this Idempotency-Key is being reset; retry".into()))?;
    if existing.request_hash != request_hash {
        return Err(Error::IdempotencyMismatch);
    }
    match (
        existing.status,
        existing.response_status,
        existing.response_body,
    ) {
        (IdempotencyStatus::Completed, Some(status), Some(body)) => {
            Ok(NextAction::ReturnSavedResponse {
                status: u16::try_from(status).unwrap_or(500),
                body,
            })
        }
        _ if take_over_abandoned(db, user_id, key, existing.created_at).await? => {
            Ok(NextAction::StartProcessing)
        }
        _ => Err(Error::StillInFlight),
    }
}

async fn take_over_abandoned(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &IdempotencyKey,
    claimed_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let now = now();
    if (now - claimed_at).to_std().unwrap_or_default() < ABANDONED_AFTER {
        return Ok(false);
    }
    let taken = StoredKeys::update_many()
        .col_expr(Column::CreatedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Key.eq(key.0.clone()))
        .filter(Column::Status.eq(IdempotencyStatus::InFlight))
        .filter(Column::CreatedAt.eq(claimed_at))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Records the final response for a claim.
pub async fn save_response<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), DbErr> {
    StoredKeys::update_many()
        .col_expr(Column::Status, Expr::value(IdempotencyStatus::Completed))
        .col_expr(Column::ResponseStatus, Expr::value(i32::from(status)))
        .col_expr(Column::ResponseBody, Expr::value(body.to_owned()))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Key.eq(key))
        .filter(Column::Status.eq(IdempotencyStatus::InFlight))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a claim up (the work failed on our side), so a retry starts afresh.
pub async fn release(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &IdempotencyKey,
) -> Result<(), DbErr> {
    StoredKeys::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Key.eq(key.0.clone()))
        .filter(Column::Status.eq(IdempotencyStatus::InFlight))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets keys created before `now - ttl`; returns how many.
pub async fn purge(
    db: &DatabaseConnection,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let ttl = ttl.max(MIN_TTL);
    let deleted = StoredKeys::delete_many()
        .filter(Column::CreatedAt.lt(now - ttl))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("order-42_retry.1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", "tab\there", "ünï", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }
}
