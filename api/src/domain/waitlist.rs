//! The waitlist (SPEC §11): customers line up for a sold-out event; tickets
//! that come back are offered to them in order (`inventory::waitlist`).

use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use super::{Error, Services, admission, now};

/// An entry and its place in the line (1 is next).
#[derive(Debug, Clone)]
pub struct Place {
    pub entry: WaitlistEntryModel,
    /// While waiting; `None` once offered or left.
    pub position: Option<u64>,
}

/// Joins the event's waitlist for `quantity` tickets, of one type or any;
/// only what is sold out has a line (otherwise, hold the tickets). Joining
/// again returns the place already held (`false`: nothing new was made).
pub async fn join(
    services: &Services,
    customer_id: Uuid,
    event_id: Uuid,
    quantity: i64,
    ticket_type_id: Option<Uuid>,
) -> Result<(Place, bool), Error> {
    let quantity = super::sale::quantity(quantity)?;
    if let Some(place) = current(&services.db, customer_id, event_id).await? {
        return Ok((place, false));
    }
    let event = Event::find_by_id(event_id)
        .one(&services.db)
        .await?
        .ok_or(Error::NotFound("event"))?;
    // The line is a way to tickets, so it takes the same admission as a hold:
    // behind a waiting room, only with a pass.
    admission::check_admission(&services.db, &event, customer_id).await?;
    if event.status == EventStatus::Cancelled {
        return Err(Error::EventCancelled);
    }
    let available = match ticket_type_id {
        None => event.available_tickets,
        Some(ticket_type_id) => {
            inventory::event_types(&services.db, event_id)
                .await?
                .into_iter()
                .find(|t| t.id == ticket_type_id && !t.hidden)
                .ok_or_else(|| {
                    super::ValidationErrors::single(
                        "ticket_type_id",
                        "no such ticket type for this event",
                    )
                })?
                .available
        }
    };
    if available >= quantity {
        return Err(Error::Conflict(format!(
            "{available} tickets are on sale: hold them instead of waiting"
        )));
    }
    let inserted = WaitlistEntryActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event_id),
        user_id: Set(customer_id),
        quantity: Set(quantity),
        status: Set(WaitlistStatus::Waiting),
        ticket_type_id: Set(ticket_type_id),
        hold_id: Set(None),
        created_at: Set(now()),
        ended_at: Set(None),
    }
    .insert(&services.db)
    .await;
    match inserted {
        Ok(entry) => Ok((place(&services.db, entry).await?, true)),
        // A concurrent join of the same customer won.
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            let place = current(&services.db, customer_id, event_id).await?;
            place.map(|p| (p, false)).ok_or(Error::Conflict(
                "your place in the line just changed; try again".into(),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// Leaves the line; an offer already made stays a hold (release it instead).
pub async fn leave(services: &Services, customer_id: Uuid, event_id: Uuid) -> Result<Place, Error> {
    let left = WaitlistEntry::update_many()
        .col_expr(
            WaitlistEntryColumn::Status,
            Expr::value(WaitlistStatus::Left),
        )
        .col_expr(WaitlistEntryColumn::EndedAt, Expr::value(Some(now())))
        .filter(WaitlistEntryColumn::EventId.eq(event_id))
        .filter(WaitlistEntryColumn::UserId.eq(customer_id))
        .filter(WaitlistEntryColumn::Status.eq(WaitlistStatus::Waiting))
        .exec_with_returning(&services.db)
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound("place in this event's waitlist"))?;
    Ok(Place {
        entry: left,
        position: None,
    })
}

/// The customer's place in the event's line: still waiting, or offered with
/// the offer open or taken. An offer that expired or was released ends the
/// place, and joining again starts a new one at the back.
async fn current(
    db: &DatabaseConnection,
    customer_id: Uuid,
    event_id: Uuid,
) -> Result<Option<Place>, Error> {
    let entries = WaitlistEntry::find()
        .filter(WaitlistEntryColumn::EventId.eq(event_id))
        .filter(WaitlistEntryColumn::UserId.eq(customer_id))
        .filter(
            WaitlistEntryColumn::Status.is_in([WaitlistStatus::Waiting, WaitlistStatus::Offered]),
        )
        .order_by_desc(WaitlistEntryColumn::CreatedAt)
        .all(db)
        .await?;
    let offers: Vec<Uuid> = entries.iter().filter_map(|entry| entry.hold_id).collect();
    let open_offers: Vec<Uuid> = if offers.is_empty() {
        Vec::new()
    } else {
        Hold::find()
            .filter(HoldColumn::Id.is_in(offers))
            .filter(HoldColumn::Status.is_in([HoldStatus::Active, HoldStatus::Confirmed]))
            .all(db)
            .await?
            .into_iter()
            .map(|hold| hold.id)
            .collect()
    };
    let current = entries.into_iter().find(|entry| match entry.status {
        WaitlistStatus::Waiting => true,
        _ => entry
            .hold_id
            .is_some_and(|hold| open_offers.contains(&hold)),
    });
    match current {
        Some(entry) => Ok(Some(place(db, entry).await?)),
        None => Ok(None),
    }
}

async fn place(db: &DatabaseConnection, entry: WaitlistEntryModel) -> Result<Place, Error> {
    if entry.status != WaitlistStatus::Waiting {
        return Ok(Place {
            entry,
            position: None,
        });
    }
    let ahead = WaitlistEntry::find()
        .filter(WaitlistEntryColumn::EventId.eq(entry.event_id))
        .filter(WaitlistEntryColumn::Status.eq(WaitlistStatus::Waiting))
        .filter(
            Condition::any()
                .add(WaitlistEntryColumn::CreatedAt.lt(entry.created_at))
                .add(
                    Condition::all()
                        .add(WaitlistEntryColumn::CreatedAt.eq(entry.created_at))
                        .add(WaitlistEntryColumn::Id.lt(entry.id)),
                ),
        )
        .count(db)
        .await?;
    Ok(Place {
        entry,
        position: Some(ahead + 1),
    })
}
