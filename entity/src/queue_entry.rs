use sea_orm::entity::prelude::*;

/// A customer's place in an event's waiting room. `rank` orders the line:
/// random for those who joined before the on-sale, after them in order of
/// arrival. `admit_at` is each one's turn: fixed when they joined for those
/// who arrived after the on-sale, written by the draw once the on-sale has
/// passed for the others (`inventory::waiting_room`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub rank: i64,
    pub joined_at: DateTimeUtc,
    pub admit_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
