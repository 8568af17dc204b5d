use sea_orm::entity::prelude::*;

/// A type a promo code discounts (`unlocks` false; a code listing none
/// discounts every type) or unlocks (a hidden type sold only with the code).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promo_code_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub promo_code_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_type_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub unlocks: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
