//! Returned tickets go to the waitlist before general sale (SPEC §11). Called
//! in the same transaction that returns tickets (a release, an expiry, a
//! cancellation, a capacity increase), with the event row locked, so a ticket
//! that comes back is offered before anyone else can take it, exactly once:
//! the offer is a hold, made and written together with its email's outbox row.

use chrono::Duration;
use entity::prelude::*;
use platform::db::now;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use crate::{Count, outbox};

/// Waiting entries read per offer round; more than any return can serve.
const LINE_PAGE: u64 = 500;

/// A hold made for the next in line, and its email's outbox row.
#[derive(Debug, Clone)]
pub struct Offer {
    pub hold: HoldModel,
    pub notification_id: Uuid,
}

/// Offers what is available now to waiting entries, in order: each entry
/// whose quantity fits (and whose customer has no active hold on the event)
/// gets a hold lasting the event's `offer_minutes`, of the type it waits for
/// or, waiting for any, of the first listed type with enough left, at that
/// type's price now. General admission only: a seated event's returned seats
/// go back on sale.
pub async fn offer_returned(
    txn: &DatabaseTransaction,
    event_id: Uuid,
) -> Result<Vec<Offer>, DbErr> {
    let Some(event) = Event::find_by_id(event_id).one(txn).await? else {
        return Ok(Vec::new());
    };
    let mut available = event.available_tickets;
    if available == 0 || event.seated || event.status != EventStatus::Scheduled {
        return Ok(Vec::new());
    }
    let line = WaitlistEntry::find()
        .filter(WaitlistEntryColumn::EventId.eq(event_id))
        // A literal, so a prepared statement's generic plan can use the
        // partial index `waitlist_waiting_in_order_idx`.
        .filter(Expr::cust("waitlist_entries.status = 'waiting'"))
        .filter(WaitlistEntryColumn::Quantity.lte(available))
        .order_by_asc(WaitlistEntryColumn::CreatedAt)
        .order_by_asc(WaitlistEntryColumn::Id)
        .limit(LINE_PAGE)
        .all(txn)
        .await?;
    let types = crate::event_types(txn, event_id).await?;
    let mut left: std::collections::HashMap<Uuid, i32> =
        types.iter().map(|t| (t.id, t.available)).collect();
    let mut offers = Vec::new();
    let now = now();
    for entry in line {
        if entry.quantity > available {
            continue;
        }
        let fits = |t: &&TicketTypeModel| left.get(&t.id).is_some_and(|n| *n >= entry.quantity);
        let offered_type = match entry.ticket_type_id {
            Some(id) => types.iter().find(|t| t.id == id).filter(fits),
            None => types.iter().filter(|t| !t.hidden).find(fits),
        };
        let Some(offered_type) = offered_type else {
            continue;
        };
        if crate::active_hold(txn, entry.user_id, event_id)
            .await?
            .is_some()
        {
            continue;
        }
        let lines = [crate::Line {
            ticket_type_id: offered_type.id,
            quantity: entry.quantity,
            unit_price: offered_type.price,
            discount: 0,
        }];
        let lasting = Duration::minutes(i64::from(event.offer_minutes));
        let hold = crate::new_hold(
            &event,
            entry.user_id,
            &lines,
            HoldStatus::Active,
            now,
            lasting,
        );
        HoldActiveModel::from(hold.clone())
            .reset_all()
            .insert(txn)
            .await?;
        crate::write_hold_lines(txn, &[(hold.id, &lines)]).await?;
        crate::move_tickets(
            txn,
            event_id,
            &crate::per_type(&lines),
            Count::Available,
            Count::Held,
        )
        .await?;
        if let Some(n) = left.get_mut(&offered_type.id) {
            *n -= entry.quantity;
        }
        WaitlistEntry::update_many()
            .col_expr(
                WaitlistEntryColumn::Status,
                Expr::value(WaitlistStatus::Offered),
            )
            .col_expr(WaitlistEntryColumn::HoldId, Expr::value(Some(hold.id)))
            .col_expr(WaitlistEntryColumn::EndedAt, Expr::value(Some(now)))
            .filter(WaitlistEntryColumn::Id.eq(entry.id))
            .exec(txn)
            .await?;
        let ids = outbox::write(
            txn,
            None,
            vec![outbox::Notice {
                kind: NotificationKind::WaitlistOffered,
                user_id: entry.user_id,
                event_id,
                booking_id: None,
                hold_id: Some(hold.id),
                changes: None,
                refund_id: None,
                webhook_endpoint_id: None,
            }],
        )
        .await?;
        available -= entry.quantity;
        offers.push(Offer {
            hold,
            notification_id: ids.first().copied().unwrap_or_default(),
        });
        if available == 0 {
            break;
        }
    }
    Ok(offers)
}
