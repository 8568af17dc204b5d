use sea_orm::entity::prelude::*;

/// How far an event's draw has come: the early joiners' turns written, in
/// rank order, once the on-sale has passed (`inventory::waiting_room`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_draws")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    /// Early joiners whose turns are written.
    pub drawn: i64,
    /// The last of them, by rank.
    pub drawn_rank: Option<i64>,
    /// Every early joiner's turn is written.
    pub done: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
