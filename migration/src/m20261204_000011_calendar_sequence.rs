//! The version of an event as calendars hold it (the iCalendar `SEQUENCE` of
//! SPEC §15): raised by each change its customers are emailed about and by its
//! cancellation, so every calendar entry sent later replaces the earlier one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE events ADD COLUMN calendar_sequence integer NOT NULL DEFAULT 0",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE events DROP COLUMN calendar_sequence")
            .await?;
        Ok(())
    }
}
