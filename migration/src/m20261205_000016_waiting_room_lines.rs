//! A waiting room that keeps its speed at millions in line (SPEC §10, §17).
//!
//! - `queue_draws`: how far the draw has come. Once the on-sale passes, the
//!   early joiners' turns are written into their entries in rank order, a
//!   step at a time, so a turn is read, never counted (counting the ranks
//!   ahead read up to the whole line on every look).
//! - `queue_tails`: the end of the line, for those who join after the
//!   on-sale: how many joined early (counted once), and the last rank and
//!   turn given out. A late join locks this row, not the event's.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QueueDraws::Table)
                    .col(uuid(QueueDraws::EventId).primary_key())
                    .col(big_integer(QueueDraws::Drawn))
                    .col(big_integer_null(QueueDraws::DrawnRank))
                    .col(boolean(QueueDraws::Done))
                    .foreign_key(
                        ForeignKey::create()
                            .name("queue_draws_event_id_fkey")
                            .from(QueueDraws::Table, QueueDraws::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QueueTails::Table)
                    .col(uuid(QueueTails::EventId).primary_key())
                    .col(big_integer(QueueTails::EarlyJoiners))
                    .col(big_integer_null(QueueTails::LastRank))
                    .col(timestamp_with_time_zone_null(QueueTails::LastTurn))
                    .foreign_key(
                        ForeignKey::create()
                            .name("queue_tails_event_id_fkey")
                            .from(QueueTails::Table, QueueTails::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QueueTails::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(QueueDraws::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum QueueDraws {
    Table,
    EventId,
    Drawn,
    DrawnRank,
    Done,
}

#[derive(DeriveIden)]
enum QueueTails {
    Table,
    EventId,
    EarlyJoiners,
    LastRank,
    LastTurn,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}
