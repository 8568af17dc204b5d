//! Tickets and the door (SPEC §15): one ticket per unit of a confirmed
//! booking, written in the booking's transaction; the deployment's ticket
//! signing key, made once; and door devices, whose tokens check tickets in
//! at one event. A ticket's `checked_in_at` is set by a conditional update,
//! so however many doors scan it at once the database admits it once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(pk_uuid(Tickets::Id))
                    .col(uuid(Tickets::BookingId))
                    .col(uuid(Tickets::EventId))
                    .col(uuid(Tickets::TicketTypeId))
                    .col(uuid_null(Tickets::SeatId))
                    .col(
                        string_len(Tickets::Status, 16)
                            .check(Expr::col(Tickets::Status).is_in(["valid", "cancelled"])),
                    )
                    .col(timestamp_with_time_zone_null(Tickets::CheckedInAt))
                    .col(uuid_null(Tickets::CheckedInBy))
                    .col(timestamp_with_time_zone(Tickets::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("tickets_booking_id_fkey")
                            .from(Tickets::Table, Tickets::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(
                        integer(SigningKeys::Id)
                            .primary_key()
                            .check(Expr::col(SigningKeys::Id).eq(1)),
                    )
                    .col(text(SigningKeys::Seed))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DoorDevices::Table)
                    .col(pk_uuid(DoorDevices::Id))
                    .col(uuid(DoorDevices::EventId))
                    .col(text(DoorDevices::Name))
                    .col(text(DoorDevices::TokenHash))
                    .col(timestamp_with_time_zone(DoorDevices::CreatedAt))
                    .col(timestamp_with_time_zone_null(DoorDevices::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("door_devices_event_id_fkey")
                            .from(DoorDevices::Table, DoorDevices::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in [
            "CREATE INDEX tickets_booking_id_idx ON tickets (booking_id)",
            // A scanner's cache reads an event's tickets a page at a time.
            "CREATE INDEX tickets_event_id_id_idx ON tickets (event_id, id)",
            "CREATE UNIQUE INDEX door_devices_token_hash_key ON door_devices (token_hash)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "DROP TABLE door_devices",
            "DROP TABLE signing_keys",
            "DROP TABLE tickets",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    BookingId,
    EventId,
    TicketTypeId,
    SeatId,
    Status,
    CheckedInAt,
    CheckedInBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Id,
    Seed,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DoorDevices {
    Table,
    Id,
    EventId,
    Name,
    TokenHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}
