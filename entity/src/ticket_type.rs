use sea_orm::entity::prelude::*;

/// A kind of ticket an event sells (SPEC §13), with its own counts: the
/// database CHECKs `available + held + booked == quantity`, each ≥ 0, and the
/// event's counts are the sums over its types.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    /// Its place in the event's list, from 0.
    pub position: i32,
    pub name: String,
    pub description: Option<String>,
    /// In the event currency's minor unit, tax included.
    pub price: i64,
    /// Hundredths of a percent: 19.5% is 1950.
    pub tax_rate: i32,
    pub quantity: i32,
    pub available: i32,
    pub held: i32,
    pub booked: i32,
    pub sales_start: Option<DateTimeUtc>,
    pub sales_end: Option<DateTimeUtc>,
    pub max_per_order: i32,
    /// Neither listed nor sold without a promo code that unlocks it.
    pub hidden: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
