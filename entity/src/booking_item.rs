use sea_orm::entity::prelude::*;

/// So many tickets of one type in a booking, at the unit price fixed when
/// they were taken.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booking_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub booking_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_type_id: Uuid,
    pub quantity: i32,
    pub unit_price: i64,
    /// Off each ticket, by a promo code.
    pub discount: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
