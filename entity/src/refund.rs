use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Money going back to a customer, written in the same transaction as its
/// cause and carried out by the worker: `pending → sending → succeeded`, or
/// back to `pending` with a later `next_attempt_at`, or `failed` for good. At
/// most one per payment (a unique index).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payment_id: Uuid,
    pub booking_id: Option<Uuid>,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub reason: RefundReason,
    pub status: RefundStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// While `sending`: the lease of the worker that claimed it.
    pub locked_until: Option<DateTimeUtc>,
    /// The provider's refund id (`re_…`).
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The customer cancelled within the event's refund window.
    #[sea_orm(string_value = "booking_cancelled")]
    BookingCancelled,
    #[sea_orm(string_value = "event_cancelled")]
    EventCancelled,
    /// Paid after the hold ended, and its tickets were gone.
    #[sea_orm(string_value = "tickets_gone")]
    TicketsGone,
    /// The provider took another amount or currency than the hold's.
    #[sea_orm(string_value = "amount_mismatch")]
    AmountMismatch,
    /// The hold was already paid by another attempt.
    #[sea_orm(string_value = "paid_twice")]
    PaidTwice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "sending")]
    Sending,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
