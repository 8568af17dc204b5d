//! A booking's tickets, items and notifications without a foreign-key check
//! on the booking (PostgreSQL).
//!
//! Each of those rows' checks looked up and locked (`FOR KEY SHARE`) the
//! booking row its own transaction had just written: three a booking. Without
//! them the bench's hot event books 10,182–10,369/s instead of 8,571–8,861/s,
//! back to back (`bench/results/2026-12-05-unnest-inserts.md`). The
//! references cannot dangle: bookings are never deleted, and every writer of
//! these rows writes or reads their booking in the same transaction. The
//! tests' ticket invariant (`assert_ticket_invariant`) checks after every
//! stampede that no such row names a booking that is not there. Payments,
//! refunds and holds keep their checks; SQLite keeps all (see migration 15).

use sea_orm_migration::prelude::*;

use crate::unchecked_references::{Reference, drop_checks, restore_checks};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNCHECKED: [Reference; 3] = [
    Reference {
        table: "tickets",
        column: "booking_id",
        parent: "bookings",
    },
    Reference {
        table: "booking_items",
        column: "booking_id",
        parent: "bookings",
    },
    Reference {
        table: "notifications",
        column: "booking_id",
        parent: "bookings",
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_checks(manager, &UNCHECKED).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        restore_checks(manager, &UNCHECKED).await
    }
}
