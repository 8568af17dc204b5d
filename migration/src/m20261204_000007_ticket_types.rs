//! Ticket types (SPEC §13): the kinds of ticket an event sells, each with its
//! price and its own counts; the items of each hold and booking, with the
//! unit price fixed when they were taken. Every type keeps
//! `available + held + booked == quantity`, each ≥ 0, in CHECKs on both
//! databases (the table is new); the event's counts are the sums. Every
//! existing event gets one free type, "General admission", holding all of its
//! tickets as they stand, and every hold, booking and seat is of that type.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let at_least_zero = |column: TicketTypes| Expr::col(column).gte(0);
        manager
            .create_table(
                Table::create()
                    .table(TicketTypes::Table)
                    .col(pk_uuid(TicketTypes::Id))
                    .col(uuid(TicketTypes::EventId))
                    .col(integer(TicketTypes::Position).check(at_least_zero(TicketTypes::Position)))
                    .col(text(TicketTypes::Name))
                    .col(text_null(TicketTypes::Description))
                    .col(
                        big_integer(TicketTypes::Price)
                            .check(Expr::col(TicketTypes::Price).between(0, 10_000_000)),
                    )
                    // Hundredths of a percent: 19.5% is 1950.
                    .col(
                        integer(TicketTypes::TaxRate)
                            .default(0)
                            .check(Expr::col(TicketTypes::TaxRate).between(0, 10_000)),
                    )
                    .col(integer(TicketTypes::Quantity).check(at_least_zero(TicketTypes::Quantity)))
                    .col(
                        integer(TicketTypes::Available)
                            .check(at_least_zero(TicketTypes::Available)),
                    )
                    .col(
                        integer(TicketTypes::Held)
                            .default(0)
                            .check(at_least_zero(TicketTypes::Held)),
                    )
                    .col(
                        integer(TicketTypes::Booked)
                            .default(0)
                            .check(at_least_zero(TicketTypes::Booked)),
                    )
                    .col(timestamp_with_time_zone_null(TicketTypes::SalesStart))
                    .col(timestamp_with_time_zone_null(TicketTypes::SalesEnd))
                    .col(
                        integer(TicketTypes::MaxPerOrder)
                            .default(10)
                            .check(Expr::col(TicketTypes::MaxPerOrder).between(1, 10)),
                    )
                    .col(boolean(TicketTypes::Hidden).default(false))
                    .col(timestamp_with_time_zone(TicketTypes::CreatedAt))
                    .col(timestamp_with_time_zone(TicketTypes::UpdatedAt))
                    .check(Check::named(
                        "ticket_types_tickets_add_up",
                        Expr::col(TicketTypes::Available)
                            .add(Expr::col(TicketTypes::Held))
                            .add(Expr::col(TicketTypes::Booked))
                            .eq(Expr::col(TicketTypes::Quantity)),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("ticket_types_event_id_fkey")
                            .from(TicketTypes::Table, TicketTypes::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("name", TicketTypes::Name),
            ("position", TicketTypes::Position),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(format!("ticket_types_event_id_{name}_key"))
                        .table(TicketTypes::Table)
                        .col(TicketTypes::EventId)
                        .col(column)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        // Every event so far sold one free kind of ticket; its id is the
        // event's (unique, and stored alike by either database).
        db.execute_unprepared(
            "INSERT INTO ticket_types (id, event_id, position, name, price, quantity, available, \
             held, booked, created_at, updated_at) \
             SELECT id, id, 0, 'General admission', 0, total_tickets, available_tickets, \
             held_tickets, booked_tickets, created_at, created_at FROM events",
        )
        .await?;
        for (table, owner) in [("holds", "hold"), ("bookings", "booking")] {
            // What each ticket cost when it was taken, and the sum.
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ADD COLUMN total bigint NOT NULL DEFAULT 0 CHECK (total >= 0)"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'EUR'"
            ))
            .await?;
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new(format!("{owner}_items")))
                        .col(uuid(Alias::new(format!("{owner}_id"))))
                        .col(uuid(Items::TicketTypeId))
                        .col(integer(Items::Quantity).check(Expr::col(Items::Quantity).gt(0)))
                        .col(
                            big_integer(Items::UnitPrice).check(Expr::col(Items::UnitPrice).gte(0)),
                        )
                        .primary_key(
                            Index::create()
                                .name(format!("{owner}_items_pkey"))
                                .col(Alias::new(format!("{owner}_id")))
                                .col(Items::TicketTypeId),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name(format!("{owner}_items_{owner}_id_fkey"))
                                .from(
                                    Alias::new(format!("{owner}_items")),
                                    Alias::new(format!("{owner}_id")),
                                )
                                .to(Alias::new(table), Alias::new("id")),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name(format!("{owner}_items_ticket_type_id_fkey"))
                                .from(Alias::new(format!("{owner}_items")), Items::TicketTypeId)
                                .to(TicketTypes::Table, TicketTypes::Id),
                        )
                        .to_owned(),
                )
                .await?;
            // Every hold and booking so far was of its event's one free type.
            db.execute_unprepared(&format!(
                "INSERT INTO {owner}_items ({owner}_id, ticket_type_id, quantity, unit_price) \
                 SELECT o.id, t.id, o.quantity, 0 FROM {table} o \
                 JOIN ticket_types t ON t.event_id = o.event_id"
            ))
            .await?;
        }
        db.execute_unprepared(
            "ALTER TABLE seats ADD COLUMN ticket_type_id uuid NULL REFERENCES ticket_types (id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE seats SET ticket_type_id = \
             (SELECT t.id FROM ticket_types t WHERE t.event_id = seats.event_id)",
        )
        .await?;
        db.execute_unprepared(
            "ALTER TABLE waitlist_entries ADD COLUMN ticket_type_id uuid NULL \
             REFERENCES ticket_types (id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "ALTER TABLE waitlist_entries DROP COLUMN ticket_type_id",
            "ALTER TABLE seats DROP COLUMN ticket_type_id",
            "DROP TABLE booking_items",
            "DROP TABLE hold_items",
            "ALTER TABLE bookings DROP COLUMN currency",
            "ALTER TABLE bookings DROP COLUMN total",
            "ALTER TABLE holds DROP COLUMN currency",
            "ALTER TABLE holds DROP COLUMN total",
            "DROP TABLE ticket_types",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum TicketTypes {
    Table,
    Id,
    EventId,
    Position,
    Name,
    Description,
    Price,
    TaxRate,
    Quantity,
    Available,
    Held,
    Booked,
    SalesStart,
    SalesEnd,
    MaxPerOrder,
    Hidden,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Items {
    TicketTypeId,
    Quantity,
    UnitPrice,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}
