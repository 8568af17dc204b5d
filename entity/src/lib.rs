//! Database entities: the tables `users`, `events`, `bookings`, `holds`, `seats`,
//! `hold_seats`, `ticket_types`, `hold_items`, `booking_items`, `waitlist_entries`, `notifications`, `payments`, `refunds`, `tickets`, `door_devices`, `signing_keys`, `webhook_endpoints`, `webhook_endpoint_events`, `webhook_messages`, `queue_entries`, `queue_draws`, `queue_tails` and `idempotency_keys`.
//!
//! Column names and stored enum strings are part of the public contract (operators
//! query these tables directly), so they match the JSON field names and values.

pub mod booking;
pub mod booking_item;
pub mod door_device;
pub mod event;
pub mod hold;
pub mod hold_item;
pub mod hold_seat;
pub mod idempotency_key;
pub mod notification;
pub mod payment;
pub mod promo_code;
pub mod promo_code_type;
pub mod queue_draw;
pub mod queue_entry;
pub mod queue_tail;
pub mod refund;
pub mod seat;
pub mod signing_key;
pub mod ticket;
pub mod ticket_type;
pub mod user;
pub mod waitlist_entry;
pub mod webhook_endpoint;
pub mod webhook_endpoint_event;
pub mod webhook_message;

pub mod prelude {
    pub use super::booking::{
        ActiveModel as BookingActiveModel, BookingStatus, Column as BookingColumn,
        Entity as Booking, Model as BookingModel,
    };
    pub use super::booking_item::{
        ActiveModel as BookingItemActiveModel, Column as BookingItemColumn, Entity as BookingItem,
        Model as BookingItemModel,
    };
    pub use super::door_device::{
        ActiveModel as DoorDeviceActiveModel, Column as DoorDeviceColumn, Entity as DoorDevice,
        Model as DoorDeviceModel,
    };
    pub use super::event::{
        ActiveModel as EventActiveModel, Column as EventColumn, Entity as Event, EventStatus,
        Model as EventModel,
    };
    pub use super::hold::{
        ActiveModel as HoldActiveModel, Column as HoldColumn, Entity as Hold, HoldStatus,
        Model as HoldModel,
    };
    pub use super::hold_item::{
        ActiveModel as HoldItemActiveModel, Column as HoldItemColumn, Entity as HoldItem,
        Model as HoldItemModel,
    };
    pub use super::hold_seat::{
        ActiveModel as HoldSeatActiveModel, Column as HoldSeatColumn, Entity as HoldSeat,
        Model as HoldSeatModel,
    };
    pub use super::idempotency_key::{
        ActiveModel as IdempotencyKeyActiveModel, Column as IdempotencyKeyColumn,
        Entity as IdempotencyKey, IdempotencyStatus, Model as IdempotencyKeyModel,
    };
    pub use super::notification::{
        ActiveModel as NotificationActiveModel, Column as NotificationColumn,
        Entity as Notification, Model as NotificationModel, NotificationKind, NotificationStatus,
    };
    pub use super::payment::{
        ActiveModel as PaymentActiveModel, Column as PaymentColumn, Entity as Payment,
        Model as PaymentModel, PaymentProvider, PaymentStatus,
    };
    pub use super::promo_code::{
        ActiveModel as PromoCodeActiveModel, Column as PromoCodeColumn, Entity as PromoCode,
        Model as PromoCodeModel,
    };
    pub use super::promo_code_type::{
        ActiveModel as PromoCodeTypeActiveModel, Column as PromoCodeTypeColumn,
        Entity as PromoCodeType, Model as PromoCodeTypeModel,
    };
    pub use super::queue_draw::{
        ActiveModel as QueueDrawActiveModel, Column as QueueDrawColumn, Entity as QueueDraw,
        Model as QueueDrawModel,
    };
    pub use super::queue_entry::{
        ActiveModel as QueueEntryActiveModel, Column as QueueEntryColumn, Entity as QueueEntry,
        Model as QueueEntryModel,
    };
    pub use super::queue_tail::{
        ActiveModel as QueueTailActiveModel, Column as QueueTailColumn, Entity as QueueTail,
        Model as QueueTailModel,
    };
    pub use super::refund::{
        ActiveModel as RefundActiveModel, Column as RefundColumn, Entity as Refund,
        Model as RefundModel, RefundReason, RefundStatus,
    };
    pub use super::seat::{
        ActiveModel as SeatActiveModel, Column as SeatColumn, Entity as Seat, Model as SeatModel,
        SeatStatus,
    };
    pub use super::signing_key::{
        ActiveModel as SigningKeyActiveModel, Column as SigningKeyColumn, Entity as SigningKey,
        Model as SigningKeyModel,
    };
    pub use super::ticket::{
        ActiveModel as TicketActiveModel, Column as TicketColumn, Entity as Ticket,
        Model as TicketModel, TicketStatus,
    };
    pub use super::ticket_type::{
        ActiveModel as TicketTypeActiveModel, Column as TicketTypeColumn, Entity as TicketType,
        Model as TicketTypeModel,
    };
    pub use super::user::{
        ActiveModel as UserActiveModel, Column as UserColumn, Entity as User, Model as UserModel,
        Role,
    };
    pub use super::waitlist_entry::{
        ActiveModel as WaitlistEntryActiveModel, Column as WaitlistEntryColumn,
        Entity as WaitlistEntry, Model as WaitlistEntryModel, WaitlistStatus,
    };
    pub use super::webhook_endpoint::{
        ActiveModel as WebhookEndpointActiveModel, Column as WebhookEndpointColumn,
        Entity as WebhookEndpoint, Model as WebhookEndpointModel,
    };
    pub use super::webhook_endpoint_event::{
        ActiveModel as WebhookEndpointEventActiveModel, Column as WebhookEndpointEventColumn,
        Entity as WebhookEndpointEvent, Model as WebhookEndpointEventModel,
    };
    pub use super::webhook_message::{
        ActiveModel as WebhookMessageActiveModel, Column as WebhookMessageColumn,
        Entity as WebhookMessage, Model as WebhookMessageModel, WebhookMessageStatus,
    };
}
