use sea_orm::entity::prelude::*;

/// A customer's place in an event's waiting room. `rank` orders the line:
/// random for those who joined before the on-sale, after them in order of
/// arrival. `admit_at` is set for those who arrived after the on-sale (their
/// admission time was fixed when they joined); for the others it follows from
/// their place among the early ones.
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
