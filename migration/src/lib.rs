pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial_schema;
mod m20261122_000002_idempotency_keys;
mod m20261123_000003_holds_and_seats;
mod m20261123_000004_waitlist;
mod m20261123_000005_waiting_room;
mod m20261204_000006_event_currency;
mod m20261204_000007_ticket_types;
mod m20261204_000008_promo_codes;
mod m20261204_000009_payments;
mod m20261204_000010_tickets;
mod m20261204_000011_calendar_sequence;
mod m20261204_000012_webhooks;
mod m20261204_000013_backfill_tickets;
mod m20261204_000014_webhook_messages;
mod m20261205_000015_hot_path_foreign_keys;
mod m20261205_000016_waiting_room_lines;
mod m20261205_000017_sold_type_foreign_keys;
mod m20261205_000018_booking_row_foreign_keys;
mod unchecked_references;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial_schema::Migration),
            Box::new(m20261122_000002_idempotency_keys::Migration),
            Box::new(m20261123_000003_holds_and_seats::Migration),
            Box::new(m20261123_000004_waitlist::Migration),
            Box::new(m20261123_000005_waiting_room::Migration),
            Box::new(m20261204_000006_event_currency::Migration),
            Box::new(m20261204_000007_ticket_types::Migration),
            Box::new(m20261204_000008_promo_codes::Migration),
            Box::new(m20261204_000009_payments::Migration),
            Box::new(m20261204_000010_tickets::Migration),
            Box::new(m20261204_000011_calendar_sequence::Migration),
            Box::new(m20261204_000012_webhooks::Migration),
            Box::new(m20261204_000013_backfill_tickets::Migration),
            Box::new(m20261204_000014_webhook_messages::Migration),
            Box::new(m20261205_000015_hot_path_foreign_keys::Migration),
            Box::new(m20261205_000016_waiting_room_lines::Migration),
            Box::new(m20261205_000017_sold_type_foreign_keys::Migration),
            Box::new(m20261205_000018_booking_row_foreign_keys::Migration),
        ]
    }
}

use sea_orm_migration::sea_orm::{
    DatabaseConnection, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Applies pending migrations, exactly once however many processes start at the
/// same moment: all of it runs in one transaction that first takes a lock (the
/// SQLite write lock, or a PostgreSQL advisory lock); the others wait for it and
/// then find nothing left to do. Both databases roll DDL back with the
/// transaction, so a failed migration leaves no half-made schema.
pub async fn up_exactly_once(db: &DatabaseConnection) -> Result<(), DbErr> {
    const MIGRATION_LOCK: i64 = 0x626f6f6b696e67; // "booking"
    let txn = db
        .begin_with_options(TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        })
        .await?;
    if db.get_database_backend() == DbBackend::Postgres {
        // The pool's statement and lock timeouts are for requests; a migration
        // (and waiting for another process's) may take as long as it takes.
        for setting in [
            "statement_timeout",
            "lock_timeout",
            "idle_in_transaction_session_timeout",
        ] {
            txn.execute_unprepared(&format!("SET LOCAL {setting} = 0"))
                .await?;
        }
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await
}
