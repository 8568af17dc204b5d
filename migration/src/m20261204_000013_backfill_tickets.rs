//! Tickets for bookings made before tickets existed (SPEC §15), so that they
//! can be checked in: every confirmed booking without tickets gets one per
//! unit, as the app issues them. On a seated event, one per seat of its hold,
//! of the seat's type; otherwise one per unit of each booking line, and a
//! booking from before ticket types is of its event's first type. Ids are
//! made by the database in the form the app stores (a UUID on PostgreSQL,
//! 16 bytes on SQLite).

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A booking's units: no booking line was ever over this.
const MOST_UNITS: u32 = 1_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let new_id = match db.get_database_backend() {
            DbBackend::Sqlite => "randomblob(16)",
            _ => "gen_random_uuid()",
        };
        let without_tickets = "b.status = 'confirmed' \
             AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.booking_id = b.id)";
        let seated = "EXISTS (SELECT 1 FROM holds h JOIN hold_seats hs ON hs.hold_id = h.id \
             WHERE h.booking_id = b.id)";
        let first_type = "(SELECT tt.id FROM ticket_types tt \
             WHERE tt.event_id = b.event_id AND tt.position = 0)";
        // Seated: a ticket per seat the booking's hold had.
        db.execute_unprepared(&format!(
            "INSERT INTO tickets (id, booking_id, event_id, ticket_type_id, seat_id, status, created_at) \
             SELECT {new_id}, b.id, b.event_id, coalesce(s.ticket_type_id, {first_type}), s.id, \
                    'valid', b.created_at \
               FROM bookings b \
               JOIN holds h ON h.booking_id = b.id \
               JOIN hold_seats hs ON hs.hold_id = h.id \
               JOIN seats s ON s.id = hs.seat_id \
              WHERE {without_tickets}"
        ))
        .await?;
        // General admission: a ticket per unit of each line, or of the
        // booking on its event's first type when it has no lines.
        db.execute_unprepared(&format!(
            "INSERT INTO tickets (id, booking_id, event_id, ticket_type_id, seat_id, status, created_at) \
             WITH RECURSIVE units(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM units WHERE n < {MOST_UNITS}), \
             lines(booking_id, event_id, ticket_type_id, quantity, created_at) AS ( \
               SELECT b.id, b.event_id, bi.ticket_type_id, bi.quantity, b.created_at \
                 FROM bookings b JOIN booking_items bi ON bi.booking_id = b.id \
                WHERE {without_tickets} AND NOT {seated} \
               UNION ALL \
               SELECT b.id, b.event_id, {first_type}, b.quantity, b.created_at \
                 FROM bookings b \
                WHERE {without_tickets} AND NOT {seated} \
                  AND NOT EXISTS (SELECT 1 FROM booking_items bi WHERE bi.booking_id = b.id)) \
             SELECT {new_id}, lines.booking_id, lines.event_id, lines.ticket_type_id, NULL, \
                    'valid', lines.created_at \
               FROM lines JOIN units ON units.n <= lines.quantity \
              WHERE lines.ticket_type_id IS NOT NULL"
        ))
        .await?;
        Ok(())
    }

    /// The tickets stay: they are as real as those issued since.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
