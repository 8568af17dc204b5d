//! The on-sale and its waiting room (SPEC §10).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in [
            "on_sale_at timestamp with time zone NULL",
            "waiting_room_enabled boolean NOT NULL DEFAULT false",
            "admit_per_minute integer NOT NULL DEFAULT 60 CHECK (admit_per_minute BETWEEN 1 AND 600000)",
            "pass_minutes integer NOT NULL DEFAULT 10 CHECK (pass_minutes BETWEEN 1 AND 120)",
        ] {
            db.execute_unprepared(&format!("ALTER TABLE events ADD COLUMN {column}"))
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(QueueEntries::Table)
                    .col(uuid(QueueEntries::EventId))
                    .col(uuid(QueueEntries::UserId))
                    .col(big_integer(QueueEntries::Rank))
                    .col(timestamp_with_time_zone(QueueEntries::JoinedAt))
                    .col(timestamp_with_time_zone_null(QueueEntries::AdmitAt))
                    .primary_key(
                        Index::create()
                            .name("queue_entries_pkey")
                            .col(QueueEntries::EventId)
                            .col(QueueEntries::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("queue_entries_event_id_fkey")
                            .from(QueueEntries::Table, QueueEntries::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("queue_entries_user_id_fkey")
                            .from(QueueEntries::Table, QueueEntries::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("queue_entries_event_id_rank_key")
                    .table(QueueEntries::Table)
                    .col(QueueEntries::EventId)
                    .col(QueueEntries::Rank)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QueueEntries::Table).to_owned())
            .await?;
        let db = manager.get_connection();
        for column in [
            "pass_minutes",
            "admit_per_minute",
            "waiting_room_enabled",
            "on_sale_at",
        ] {
            db.execute_unprepared(&format!("ALTER TABLE events DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum QueueEntries {
    Table,
    EventId,
    UserId,
    Rank,
    JoinedAt,
    AdmitAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
