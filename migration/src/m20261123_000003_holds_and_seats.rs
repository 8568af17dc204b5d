//! Holds (SPEC §8) and reserved seating (SPEC §9).
//!
//! Events gain `held_tickets` and `booked_tickets`, and the database keeps
//! `available + held + booked == total` at every commit: a CHECK on PostgreSQL,
//! triggers on SQLite (which cannot add a table constraint to an existing table).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in [
            "held_tickets integer NOT NULL DEFAULT 0 CHECK (held_tickets >= 0)",
            "booked_tickets integer NOT NULL DEFAULT 0 CHECK (booked_tickets >= 0)",
            "hold_minutes integer NOT NULL DEFAULT 10 CHECK (hold_minutes BETWEEN 1 AND 60)",
            "seated boolean NOT NULL DEFAULT false",
        ] {
            db.execute_unprepared(&format!("ALTER TABLE events ADD COLUMN {column}"))
                .await?;
        }
        // Before holds existed, everything not available was booked.
        db.execute_unprepared(
            "UPDATE events SET booked_tickets = total_tickets - available_tickets",
        )
        .await?;
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                for (name, when) in [("insert", "INSERT"), ("update", "UPDATE")] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER events_tickets_add_up_on_{name} BEFORE {when} ON events \
                         WHEN NEW.available_tickets + NEW.held_tickets + NEW.booked_tickets \
                              <> NEW.total_tickets \
                         BEGIN SELECT RAISE(ABORT, 'events_tickets_add_up'); END"
                    ))
                    .await?;
                }
            }
            _ => {
                db.execute_unprepared(
                    "ALTER TABLE events ADD CONSTRAINT events_tickets_add_up CHECK \
                     (available_tickets + held_tickets + booked_tickets = total_tickets)",
                )
                .await?;
            }
        }

        manager
            .create_table(
                Table::create()
                    .table(Holds::Table)
                    .col(pk_uuid(Holds::Id))
                    .col(uuid(Holds::EventId))
                    .col(uuid(Holds::UserId))
                    .col(integer(Holds::Quantity).check(Expr::col(Holds::Quantity).gt(0)))
                    .col(
                        string_len(Holds::Status, 16).check(Expr::col(Holds::Status).is_in([
                            "active",
                            "confirmed",
                            "released",
                            "expired",
                        ])),
                    )
                    .col(timestamp_with_time_zone(Holds::ExpiresAt))
                    .col(uuid_null(Holds::BookingId).unique_key())
                    .col(timestamp_with_time_zone(Holds::CreatedAt))
                    .col(timestamp_with_time_zone_null(Holds::EndedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("holds_event_id_fkey")
                            .from(Holds::Table, Holds::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("holds_user_id_fkey")
                            .from(Holds::Table, Holds::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("holds_booking_id_fkey")
                            .from(Holds::Table, Holds::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One active hold per customer per event, kept by the database; and the
        // expiry sweep's scan.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX holds_one_active_per_customer ON holds (event_id, user_id) \
             WHERE status = 'active'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX holds_active_expires_at_idx ON holds (expires_at) WHERE status = 'active'",
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("holds_user_id_idx")
                    .table(Holds::Table)
                    .col(Holds::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Seats::Table)
                    .col(pk_uuid(Seats::Id))
                    .col(uuid(Seats::EventId))
                    .col(string_len(Seats::Section, 100))
                    .col(string_len(Seats::Row, 20))
                    .col(integer(Seats::Number))
                    .col(string_len(Seats::Label, 130))
                    .col(integer(Seats::Position))
                    .col(
                        string_len(Seats::Status, 16).check(Expr::col(Seats::Status).is_in([
                            "available",
                            "held",
                            "booked",
                        ])),
                    )
                    .col(uuid_null(Seats::HoldId))
                    // A seat belongs to at most one hold (or the booking it became)
                    // at a time: the slot is a single column, and it is filled
                    // exactly when the seat is not available.
                    .check((
                        Alias::new("seats_taken_by_one_hold"),
                        Expr::col(Seats::Status)
                            .eq("available")
                            .eq(Expr::col(Seats::HoldId).is_null()),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("seats_event_id_fkey")
                            .from(Seats::Table, Seats::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("seats_hold_id_fkey")
                            .from(Seats::Table, Seats::HoldId)
                            .to(Holds::Table, Holds::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("seats_event_id_position_key")
                    .table(Seats::Table)
                    .col(Seats::EventId)
                    .col(Seats::Position)
                    .unique()
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "CREATE INDEX seats_hold_id_idx ON seats (hold_id) WHERE hold_id IS NOT NULL",
        )
        .await?;
        // Best available reads the free seats in rank order, from the best.
        db.execute_unprepared(
            "CREATE INDEX seats_available_position_idx ON seats (event_id, position) \
             WHERE status = 'available'",
        )
        .await?;

        // Which seats a hold took, kept after it ends: bookings and emails name them.
        manager
            .create_table(
                Table::create()
                    .table(HoldSeats::Table)
                    .col(uuid(HoldSeats::HoldId))
                    .col(uuid(HoldSeats::SeatId))
                    .primary_key(
                        Index::create()
                            .name("hold_seats_pkey")
                            .col(HoldSeats::HoldId)
                            .col(HoldSeats::SeatId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("hold_seats_hold_id_fkey")
                            .from(HoldSeats::Table, HoldSeats::HoldId)
                            .to(Holds::Table, Holds::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("hold_seats_seat_id_fkey")
                            .from(HoldSeats::Table, HoldSeats::SeatId)
                            .to(Seats::Table, Seats::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HoldSeats::Table.into_iden(),
            Seats::Table.into_iden(),
            Holds::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                db.execute_unprepared("DROP TRIGGER events_tickets_add_up_on_insert")
                    .await?;
                db.execute_unprepared("DROP TRIGGER events_tickets_add_up_on_update")
                    .await?;
            }
            _ => {
                db.execute_unprepared("ALTER TABLE events DROP CONSTRAINT events_tickets_add_up")
                    .await?;
            }
        }
        for column in ["seated", "hold_minutes", "booked_tickets", "held_tickets"] {
            db.execute_unprepared(&format!("ALTER TABLE events DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Holds {
    Table,
    Id,
    EventId,
    UserId,
    Quantity,
    Status,
    ExpiresAt,
    BookingId,
    CreatedAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum Seats {
    Table,
    Id,
    EventId,
    Section,
    Row,
    Number,
    Label,
    Position,
    Status,
    HoldId,
}

#[derive(DeriveIden)]
enum HoldSeats {
    Table,
    HoldId,
    SeatId,
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
enum Bookings {
    Table,
    Id,
}
