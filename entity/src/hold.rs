use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Tickets set aside for one customer until they confirm, release, or the hold
/// expires. Only an `active` hold counts in `events.held_tickets`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "holds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub quantity: i32,
    /// Σ quantity × unit price of its items.
    pub total: i64,
    pub currency: String,
    /// The promo code used, and how many of its tickets count as its uses.
    pub promo_code_id: Option<Uuid>,
    pub promo_uses: i32,
    pub status: HoldStatus,
    pub expires_at: DateTimeUtc,
    /// The booking it became, once confirmed.
    pub booking_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    /// When it stopped being active.
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "confirmed")]
    Confirmed,
    #[sea_orm(string_value = "released")]
    Released,
    #[sea_orm(string_value = "expired")]
    Expired,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::event::Entity",
        from = "Column::EventId",
        to = "super::event::Column::Id"
    )]
    Event,
}

impl Related<super::event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Event.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
