//! Webhook messages (SPEC §16): one per endpoint for each change it listens
//! to, written in the change's own transaction (an outbox, like
//! `notifications`), queued by the worker's sweep and delivered at least once.
//! A message goes `pending → sending → delivered`, back to `pending` with a
//! later `next_attempt_at` after a failed attempt, or to `failed` once it has
//! been failing for three days (or its endpoint answered 410 Gone).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookMessages::Table)
                    .col(pk_uuid(WebhookMessages::Id))
                    .col(uuid(WebhookMessages::EndpointId))
                    .col(uuid(WebhookMessages::EventId))
                    .col(string_len(WebhookMessages::Type, 32))
                    .col(text(WebhookMessages::Payload))
                    .col(string_len(WebhookMessages::Status, 16).check(
                        Expr::col(WebhookMessages::Status).is_in([
                            "pending",
                            "sending",
                            "delivered",
                            "failed",
                        ]),
                    ))
                    .col(integer(WebhookMessages::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookMessages::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(WebhookMessages::LockedUntil))
                    .col(timestamp_with_time_zone_null(WebhookMessages::EnqueuedAt))
                    .col(integer_null(WebhookMessages::LastStatusCode))
                    .col(text_null(WebhookMessages::LastError))
                    .col(timestamp_with_time_zone(WebhookMessages::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookMessages::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_messages_endpoint_id_fkey")
                            .from(WebhookMessages::Table, WebhookMessages::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The email that tells an organizer their endpoint was switched off.
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(uuid_null(Notifications::WebhookEndpointId))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in [
            // An endpoint's delivery log, newest first.
            "CREATE INDEX webhook_messages_endpoint_id_created_at_idx \
             ON webhook_messages (endpoint_id, created_at)",
            // What the sweep queues: due and not delivered or given up.
            "CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at) \
             WHERE status IN ('pending', 'sending')",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(Notifications::WebhookEndpointId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookMessages::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebhookMessages {
    Table,
    Id,
    EndpointId,
    EventId,
    Type,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    EnqueuedAt,
    LastStatusCode,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    WebhookEndpointId,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
}
