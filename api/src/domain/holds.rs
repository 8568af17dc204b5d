//! Holds and checkout (SPEC §8): tickets set aside for a customer for the
//! event's `hold_minutes`, then confirmed into a booking, released, or expired.
//!
//! Tickets are taken by `checkout`; ending a hold is `inventory`'s, shared
//! with the worker that expires holds. Lock order on every path: hold, event,
//! seats.

use entity::prelude::*;
use inventory::{Count, move_tickets, per_type};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Services, begin_write, checkout,
    idempotency::{self, Remember},
    now, queries,
    sale::{self, Ask, BookingDetails, HoldDetails},
};

/// Holds tickets for a customer, or fails having written nothing.
pub async fn create(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    ask: Ask,
) -> Result<HoldDetails, Error> {
    let order = checkout::Order {
        customer_id,
        selection: ask.selection,
        promo_code: ask.promo_code,
        kind: checkout::Kind::Hold,
    };
    match checkout::take(services, event_id, order).await? {
        checkout::Taken::Held(details) => Ok(details),
        checkout::Taken::Booked(_) => Err(Error::Internal(anyhow::anyhow!(
            "a hold was taken as a booking"
        ))),
    }
}

/// The customer's own hold; anyone else's does not exist.
pub(super) async fn own(
    db: &DatabaseConnection,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<HoldModel, Error> {
    Hold::find_by_id(hold_id)
        .filter(HoldColumn::UserId.eq(customer_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("hold"))
}

pub async fn get(
    db: &DatabaseConnection,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<HoldDetails, Error> {
    let hold = own(db, customer_id, hold_id).await?;
    details(db, hold).await
}

/// The most holds [`list_own`] returns: the newest.
pub const LIST_LIMIT: u64 = 100;

/// A customer's own holds, newest first (up to [`LIST_LIMIT`]), all or only
/// those in `status`: how a waitlist offer is found without its email.
pub async fn list_own(
    db: &DatabaseConnection,
    customer_id: Uuid,
    status: Option<HoldStatus>,
) -> Result<Vec<HoldDetails>, Error> {
    let mut query = Hold::find()
        .filter(HoldColumn::UserId.eq(customer_id))
        .order_by_desc(HoldColumn::CreatedAt)
        .order_by_desc(HoldColumn::Id)
        .limit(LIST_LIMIT);
    if let Some(status) = status {
        query = query.filter(HoldColumn::Status.eq(status));
    }
    let holds = query.all(db).await?;
    queries::holds_with_seats(db, holds).await
}

async fn details(db: &DatabaseConnection, hold: HoldModel) -> Result<HoldDetails, Error> {
    queries::holds_with_seats(db, vec![hold])
        .await?
        .pop()
        .ok_or(Error::NotFound("hold"))
}

/// A hold's state changes at most a few times; a few rereads always settle.
const SETTLE_ATTEMPTS: usize = 4;

/// Confirms an active free hold into a booking; a paid one is booked by its
/// payment, and then this returns that booking. A repeat returns the same
/// booking; a hold past its time is expired here (if the worker has not yet)
/// and refused.
pub async fn confirm(
    services: &Services,
    customer_id: Uuid,
    hold_id: Uuid,
    remember: Option<Remember<BookingDetails>>,
) -> Result<BookingDetails, Error> {
    let mut remember = remember;
    for _ in 0..SETTLE_ATTEMPTS {
        let hold = own(&services.db, customer_id, hold_id).await?;
        match hold.status {
            HoldStatus::Confirmed => {
                let booking_id = hold.booking_id.ok_or(Error::NotFound("booking"))?;
                let details = queries::details(&services.db, booking_id).await?;
                // A new key for an old confirmation: its repeats answer the same.
                if let Some(remember) = &remember {
                    let (status, response) = remember.response(&details);
                    idempotency::save_response(&services.db, &remember.claim, status, &response)
                        .await?;
                }
                return Ok(details);
            }
            HoldStatus::Released => return Err(released()),
            HoldStatus::Expired => return Err(Error::HoldExpired),
            HoldStatus::Active if hold.expires_at <= now() => {
                let ending = inventory::Ending::Expired;
                if let Some(ended) =
                    inventory::end_hold(&services.db, hold.id, ending, now()).await?
                {
                    services.publish(services.after_commit().ended(&ended));
                }
            }
            // A paid hold is booked by its payment (`payments`).
            HoldStatus::Active if hold.total > 0 => return Err(Error::PaymentRequired),
            HoldStatus::Active => {
                if let Some((details, notification_id)) =
                    confirm_active(services, &hold, &mut remember).await?
                {
                    services.observer.booked();
                    let seats = details.seats.iter().map(|seat| seat.id).collect();
                    let after = services.after_commit().notify(vec![notification_id]);
                    services.publish(after.changed(hold.event_id, seats));
                    return Ok(details);
                }
            }
        }
    }
    Err(Error::Conflict(
        "the hold changed while confirming it; try again".into(),
    ))
}

fn released() -> Error {
    Error::Conflict("this hold was released; hold tickets again".into())
}

/// `None`: the hold stopped being active (expired or released) before this
/// could confirm it, and nothing was written.
async fn confirm_active(
    services: &Services,
    hold: &HoldModel,
    remember: &mut Option<Remember<BookingDetails>>,
) -> Result<Option<(BookingDetails, Uuid)>, Error> {
    let now = now();
    let txn = begin_write(&services.db).await?;
    let confirmed = Hold::update_many()
        .col_expr(HoldColumn::Status, Expr::value(HoldStatus::Confirmed))
        .col_expr(HoldColumn::EndedAt, Expr::value(Some(now)))
        .filter(HoldColumn::Id.eq(hold.id))
        .filter(HoldColumn::Status.eq(HoldStatus::Active))
        .filter(HoldColumn::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if confirmed.rows_affected == 0 {
        return Ok(None);
    }
    inventory::book_held_seats(&txn, hold.id).await?;
    let HoldDetails { items, seats, .. } = queries::holds_with_seats(&txn, vec![hold.clone()])
        .await?
        .pop()
        .ok_or(Error::NotFound("hold"))?;
    let lines = sale::lines(&items);
    move_tickets(
        &txn,
        hold.event_id,
        &per_type(&lines),
        Count::Held,
        Count::Booked,
    )
    .await?;
    let booking = BookingModel {
        promo_code_id: hold.promo_code_id,
        promo_uses: hold.promo_uses,
        ..inventory::new_booking(hold.event_id, hold.user_id, &lines, &hold.currency, now)
    };
    let recorded =
        checkout::record_booking(&txn, services, hold, booking, items, seats, remember.take())
            .await?;
    txn.commit().await?;
    Ok(Some(recorded))
}

/// Releases an active hold; its tickets go back on sale at once. Releasing a
/// released hold returns it unchanged.
pub async fn release(
    services: &Services,
    customer_id: Uuid,
    hold_id: Uuid,
) -> Result<HoldDetails, Error> {
    for _ in 0..SETTLE_ATTEMPTS {
        let hold = own(&services.db, customer_id, hold_id).await?;
        match hold.status {
            HoldStatus::Released => return details(&services.db, hold).await,
            HoldStatus::Confirmed => {
                return Err(Error::Conflict(
                    "this hold is confirmed; cancel its booking instead".into(),
                ));
            }
            HoldStatus::Expired => return Err(Error::HoldExpired),
            HoldStatus::Active => {
                let ending = if hold.expires_at <= now() {
                    inventory::Ending::Expired
                } else {
                    inventory::Ending::Released
                };
                if let Some(ended) =
                    inventory::end_hold(&services.db, hold.id, ending, now()).await?
                {
                    services.publish(services.after_commit().ended(&ended));
                    if ending == inventory::Ending::Released {
                        return details(&services.db, ended.hold).await;
                    }
                }
            }
        }
    }
    Err(Error::Conflict(
        "the hold changed while releasing it; try again".into(),
    ))
}
