//! The seat map an organizer gives with an event: checked, then written as
//! the event's seats in rank order.

use std::collections::BTreeSet;

use entity::prelude::*;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, Set, Statement,
};
use uuid::Uuid;

use crate::domain::{ValidationErrors, validation};

pub const MAX_SEATS: usize = 100_000;
pub(super) const SECTION_MAX_CHARS: usize = 100;
const ROW_MAX_CHARS: usize = 20;
const MAX_SEATS_PER_ROW: i64 = 1_000;
/// Seats per insert statement: 10 values each, under SQLite's 32,766 bind limit.
const INSERT_CHUNK: usize = 3_000;

/// A checked seat map: sections in rank order, each with rows of numbered seats.
#[derive(Debug, Clone)]
pub struct SeatMap {
    sections: Vec<(String, Vec<(String, i32)>)>,
    /// The ticket type each section sells, by name, if it names one.
    section_types: Vec<Option<String>>,
}

/// A seat map as a client describes it, before checking.
pub struct SeatMapInput {
    pub sections: Vec<(String, Vec<(String, i64)>)>,
    /// Per section, the name of the ticket type it sells.
    pub section_types: Vec<Option<String>>,
}

impl SeatMap {
    /// Checks names (single-line text, unique: sections in the event, rows in
    /// their section) and counts (1 to 1,000 seats a row, 100,000 in all).
    pub fn parse(errors: &mut ValidationErrors, input: SeatMapInput) -> Option<Self> {
        let before = errors.clone();
        if input.sections.is_empty() {
            errors.add("seating.sections", "must list at least one section");
        }
        let mut total: i64 = 0;
        let mut section_names = BTreeSet::new();
        let mut sections = Vec::with_capacity(input.sections.len());
        for (i, (name, rows)) in input.sections.into_iter().enumerate() {
            let field = format!("seating.sections[{i}]");
            let name = validation::text(errors, &format!("{field}.name"), &name, SECTION_MAX_CHARS);
            if let Some(name) = &name
                && !section_names.insert(name.clone())
            {
                errors.add(&format!("{field}.name"), "another section has this name");
            }
            if rows.is_empty() {
                errors.add(&format!("{field}.rows"), "must list at least one row");
            }
            let mut row_labels = BTreeSet::new();
            let mut checked_rows = Vec::with_capacity(rows.len());
            for (j, (label, seats)) in rows.into_iter().enumerate() {
                let field = format!("{field}.rows[{j}]");
                let label =
                    validation::text(errors, &format!("{field}.label"), &label, ROW_MAX_CHARS);
                if let Some(label) = &label
                    && !row_labels.insert(label.clone())
                {
                    errors.add(
                        &format!("{field}.label"),
                        "another row in this section has this label",
                    );
                }
                if !(1..=MAX_SEATS_PER_ROW).contains(&seats) {
                    errors.add(
                        &format!("{field}.seats"),
                        format!("must be between 1 and {MAX_SEATS_PER_ROW}"),
                    );
                }
                total = total.saturating_add(Ord::max(seats, 0));
                if let Some(label) = label {
                    checked_rows.push((label, Ord::clamp(seats, 0, MAX_SEATS_PER_ROW) as i32));
                }
            }
            if let Some(name) = name {
                sections.push((name, checked_rows));
            }
        }
        if total > MAX_SEATS as i64 {
            errors.add("seating", format!("has {total} seats; at most {MAX_SEATS}"));
        }
        let section_types = input.section_types;
        (*errors == before).then_some(Self {
            sections,
            section_types,
        })
    }

    pub fn seat_count(&self) -> i32 {
        self.sections
            .iter()
            .flat_map(|(_, rows)| rows)
            .map(|(_, seats)| seats)
            .sum()
    }

    /// Per section, its seats and the name of the type it sells (if named).
    pub fn sections(&self) -> impl Iterator<Item = (i32, Option<&str>)> + '_ {
        self.sections
            .iter()
            .zip(&self.section_types)
            .map(|((_, rows), ticket_type)| {
                (
                    rows.iter().map(|(_, seats)| seats).sum(),
                    ticket_type.as_deref(),
                )
            })
    }
}

/// Creates an event's seats, in rank order; each section's seats are of the
/// type `section_types` gives for it.
pub async fn create_seats(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    map: &SeatMap,
    section_types: &[Uuid],
) -> Result<(), DbErr> {
    match txn.get_database_backend() {
        DbBackend::Postgres => {
            create_seats_in_one_statement(txn, event_id, map, section_types).await
        }
        _ => create_seats_in_chunks(txn, event_id, map, section_types).await,
    }
}

/// PostgreSQL: one statement for the whole map. The rows of the map and the
/// seats' ids go as two JSON parameters and the database expands the rows
/// into seats, which is several times faster than binding nine values per
/// seat.
async fn create_seats_in_one_statement(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    map: &SeatMap,
    section_types: &[Uuid],
) -> Result<(), DbErr> {
    const SQL: &str = r#"
        WITH map AS (
            SELECT * FROM json_to_recordset($2::json)
                       AS map(section text, "row" text, seats int, first int, ticket_type uuid)
        ), ids AS (
            SELECT value::uuid AS id, ordinality::int AS position
              FROM json_array_elements_text($3::json) WITH ORDINALITY
        )
        INSERT INTO seats (id, event_id, section, "row", number, label, position, status,
                           ticket_type_id)
        SELECT ids.id, $1, map.section, map."row", n,
               map.section || ' ' || map."row" || '-' || n, map.first + n - 1, 'available',
               map.ticket_type
          FROM map
         CROSS JOIN LATERAL generate_series(1, map.seats) AS n
          JOIN ids ON ids.position = map.first + n - 1"#;
    let mut rows = Vec::new();
    let mut first = 1;
    for ((section, section_rows), ticket_type) in map.sections.iter().zip(section_types) {
        for (row, seats) in section_rows {
            rows.push(serde_json::json!({
                "section": section, "row": row, "seats": seats, "first": first,
                "ticket_type": ticket_type,
            }));
            first += seats;
        }
    }
    let ids: Vec<String> = (0..map.seat_count())
        .map(|_| Uuid::now_v7().to_string())
        .collect();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        SQL,
        [
            event_id.into(),
            serde_json::Value::from(rows).into(),
            serde_json::Value::from(ids).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// A few thousand rows a statement.
async fn create_seats_in_chunks(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    map: &SeatMap,
    section_types: &[Uuid],
) -> Result<(), DbErr> {
    let mut position = 0;
    let mut rows = Vec::with_capacity(INSERT_CHUNK);
    for ((section, section_rows), ticket_type_id) in map.sections.iter().zip(section_types) {
        for (row, seats) in section_rows {
            for number in 1..=*seats {
                position += 1;
                rows.push(SeatActiveModel {
                    id: Set(Uuid::now_v7()),
                    event_id: Set(event_id),
                    section: Set(section.clone()),
                    row: Set(row.clone()),
                    number: Set(number),
                    label: Set(format!("{section} {row}-{number}")),
                    position: Set(position),
                    status: Set(SeatStatus::Available),
                    hold_id: Set(None),
                    ticket_type_id: Set(Some(*ticket_type_id)),
                });
                if rows.len() == INSERT_CHUNK {
                    Seat::insert_many(std::mem::take(&mut rows))
                        .exec_without_returning(txn)
                        .await?;
                }
            }
        }
    }
    if !rows.is_empty() {
        Seat::insert_many(rows).exec_without_returning(txn).await?;
    }
    Ok(())
}
