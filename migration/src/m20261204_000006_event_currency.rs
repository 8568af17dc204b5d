//! The currency an event's prices are in (SPEC §13): an ISO 4217 code,
//! `EUR` for every event made before prices.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE events ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'EUR' \
                 CHECK (length(currency) = 3)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE events DROP COLUMN currency")
            .await?;
        Ok(())
    }
}
