//! Payments and refunds (SPEC §14). A hold with a price is paid before it is
//! booked; each attempt is a `payments` row, and each refund a `refunds` row
//! that the worker carries out (an outbox of its own: lease, retries with
//! backoff, a terminal `failed`). The database keeps one pending attempt per
//! hold and one refund per payment, so a payment can never be refunded twice.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(timestamp_with_time_zone_null(Events::RefundUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .col(pk_uuid(Payments::Id))
                    .col(uuid(Payments::HoldId))
                    .col(uuid(Payments::EventId))
                    .col(uuid(Payments::UserId))
                    .col(uuid_null(Payments::BookingId))
                    .col(
                        string_len(Payments::Provider, 16)
                            .check(Expr::col(Payments::Provider).is_in(["stripe", "manual"])),
                    )
                    .col(string_len(Payments::Status, 16).check(
                        Expr::col(Payments::Status).is_in([
                            "pending",
                            "succeeded",
                            "failed",
                            "refunded",
                        ]),
                    ))
                    .col(big_integer(Payments::Amount).check(Expr::col(Payments::Amount).gt(0)))
                    .col(string_len(Payments::Currency, 3))
                    .col(text_null(Payments::ProviderRef))
                    .col(text_null(Payments::ClientSecret))
                    .col(text_null(Payments::Reference))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .foreign_key(&mut fk(
                        "payments_hold_id_fkey",
                        Payments::Table,
                        Payments::HoldId,
                        Holds::Table,
                        Holds::Id,
                    ))
                    .foreign_key(&mut fk(
                        "payments_event_id_fkey",
                        Payments::Table,
                        Payments::EventId,
                        Events::Table,
                        Events::Id,
                    ))
                    .foreign_key(&mut fk(
                        "payments_user_id_fkey",
                        Payments::Table,
                        Payments::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .foreign_key(&mut fk(
                        "payments_booking_id_fkey",
                        Payments::Table,
                        Payments::BookingId,
                        Bookings::Table,
                        Bookings::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Bookings::Table)
                    .add_column(uuid_null(Bookings::PaymentId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .col(pk_uuid(Refunds::Id))
                    .col(uuid(Refunds::PaymentId))
                    .col(uuid_null(Refunds::BookingId))
                    .col(uuid(Refunds::EventId))
                    .col(uuid(Refunds::UserId))
                    .col(big_integer(Refunds::Amount).check(Expr::col(Refunds::Amount).gt(0)))
                    .col(string_len(Refunds::Currency, 3))
                    .col(string_len(Refunds::Reason, 32))
                    .col(
                        string_len(Refunds::Status, 16).check(Expr::col(Refunds::Status).is_in([
                            "pending",
                            "sending",
                            "succeeded",
                            "failed",
                        ])),
                    )
                    .col(integer(Refunds::Attempts).default(0))
                    .col(timestamp_with_time_zone(Refunds::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Refunds::LockedUntil))
                    .col(text_null(Refunds::ProviderRef))
                    .col(text_null(Refunds::LastError))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .col(timestamp_with_time_zone_null(Refunds::FinishedAt))
                    .foreign_key(&mut fk(
                        "refunds_payment_id_fkey",
                        Refunds::Table,
                        Refunds::PaymentId,
                        Payments::Table,
                        Payments::Id,
                    ))
                    .foreign_key(&mut fk(
                        "refunds_booking_id_fkey",
                        Refunds::Table,
                        Refunds::BookingId,
                        Bookings::Table,
                        Bookings::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(uuid_null(Notifications::RefundId))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in [
            "CREATE UNIQUE INDEX payments_provider_ref_key ON payments (provider_ref)",
            // One attempt at a time per hold; a new one once it has failed.
            "CREATE UNIQUE INDEX payments_one_pending_per_hold ON payments (hold_id) WHERE status = 'pending'",
            // Reconciliation reads the pending payments least recently looked at first.
            "CREATE INDEX payments_pending_updated_at_idx ON payments (updated_at) WHERE status = 'pending'",
            "CREATE INDEX payments_hold_id_idx ON payments (hold_id)",
            // A payment is refunded at most once.
            "CREATE UNIQUE INDEX refunds_payment_id_key ON refunds (payment_id)",
            "CREATE INDEX refunds_due_idx ON refunds (next_attempt_at) WHERE status IN ('pending', 'sending')",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "ALTER TABLE notifications DROP COLUMN refund_id",
            "DROP TABLE refunds",
            "ALTER TABLE bookings DROP COLUMN payment_id",
            "DROP TABLE payments",
            "ALTER TABLE events DROP COLUMN refund_until",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

fn fk(
    name: &str,
    from_table: impl IntoIden,
    from: impl IntoIden,
    to_table: impl IntoIden,
    to: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from_table, from)
        .to(to_table, to)
        .to_owned()
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    RefundUntil,
}

#[derive(DeriveIden)]
enum Holds {
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
    PaymentId,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    RefundId,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    HoldId,
    EventId,
    UserId,
    BookingId,
    Provider,
    Status,
    Amount,
    Currency,
    ProviderRef,
    ClientSecret,
    Reference,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    Id,
    PaymentId,
    BookingId,
    EventId,
    UserId,
    Amount,
    Currency,
    Reason,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    ProviderRef,
    LastError,
    CreatedAt,
    FinishedAt,
}
