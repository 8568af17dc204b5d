use sea_orm::entity::prelude::*;

/// The end of an event's waiting line, where those who join after the
/// on-sale go (`inventory::waiting_room`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_tails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    /// Those who joined before the on-sale, counted once after it.
    pub early_joiners: i64,
    /// The last late joiner's rank and turn.
    pub last_rank: Option<i64>,
    pub last_turn: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
