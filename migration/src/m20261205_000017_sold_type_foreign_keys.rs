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

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNCHECKED: [&str; 2] = ["booking_items", "hold_items"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in UNCHECKED {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_ticket_type_id_fkey"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in UNCHECKED {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {table}_ticket_type_id_fkey \
                     FOREIGN KEY (ticket_type_id) REFERENCES ticket_types(id)"
                ))
                .await?;
        }
        Ok(())
    }
}
