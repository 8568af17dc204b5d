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
//! 3. A claim still `in_flight` after [`ABANDONED_AFTER`] may be taken over by
//!    a retry. A claim is fenced by the moment it was made (`created_at`, which
//!    a take-over moves): the work first [`fence`]s its claim in its own
//!    transaction, locking the row until commit, and writes nothing if the
//!    claim is no longer its own. So a slow first attempt and its retry can
//!    never both take effect, however long the first one waits.
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
    /// Ours: do the work, under this claim.
    StartProcessing(Claim),
    /// Done before: answer with this.
    ReturnSavedResponse { status: u16, body: String },
}

/// A key this request claimed: whose, which, and when (the fencing token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub user_id: Uuid,
    pub key: IdempotencyKey,
    pub claimed_at: DateTime<Utc>,
}

/// Handed to work done under a claimed key: how its successful response reads,
/// so the work can record it in its own statement, together with what it writes.
#[derive(Clone)]
pub struct Remember<T> {
    pub claim: Claim,
    pub status: u16,
    pub render: fn(&T) -> String,
}

impl<T> Remember<T> {
    /// The status and the body to store for `value`.
    pub fn response(&self, value: &T) -> (u16, String) {
        (self.status, (self.render)(value))
    }
}

pub async fn try_processing(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<NextAction, Error> {
    let claimed_at = now();
    let inserted = StoredKeys::insert(StoredKey {
        user_id: Set(user_id),
        key: Set(key.0.clone()),
        request_hash: Set(request_hash.to_owned()),
        status: Set(IdempotencyStatus::InFlight),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(claimed_at),
    })
    .on_conflict(
        OnConflict::columns([Column::UserId, Column::Key])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 1 {
        return Ok(NextAction::StartProcessing(Claim {
            user_id,
            key: key.clone(),
            claimed_at,
        }));
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
        _ => match take_over_abandoned(db, user_id, key, existing.created_at).await? {
            Some(claim) => Ok(NextAction::StartProcessing(claim)),
            None => Err(Error::StillInFlight),
        },
    }
}

/// A claim older than [`ABANDONED_AFTER`] becomes this request's, with a new
/// fencing token; the old holder's [`fence`] then fails and it writes nothing.
async fn take_over_abandoned(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &IdempotencyKey,
    claimed_at: DateTime<Utc>,
) -> Result<Option<Claim>, DbErr> {
    let now = now();
    if (now - claimed_at).to_std().unwrap_or_default() < ABANDONED_AFTER {
        return Ok(None);
    }
    let taken = StoredKeys::update_many()
        .col_expr(Column::CreatedAt, Expr::value(now))
        .filter(owned(&Claim {
            user_id,
            key: key.clone(),
            claimed_at,
        }))
        .exec(db)
        .await?;
    Ok((taken.rows_affected == 1).then(|| Claim {
        user_id,
        key: key.clone(),
        claimed_at: now,
    }))
}

/// The stored row of a claim still in flight and still this claim's.
fn owned(claim: &Claim) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(Column::UserId.eq(claim.user_id))
        .add(Column::Key.eq(claim.key.0.clone()))
        .add(Column::Status.eq(IdempotencyStatus::InFlight))
        .add(Column::CreatedAt.eq(claim.claimed_at))
}

/// Inside the work's transaction, before it writes: `true` while the claim is
/// still this request's, and then it stays so until the transaction ends (the
/// row is locked: a take-over waits, and after a commit finds it completed).
/// `false`: a retry took the claim over; write nothing.
pub async fn fence<C: ConnectionTrait>(txn: &C, claim: &Claim) -> Result<bool, DbErr> {
    let locked = StoredKeys::update_many()
        .col_expr(Column::CreatedAt, Expr::col(Column::CreatedAt))
        .filter(owned(claim))
        .exec(txn)
        .await?;
    Ok(locked.rows_affected == 1)
}

/// Records the final response for a claim (if it is still this one's).
pub async fn save_response<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
    status: u16,
    body: &str,
) -> Result<(), DbErr> {
    StoredKeys::update_many()
        .col_expr(Column::Status, Expr::value(IdempotencyStatus::Completed))
        .col_expr(Column::ResponseStatus, Expr::value(i32::from(status)))
        .col_expr(Column::ResponseBody, Expr::value(body.to_owned()))
        .filter(owned(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a claim up (the work failed on our side), so a retry starts afresh.
pub async fn release(db: &DatabaseConnection, claim: &Claim) -> Result<(), DbErr> {
    StoredKeys::delete_many()
        .filter(owned(claim))
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
