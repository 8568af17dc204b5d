//! The waitlist (SPEC §11): customers waiting for a sold-out event, offered
//! returned tickets in order as holds that last the event's `offer_minutes`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE events ADD COLUMN offer_minutes integer NOT NULL DEFAULT 30 \
             CHECK (offer_minutes BETWEEN 1 AND 1440)",
        )
        .await?;
        // An offer's email names its hold.
        db.execute_unprepared("ALTER TABLE notifications ADD COLUMN hold_id uuid NULL")
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WaitlistEntries::Table)
                    .col(pk_uuid(WaitlistEntries::Id))
                    .col(uuid(WaitlistEntries::EventId))
                    .col(uuid(WaitlistEntries::UserId))
                    .col(
                        integer(WaitlistEntries::Quantity)
                            .check(Expr::col(WaitlistEntries::Quantity).gt(0)),
                    )
                    .col(string_len(WaitlistEntries::Status, 16).check(
                        Expr::col(WaitlistEntries::Status).is_in(["waiting", "offered", "left"]),
                    ))
                    .col(uuid_null(WaitlistEntries::HoldId).unique_key())
                    .col(timestamp_with_time_zone(WaitlistEntries::CreatedAt))
                    .col(timestamp_with_time_zone_null(WaitlistEntries::EndedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("waitlist_entries_event_id_fkey")
                            .from(WaitlistEntries::Table, WaitlistEntries::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("waitlist_entries_user_id_fkey")
                            .from(WaitlistEntries::Table, WaitlistEntries::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("waitlist_entries_hold_id_fkey")
                            .from(WaitlistEntries::Table, WaitlistEntries::HoldId)
                            .to(Holds::Table, Holds::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One place in the line per customer per event; the line in order.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX waitlist_one_place_per_customer ON waitlist_entries \
             (event_id, user_id) WHERE status = 'waiting'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX waitlist_waiting_in_order_idx ON waitlist_entries \
             (event_id, created_at, id) WHERE status = 'waiting'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WaitlistEntries::Table).to_owned())
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE notifications DROP COLUMN hold_id")
            .await?;
        db.execute_unprepared("ALTER TABLE events DROP COLUMN offer_minutes")
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WaitlistEntries {
    Table,
    Id,
    EventId,
    UserId,
    Quantity,
    Status,
    HoldId,
    CreatedAt,
    EndedAt,
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

#[derive(DeriveIden)]
enum Holds {
    Table,
    Id,
}
