use sea_orm::entity::prelude::*;

/// A discount per ticket on some or all of an event's types, and hidden
/// types unlocked (SPEC §13). `used` counts tickets held or booked with it;
/// the database keeps it within `max_uses`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promo_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    /// In capitals; matched whatever the case a customer types.
    pub code: String,
    /// One of `percent` and `amount` (minor units off each ticket).
    pub percent: Option<i32>,
    pub amount: Option<i64>,
    pub max_uses: Option<i32>,
    pub used: i32,
    pub valid_from: Option<DateTimeUtc>,
    pub valid_until: Option<DateTimeUtc>,
    pub disabled: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
