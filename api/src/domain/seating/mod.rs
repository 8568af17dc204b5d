//! Reserved seating (SPEC §9): the seat map given with an event, the seats'
//! status, and which seats a hold takes.
//!
//! **Best available**, for a hold or booking by quantity: the best-ranked run
//! of that many adjacent free seats (consecutive numbers in one row), if any row
//! has one; otherwise the best-ranked free seats wherever they are. Rank is the
//! order of the seat map as given: its first section's first row's first seat is
//! the best seat in the house.

use std::collections::BTreeSet;

use entity::prelude::*;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, Statement, sea_query::Expr,
};
use uuid::Uuid;

mod map;

use map::SECTION_MAX_CHARS;
pub use map::{MAX_SEATS, SeatMap, SeatMapInput, create_seats};

use super::{Error, ValidationErrors, validation};

/// The most seats one page of [`list`] holds, and its default.
pub const PAGE_MAX: u64 = 1_000;

/// A page of the seat map, and where the next starts.
pub struct SeatPage {
    pub items: Vec<SeatModel>,
    pub next_cursor: Option<String>,
}

/// The seat map in rank order, a page at a time (`limit` 1 to [`PAGE_MAX`]);
/// `cursor` is the previous page's `next_cursor`.
pub async fn list(
    db: &DatabaseConnection,
    event_id: Uuid,
    section: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<SeatPage, Error> {
    let mut errors = ValidationErrors::default();
    let section = section.and_then(|name| section_name(&mut errors, name));
    let limit = match limit {
        None => Some(PAGE_MAX),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) => validation::count(&mut errors, "limit", n, PAGE_MAX as i64).map(|n| n as u64),
            Err(_) => {
                errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {PAGE_MAX}"),
                );
                None
            }
        },
    };
    let after = match cursor {
        None => Some(-1),
        Some(raw) => raw.parse::<i32>().ok().filter(|n| *n >= 0).or_else(|| {
            errors.add("cursor", "is not a cursor this listing gave out");
            None
        }),
    };
    let (Some(limit), Some(after)) = (limit, after) else {
        return Err(Error::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    super::queries::event(db, event_id).await?;
    let mut query = Seat::find()
        .filter(SeatColumn::EventId.eq(event_id))
        .filter(SeatColumn::Position.gt(after))
        .order_by_asc(SeatColumn::Position)
        .limit(limit + 1);
    if let Some(section) = section {
        query = query.filter(SeatColumn::Section.eq(section));
    }
    let mut items = query.all(db).await?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|seat| seat.position.to_string())
    } else {
        None
    };
    Ok(SeatPage { items, next_cursor })
}

/// Checked as a section name is when it is made (PostgreSQL cannot even
/// compare a text with U+0000).
fn section_name(errors: &mut ValidationErrors, raw: &str) -> Option<String> {
    validation::text(errors, "section", raw, SECTION_MAX_CHARS)
}

/// A run of adjacent free seats in one row: seats `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct FreeRun {
    pub section: String,
    pub row: String,
    pub from: i32,
    pub to: i32,
}

/// What a seat picker needs of a large map, compactly: the runs of adjacent
/// free seats, in rank order. Computed by the database (gaps and islands), so
/// a 100,000-seat map is never held in memory seat by seat.
pub async fn free_runs(
    db: &DatabaseConnection,
    event_id: Uuid,
    section: Option<&str>,
) -> Result<Vec<FreeRun>, Error> {
    let mut errors = ValidationErrors::default();
    let section = match section {
        Some(name) => Some(section_name(&mut errors, name).ok_or(Error::Validation(errors))?),
        None => None,
    };
    super::queries::event(db, event_id).await?;
    let backend = db.get_database_backend();
    let (param, section_filter) = match backend {
        DbBackend::Postgres => ("$1", "AND ($2::text IS NULL OR section = $2)"),
        _ => ("?1", "AND (?2 IS NULL OR section = ?2)"),
    };
    let sql = format!(
        "SELECT section, \"row\", MIN(number) AS \"from\", MAX(number) AS \"to\" FROM ( \
           SELECT section, \"row\", number, position, \
             number - ROW_NUMBER() OVER (PARTITION BY section, \"row\" ORDER BY number) AS island \
           FROM seats WHERE event_id = {param} AND status = 'available' {section_filter} \
         ) free GROUP BY section, \"row\", island ORDER BY MIN(position)"
    );
    Ok(FreeRun::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [event_id.into(), section.into()],
    ))
    .all(db)
    .await?)
}

/// The priced lines of particular seats: each seat is of its section's type,
/// at that type's price now. `Err`: seats that are not the event's.
pub async fn price(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    seat_ids: &[Uuid],
    types: &[TicketTypeModel],
) -> Result<Result<Vec<inventory::Line>, Error>, DbErr> {
    let seats = Seat::find()
        .filter(SeatColumn::EventId.eq(event_id))
        .filter(SeatColumn::Id.is_in(seat_ids.iter().copied()))
        .all(txn)
        .await?;
    let missing: Vec<Uuid> = seat_ids
        .iter()
        .filter(|id| !seats.iter().any(|seat| seat.id == **id))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Ok(Err(Error::SeatsUnavailable(missing)));
    }
    let mut lines: Vec<inventory::Line> = Vec::new();
    for seat in &seats {
        let Some(ticket_type) = types.iter().find(|t| Some(t.id) == seat.ticket_type_id) else {
            return Ok(Err(Error::SeatsUnavailable(vec![seat.id])));
        };
        match lines
            .iter_mut()
            .find(|line| line.ticket_type_id == ticket_type.id)
        {
            Some(line) => line.quantity += 1,
            None => lines.push(inventory::Line {
                ticket_type_id: ticket_type.id,
                quantity: 1,
                unit_price: ticket_type.price,
                discount: 0,
            }),
        }
    }
    Ok(Ok(lines))
}

/// Free seats read per round trip by [`best_available`].
const SCAN_PAGE: u64 = 500;

/// Chooses `quantity` free seats by the best-available rule (see the module
/// documentation). Called with the event row locked, so the choice holds until
/// [`take`]. Fewer than `quantity` back means there are not that many free.
///
/// Reads the free seats in rank order, a page at a time, and stops at the
/// first run of `quantity` adjacent ones: rank order lists each row's seats by
/// number, so the first run to complete is the best-ranked. Usually that is
/// the first page; only a house with no such run left is read to the end.
pub async fn best_available(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    ticket_type_id: Uuid,
    quantity: i32,
) -> Result<Vec<Uuid>, DbErr> {
    let wanted = usize::try_from(quantity).unwrap_or_default();
    let mut best_free: Vec<Uuid> = Vec::with_capacity(wanted);
    let mut run: Vec<Uuid> = Vec::with_capacity(wanted);
    let mut previous: Option<SeatModel> = None;
    let mut after = 0;
    loop {
        let page = Seat::find()
            .filter(SeatColumn::EventId.eq(event_id))
            // A literal, not a bound value: PostgreSQL's generic plan for a
            // prepared statement cannot use the partial index
            // `seats_available_position_idx` for `status = $2`, and reads
            // every seat of the event instead (30 ms at 100,000 seats).
            .filter(Expr::cust("seats.status = 'available'"))
            .filter(SeatColumn::TicketTypeId.eq(ticket_type_id))
            .filter(SeatColumn::Position.gt(after))
            .order_by_asc(SeatColumn::Position)
            .limit(SCAN_PAGE)
            .all(txn)
            .await?;
        let Some(last) = page.last() else {
            return Ok(best_free);
        };
        after = last.position;
        let full_page = page.len() as u64 == SCAN_PAGE;
        for seat in page {
            if best_free.len() < wanted {
                best_free.push(seat.id);
            }
            let adjacent = previous.as_ref().is_some_and(|p| {
                p.section == seat.section && p.row == seat.row && p.number + 1 == seat.number
            });
            if !adjacent {
                run.clear();
            }
            run.push(seat.id);
            if run.len() == wanted {
                return Ok(run);
            }
            previous = Some(seat);
        }
        if !full_page {
            return Ok(best_free);
        }
    }
}

/// Gives the seats to the hold, all or none: each must belong to the event and
/// be available. On refusal, the ones that are not (for the client to choose
/// again); the caller rolls back.
pub async fn take(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    hold_id: Uuid,
    seat_ids: &[Uuid],
    status: SeatStatus,
) -> Result<Result<Vec<SeatModel>, Vec<Uuid>>, DbErr> {
    // By primary key alone: with `event_id` in the condition PostgreSQL may
    // pick the event's free-seat index and read the whole house (25 ms at
    // 100,000 seats). A seat of another event is refused below, and the
    // caller rolls the transaction back.
    let taken: Vec<SeatModel> = Seat::update_many()
        .col_expr(SeatColumn::Status, Expr::value(status))
        .col_expr(SeatColumn::HoldId, Expr::value(Some(hold_id)))
        .filter(SeatColumn::Id.is_in(seat_ids.iter().copied()))
        .filter(SeatColumn::Status.eq(SeatStatus::Available))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .filter(|seat| seat.event_id == event_id)
        .collect();
    if taken.len() == seat_ids.len() {
        HoldSeat::insert_many(taken.iter().map(|seat| HoldSeatActiveModel {
            hold_id: Set(hold_id),
            seat_id: Set(seat.id),
        }))
        .exec_without_returning(txn)
        .await?;
        let mut taken = taken;
        taken.sort_by_key(|seat| seat.position);
        return Ok(Ok(taken));
    }
    let got: BTreeSet<Uuid> = taken.iter().map(|seat| seat.id).collect();
    Ok(Err(seat_ids
        .iter()
        .copied()
        .filter(|id| !got.contains(id))
        .collect()))
}

/// Which of these seats cannot be had: taken, or not this event's.
pub async fn unavailable(
    db: &DatabaseConnection,
    event_id: Uuid,
    seat_ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    let free: BTreeSet<Uuid> = Seat::find()
        .filter(SeatColumn::Id.is_in(seat_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .filter(|seat| seat.event_id == event_id && seat.status == SeatStatus::Available)
        .map(|seat| seat.id)
        .collect();
    Ok(seat_ids
        .iter()
        .copied()
        .filter(|id| !free.contains(id))
        .collect())
}
