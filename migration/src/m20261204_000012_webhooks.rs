//! Webhook endpoints (SPEC §16): where an organizer's other systems want to
//! hear of bookings, changes, refunds and check-ins. The signing secret is
//! kept as the organizer was shown it (`whsec_…`), since every delivery signs
//! with it. An endpoint without listed events hears of all its organizer's.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(pk_uuid(WebhookEndpoints::Id))
                    .col(uuid(WebhookEndpoints::OrganizerId))
                    .col(text(WebhookEndpoints::Url))
                    .col(text(WebhookEndpoints::Types))
                    .col(boolean(WebhookEndpoints::AllEvents))
                    .col(text(WebhookEndpoints::Secret))
                    .col(boolean(WebhookEndpoints::Enabled))
                    .col(text_null(WebhookEndpoints::DisabledReason))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_endpoints_organizer_id_fkey")
                            .from(WebhookEndpoints::Table, WebhookEndpoints::OrganizerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpointEvents::Table)
                    .col(uuid(WebhookEndpointEvents::EndpointId))
                    .col(uuid(WebhookEndpointEvents::EventId))
                    .primary_key(
                        Index::create()
                            .col(WebhookEndpointEvents::EndpointId)
                            .col(WebhookEndpointEvents::EventId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_endpoint_events_endpoint_id_fkey")
                            .from(
                                WebhookEndpointEvents::Table,
                                WebhookEndpointEvents::EndpointId,
                            )
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_endpoint_events_event_id_fkey")
                            .from(WebhookEndpointEvents::Table, WebhookEndpointEvents::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in [
            // An organizer's endpoints, as listed and as a change looks for them.
            "CREATE INDEX webhook_endpoints_organizer_id_idx ON webhook_endpoints (organizer_id, created_at)",
            "CREATE INDEX webhook_endpoint_events_event_id_idx ON webhook_endpoint_events (event_id)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookEndpointEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    OrganizerId,
    Url,
    Types,
    AllEvents,
    Secret,
    Enabled,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookEndpointEvents {
    Table,
    EndpointId,
    EventId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}
