use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::PasswordHash, 255))
                    .col(string_len(Users::Name, 200))
                    .col(
                        string_len(Users::Role, 16)
                            .check(Expr::col(Users::Role).is_in(["organizer", "customer"])),
                    )
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Emails are unique regardless of case; an expression index keeps the address as
        // the user typed it while making `lower(email) = lower($1)` lookups indexed.
        manager
            .get_connection()
            .execute_unprepared("CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(pk_uuid(Events::Id))
                    .col(uuid(Events::OrganizerId))
                    .col(string_len(Events::Title, 200))
                    .col(text_null(Events::Description))
                    .col(string_len(Events::Venue, 200))
                    .col(timestamp_with_time_zone(Events::StartsAt))
                    .col(timestamp_with_time_zone(Events::EndsAt))
                    .col(integer(Events::TotalTickets))
                    .col(integer(Events::AvailableTickets))
                    .col(
                        string_len(Events::Status, 16)
                            .check(Expr::col(Events::Status).is_in(["scheduled", "cancelled"])),
                    )
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(timestamp_with_time_zone(Events::UpdatedAt))
                    // The last line of defence against overselling: whatever the
                    // application does, the database refuses a negative count.
                    .check((
                        Alias::new("events_available_tickets_non_negative"),
                        Expr::col(Events::AvailableTickets).gte(0),
                    ))
                    .check((
                        Alias::new("events_available_tickets_within_total"),
                        Expr::col(Events::AvailableTickets).lte(Expr::col(Events::TotalTickets)),
                    ))
                    .check((
                        Alias::new("events_ends_after_start"),
                        Expr::col(Events::EndsAt).gt(Expr::col(Events::StartsAt)),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("events_organizer_id_fkey")
                            .from(Events::Table, Events::OrganizerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_starts_at_id_idx")
                    .table(Events::Table)
                    .col(Events::StartsAt)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_organizer_id_idx")
                    .table(Events::Table)
                    .col(Events::OrganizerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Bookings::Table)
                    .col(pk_uuid(Bookings::Id))
                    .col(uuid(Bookings::EventId))
                    .col(uuid(Bookings::UserId))
                    .col(integer(Bookings::Quantity).check(Expr::col(Bookings::Quantity).gt(0)))
                    .col(
                        string_len(Bookings::Status, 16)
                            .check(Expr::col(Bookings::Status).is_in(["confirmed", "cancelled"])),
                    )
                    .col(timestamp_with_time_zone(Bookings::CreatedAt))
                    .col(timestamp_with_time_zone_null(Bookings::CancelledAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("bookings_event_id_fkey")
                            .from(Bookings::Table, Bookings::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("bookings_user_id_fkey")
                            .from(Bookings::Table, Bookings::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Attendee lists and update fan-outs read an event's confirmed bookings.
        manager
            .create_index(
                Index::create()
                    .name("bookings_event_id_status_idx")
                    .table(Bookings::Table)
                    .col(Bookings::EventId)
                    .col(Bookings::Status)
                    .to_owned(),
            )
            .await?;
        // "My bookings", newest first.
        manager
            .create_index(
                Index::create()
                    .name("bookings_user_id_created_at_idx")
                    .table(Bookings::Table)
                    .col(Bookings::UserId)
                    .col(Bookings::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    .col(string_len(Notifications::Kind, 32))
                    .col(uuid(Notifications::UserId))
                    .col(uuid(Notifications::EventId))
                    .col(uuid_null(Notifications::BookingId))
                    .col(json_null(Notifications::Changes))
                    .col(
                        string_len(Notifications::Status, 16).check(
                            Expr::col(Notifications::Status)
                                .is_in(["pending", "sending", "sent", "failed"]),
                        ),
                    )
                    .col(integer(Notifications::Attempts).default(0))
                    .col(text_null(Notifications::LastError))
                    .col(timestamp_with_time_zone(Notifications::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Notifications::EnqueuedAt))
                    .col(timestamp_with_time_zone_null(Notifications::LockedUntil))
                    .col(timestamp_with_time_zone_null(Notifications::SentAt))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(string_len_null(Notifications::RequestId, 128))
                    .foreign_key(
                        ForeignKey::create()
                            .name("notifications_user_id_fkey")
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("notifications_event_id_fkey")
                            .from(Notifications::Table, Notifications::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("notifications_booking_id_fkey")
                            .from(Notifications::Table, Notifications::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweep scans for undelivered rows that are due.
        manager
            .create_index(
                Index::create()
                    .name("notifications_status_next_attempt_at_idx")
                    .table(Notifications::Table)
                    .col(Notifications::Status)
                    .col(Notifications::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("notifications_booking_id_idx")
                    .table(Notifications::Table)
                    .col(Notifications::BookingId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            Bookings::Table.into_iden(),
            Events::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Name,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    OrganizerId,
    Title,
    Description,
    Venue,
    StartsAt,
    EndsAt,
    TotalTickets,
    AvailableTickets,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    EventId,
    UserId,
    Quantity,
    Status,
    CreatedAt,
    CancelledAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    Kind,
    UserId,
    EventId,
    BookingId,
    Changes,
    Status,
    Attempts,
    LastError,
    NextAttemptAt,
    EnqueuedAt,
    LockedUntil,
    SentAt,
    CreatedAt,
    RequestId,
}
