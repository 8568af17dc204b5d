use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One admission: a unit of a confirmed booking (SPEC §15). Its code is
/// computed from its id and event id with the deployment's key, never
/// stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    pub seat_id: Option<Uuid>,
    pub status: TicketStatus,
    /// The earliest scan that admitted it.
    pub checked_in_at: Option<DateTimeUtc>,
    /// The door device (or organizer) that scanned it.
    pub checked_in_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    #[sea_orm(string_value = "valid")]
    Valid,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
