//! The booking path's rows without foreign-key checks on the event and the
//! customer (PostgreSQL).
//!
//! Every booking and every notification names an event and a user. Each such
//! reference was checked by a trigger per row, a lookup and a `FOR KEY SHARE`
//! lock on the user's and the event's row: four per booking, about a third of
//! a batch's time in the database (measured with pgbench on the batch's own
//! SQL: 16.6 ms for 256 bookings with them, 10.6 ms without). The references
//! cannot dangle: events and users are never deleted, and every writer of
//! these rows has just read both (the event locked, the customer signed in).
//! The references to rows that can go (a ticket type, a promo code) and to
//! the booking itself keep their checks. SQLite keeps all of them (dropping a
//! constraint there means rebuilding the table, and it is not where the
//! speed is measured).

use sea_orm_migration::prelude::*;

use crate::unchecked_references::{Reference, drop_checks, restore_checks};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNCHECKED: [Reference; 4] = [
    Reference {
        table: "bookings",
        column: "event_id",
        parent: "events",
    },
    Reference {
        table: "bookings",
        column: "user_id",
        parent: "users",
    },
    Reference {
        table: "notifications",
        column: "event_id",
        parent: "events",
    },
    Reference {
        table: "notifications",
        column: "user_id",
        parent: "users",
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_checks(manager, &UNCHECKED).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        restore_checks(manager, &UNCHECKED).await
    }
}
