//! Promo codes (SPEC §13): a discount per ticket on some or all of an
//! event's types, and hidden types unlocked. `used` counts tickets held or
//! booked with the code, and the database keeps it within `max_uses`, so a
//! stampede cannot use a code more often than it may be used.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PromoCodes::Table)
                    .col(pk_uuid(PromoCodes::Id))
                    .col(uuid(PromoCodes::EventId))
                    .col(text(PromoCodes::Code))
                    .col(
                        integer_null(PromoCodes::Percent)
                            .check(Expr::col(PromoCodes::Percent).between(1, 100)),
                    )
                    .col(
                        big_integer_null(PromoCodes::Amount)
                            .check(Expr::col(PromoCodes::Amount).between(1, 10_000_000)),
                    )
                    .col(
                        integer_null(PromoCodes::MaxUses)
                            .check(Expr::col(PromoCodes::MaxUses).gte(1)),
                    )
                    .col(
                        integer(PromoCodes::Used)
                            .default(0)
                            .check(Expr::col(PromoCodes::Used).gte(0)),
                    )
                    .col(timestamp_with_time_zone_null(PromoCodes::ValidFrom))
                    .col(timestamp_with_time_zone_null(PromoCodes::ValidUntil))
                    .col(boolean(PromoCodes::Disabled).default(false))
                    .col(timestamp_with_time_zone(PromoCodes::CreatedAt))
                    .col(timestamp_with_time_zone(PromoCodes::UpdatedAt))
                    .check(Check::named(
                        "promo_codes_one_discount",
                        Expr::col(PromoCodes::Percent)
                            .is_null()
                            .ne(Expr::col(PromoCodes::Amount).is_null()),
                    ))
                    .check(Check::named(
                        "promo_codes_within_max_uses",
                        Expr::col(PromoCodes::MaxUses)
                            .is_null()
                            .or(Expr::col(PromoCodes::Used).lte(Expr::col(PromoCodes::MaxUses))),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("promo_codes_event_id_fkey")
                            .from(PromoCodes::Table, PromoCodes::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("promo_codes_event_id_code_key")
                    .table(PromoCodes::Table)
                    .col(PromoCodes::EventId)
                    .col(PromoCodes::Code)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The types a code discounts (none listed: all) and those it unlocks.
        manager
            .create_table(
                Table::create()
                    .table(PromoCodeTypes::Table)
                    .col(uuid(PromoCodeTypes::PromoCodeId))
                    .col(uuid(PromoCodeTypes::TicketTypeId))
                    .col(boolean(PromoCodeTypes::Unlocks))
                    .primary_key(
                        Index::create()
                            .name("promo_code_types_pkey")
                            .col(PromoCodeTypes::PromoCodeId)
                            .col(PromoCodeTypes::TicketTypeId)
                            .col(PromoCodeTypes::Unlocks),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("promo_code_types_promo_code_id_fkey")
                            .from(PromoCodeTypes::Table, PromoCodeTypes::PromoCodeId)
                            .to(PromoCodes::Table, PromoCodes::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("promo_code_types_ticket_type_id_fkey")
                            .from(PromoCodeTypes::Table, PromoCodeTypes::TicketTypeId)
                            .to(TicketTypes::Table, TicketTypes::Id),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in [
            // The discount per ticket, fixed with the unit price.
            "ALTER TABLE hold_items ADD COLUMN discount bigint NOT NULL DEFAULT 0 CHECK (discount >= 0)",
            "ALTER TABLE booking_items ADD COLUMN discount bigint NOT NULL DEFAULT 0 CHECK (discount >= 0)",
            // The code a hold or booking used, and how many of its tickets
            // count as uses (given back when it ends unconfirmed or is
            // cancelled).
            "ALTER TABLE holds ADD COLUMN promo_code_id uuid NULL REFERENCES promo_codes (id)",
            "ALTER TABLE holds ADD COLUMN promo_uses integer NOT NULL DEFAULT 0 CHECK (promo_uses >= 0)",
            "ALTER TABLE bookings ADD COLUMN promo_code_id uuid NULL REFERENCES promo_codes (id)",
            "ALTER TABLE bookings ADD COLUMN promo_uses integer NOT NULL DEFAULT 0 CHECK (promo_uses >= 0)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "ALTER TABLE bookings DROP COLUMN promo_uses",
            "ALTER TABLE bookings DROP COLUMN promo_code_id",
            "ALTER TABLE holds DROP COLUMN promo_uses",
            "ALTER TABLE holds DROP COLUMN promo_code_id",
            "ALTER TABLE booking_items DROP COLUMN discount",
            "ALTER TABLE hold_items DROP COLUMN discount",
            "DROP TABLE promo_code_types",
            "DROP TABLE promo_codes",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PromoCodes {
    Table,
    Id,
    EventId,
    Code,
    Percent,
    Amount,
    MaxUses,
    Used,
    ValidFrom,
    ValidUntil,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PromoCodeTypes {
    Table,
    PromoCodeId,
    TicketTypeId,
    Unlocks,
}

#[derive(DeriveIden)]
enum TicketTypes {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}
