use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A customer's place in an event's waitlist. `waiting` until tickets come
/// back that fit its `quantity`; then `offered`, with the hold made for them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "waitlist_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub quantity: i32,
    /// Waiting for this type only; `None`: any.
    pub ticket_type_id: Option<Uuid>,
    pub status: WaitlistStatus,
    pub hold_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum WaitlistStatus {
    #[sea_orm(string_value = "waiting")]
    Waiting,
    #[sea_orm(string_value = "offered")]
    Offered,
    #[sea_orm(string_value = "left")]
    Left,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
