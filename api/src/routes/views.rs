//! The JSON representations the api returns.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = RoleName)]
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<UserModel> for UserView {
    fn from(user: UserModel) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginView {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub total_tickets: i32,
    pub available_tickets: i32,
    #[schema(value_type = EventStatusName)]
    pub status: EventStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EventModel> for EventView {
    fn from(e: EventModel) -> Self {
        Self {
            id: e.id,
            organizer_id: e.organizer_id,
            title: e.title,
            description: e.description,
            venue: e.venue,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            total_tickets: e.total_tickets,
            available_tickets: e.available_tickets,
            status: e.status,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageView {
    pub items: Vec<EventView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub quantity: i32,
    #[schema(value_type = BookingStatusName)]
    pub status: BookingStatus,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<BookingModel> for BookingView {
    fn from(b: BookingModel) -> Self {
        Self {
            id: b.id,
            event_id: b.event_id,
            user_id: b.user_id,
            quantity: b.quantity,
            status: b.status,
            created_at: b.created_at,
            cancelled_at: b.cancelled_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendeeView {
    #[serde(flatten)]
    pub booking: BookingView,
    pub customer_name: String,
    pub customer_email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T: ToSchema> {
    pub items: Vec<T>,
}

impl<T: ToSchema> Items<T> {
    pub fn of<M>(models: impl IntoIterator<Item = M>) -> Self
    where
        T: From<M>,
    {
        Self {
            items: models.into_iter().map(T::from).collect(),
        }
    }
}

// How the entity enums appear on the wire, for the API document (the entity
// crate stays free of documentation concerns).

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RoleName {
    Organizer,
    Customer,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EventStatusName {
    Scheduled,
    Cancelled,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BookingStatusName {
    Confirmed,
    Cancelled,
}
