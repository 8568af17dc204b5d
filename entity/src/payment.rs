use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One attempt to pay for a hold (SPEC §14): a Stripe PaymentIntent, or a
/// payment the organizer took elsewhere. Its status moves only by conditional
/// updates, so each provider event is applied once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub hold_id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    /// The booking this payment made, once it made one.
    pub booking_id: Option<Uuid>,
    pub provider: PaymentProvider,
    pub status: PaymentStatus,
    /// Minor units: the hold's total when the attempt started.
    pub amount: i64,
    pub currency: String,
    /// The PaymentIntent id (`pi_…`); `None` while it is being created.
    pub provider_ref: Option<String>,
    pub client_secret: Option<String>,
    /// What the organizer noted for a manual payment.
    pub reference: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PaymentProvider {
    #[sea_orm(string_value = "stripe")]
    Stripe,
    #[sea_orm(string_value = "manual")]
    Manual,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "refunded")]
    Refunded,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
