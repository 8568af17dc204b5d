use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One seat of a seated event. `hold_id` is the hold that has it (still held, or
/// confirmed into a booking); it is set exactly when the seat is not available.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub section: String,
    pub row: String,
    pub number: i32,
    /// `"{section} {row}-{number}"`, e.g. `"Floor A-12"`.
    pub label: String,
    /// Rank in the seat map as given (sections, then rows, then numbers): lower
    /// is better, and best-available picks by it.
    pub position: i32,
    pub status: SeatStatus,
    pub hold_id: Option<Uuid>,
    /// The type its section sells.
    pub ticket_type_id: Option<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    #[sea_orm(string_value = "available")]
    Available,
    #[sea_orm(string_value = "held")]
    Held,
    #[sea_orm(string_value = "booked")]
    Booked,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
