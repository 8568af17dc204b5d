//! The items of bookings and holds without a foreign-key check on their
//! ticket type (PostgreSQL).
//!
//! Each item row's check locked its type's row `FOR KEY SHARE`: on a hot
//! event, every item of every batch side by side on the same few type rows
//! (multixacts), measured at 3–11 % of the bookings a second
//! (`bench/results/2026-12-05-unnest-inserts.md`). A type is removed only if
//! no committed hold or booking has items of it, and every writer of items
//! moves the type's counts in the same transaction, refusing to commit if
//! the type row is gone (`inventory::move_tickets`, `take_tickets`): a batch
//! that wrote items of a type removed meanwhile rolls back instead of
//! leaving them behind. SQLite keeps the checks (see migration 15).

use sea_orm_migration::prelude::*;

use crate::unchecked_references::{Reference, drop_checks, restore_checks};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNCHECKED: [Reference; 2] = [
    Reference {
        table: "booking_items",
        column: "ticket_type_id",
        parent: "ticket_types",
    },
    Reference {
        table: "hold_items",
        column: "ticket_type_id",
        parent: "ticket_types",
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
