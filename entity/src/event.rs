use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub venue: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub total_tickets: i32,
    /// Only ever changed by conditional `UPDATE`s in the same statement or transaction
    /// as the booking rows they account for; the database CHECKs `0..=total_tickets`.
    pub available_tickets: i32,
    /// Tickets in active holds; with `available_tickets` and `booked_tickets` it
    /// adds up to `total_tickets` (a CHECK, or triggers on SQLite).
    pub held_tickets: i32,
    /// Tickets in confirmed bookings.
    pub booked_tickets: i32,
    /// How long a hold on this event lasts, 1 to 60.
    pub hold_minutes: i32,
    /// Reserved seating: tickets are the rows of `seats`.
    pub seated: bool,
    /// How long a waitlist offer (a hold made for the next in line) lasts.
    pub offer_minutes: i32,
    /// Holds and bookings open then; `None`: on sale from the start.
    pub on_sale_at: Option<DateTimeUtc>,
    /// With the waiting room, holds and bookings need an admission pass.
    pub waiting_room_enabled: bool,
    pub admit_per_minute: i32,
    /// How long an admission pass lasts.
    pub pass_minutes: i32,
    pub status: EventStatus,
    /// ISO 4217: what the event's prices are in.
    pub currency: String,
    /// A paid booking cancelled by its customer is refunded until then;
    /// `None`: until the event starts.
    pub refund_until: Option<DateTimeUtc>,
    /// The iCalendar `SEQUENCE` of its calendar entries: raised by each change
    /// its customers are emailed about and by its cancellation.
    pub calendar_sequence: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    #[sea_orm(string_value = "scheduled")]
    Scheduled,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::OrganizerId",
        to = "super::user::Column::Id"
    )]
    Organizer,
    #[sea_orm(has_many = "super::booking::Entity")]
    Booking,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organizer.def()
    }
}

impl Related<super::booking::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Booking.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
