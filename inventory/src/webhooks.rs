//! Webhook messages (SPEC §16), written in the transaction of the change they
//! tell of: one per enabled endpoint of the event's organizer that takes the
//! type and listens to the event. The worker's sweep queues them and its
//! delivery signs and sends them (`worker::webhooks`).

use chrono::{DateTime, Utc};
use entity::prelude::*;
use platform::db::now;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use serde::Serialize;
use uuid::Uuid;

/// What a message tells of (SPEC §16's types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BookingConfirmed,
    BookingCancelled,
    EventUpdated,
    EventCancelled,
    PaymentRefunded,
    TicketCheckedIn,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::BookingConfirmed,
        Kind::BookingCancelled,
        Kind::EventUpdated,
        Kind::EventCancelled,
        Kind::PaymentRefunded,
        Kind::TicketCheckedIn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::BookingConfirmed => "booking.confirmed",
            Kind::BookingCancelled => "booking.cancelled",
            Kind::EventUpdated => "event.updated",
            Kind::EventCancelled => "event.cancelled",
            Kind::PaymentRefunded => "payment.refunded",
            Kind::TicketCheckedIn => "ticket.checked_in",
        }
    }

    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The body of every message: `{id, type, created_at, data}`.
#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    id: String,
    r#type: &'static str,
    created_at: DateTime<Utc>,
    data: &'a T,
}

/// A message's `webhook-id` (and the `id` in its body).
pub fn message_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

/// Writes a message of `kind` about each of `subjects` (all of one event) to
/// every endpoint of the event's organizer that wants it; returns how many.
pub async fn publish<C: ConnectionTrait, T: Serialize>(
    db: &C,
    event_id: Uuid,
    kind: Kind,
    subjects: &[T],
) -> Result<usize, DbErr> {
    if subjects.is_empty() {
        return Ok(0);
    }
    let listening = Condition::any()
        .add(WebhookEndpointColumn::AllEvents.eq(true))
        .add(
            WebhookEndpointColumn::Id.in_subquery(
                Query::select()
                    .column(WebhookEndpointEventColumn::EndpointId)
                    .from(WebhookEndpointEvent)
                    .and_where(Expr::col(WebhookEndpointEventColumn::EventId).eq(event_id))
                    .to_owned(),
            ),
        );
    let organizer = Query::select()
        .column(EventColumn::OrganizerId)
        .from(Event)
        .and_where(Expr::col(EventColumn::Id).eq(event_id))
        .to_owned();
    let endpoints: Vec<Uuid> = WebhookEndpoint::find()
        .filter(WebhookEndpointColumn::OrganizerId.in_subquery(organizer))
        .filter(WebhookEndpointColumn::Enabled.eq(true))
        .filter(listening)
        .all(db)
        .await?
        .into_iter()
        .filter(|endpoint| endpoint.types.split(',').any(|t| t == kind.name()))
        .map(|endpoint| endpoint.id)
        .collect();
    if endpoints.is_empty() {
        return Ok(0);
    }
    let now = now();
    let mut rows = Vec::with_capacity(endpoints.len() * subjects.len());
    for subject in subjects {
        for endpoint_id in &endpoints {
            let id = Uuid::now_v7();
            let payload = serde_json::to_string(&Body {
                id: message_id(id),
                r#type: kind.name(),
                created_at: now,
                data: subject,
            })
            .map_err(|e| DbErr::Custom(format!("a webhook body: {e}")))?;
            rows.push(WebhookMessageActiveModel {
                id: Set(id),
                endpoint_id: Set(*endpoint_id),
                event_id: Set(event_id),
                r#type: Set(kind.name().to_owned()),
                payload: Set(payload),
                status: Set(WebhookMessageStatus::Pending),
                attempts: Set(0),
                next_attempt_at: Set(now),
                locked_until: Set(None),
                enqueued_at: Set(None),
                last_status_code: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
            });
        }
    }
    let count = rows.len();
    platform::db::insert_all(db, rows).await?;
    Ok(count)
}

/// A booking as a message carries it.
#[derive(Debug, Serialize)]
pub struct BookingData {
    pub booking: BookingSnapshot,
}

#[derive(Debug, Serialize)]
pub struct BookingSnapshot {
    pub id: Uuid,
    pub event_id: Uuid,
    pub customer_id: Uuid,
    pub quantity: i32,
    pub total: i64,
    pub currency: String,
    pub status: BookingStatus,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<&BookingModel> for BookingData {
    fn from(b: &BookingModel) -> Self {
        Self {
            booking: BookingSnapshot {
                id: b.id,
                event_id: b.event_id,
                customer_id: b.user_id,
                quantity: b.quantity,
                total: b.total,
                currency: b.currency.clone(),
                status: b.status,
                created_at: b.created_at,
                cancelled_at: b.cancelled_at,
            },
        }
    }
}

/// An event as a message carries it.
#[derive(Debug, Serialize)]
pub struct EventData {
    pub event: EventSnapshot,
}

#[derive(Debug, Serialize)]
pub struct EventSnapshot {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: EventStatus,
    pub total_tickets: i32,
    pub updated_at: DateTime<Utc>,
}

impl From<&EventModel> for EventData {
    fn from(e: &EventModel) -> Self {
        Self {
            event: EventSnapshot {
                id: e.id,
                title: e.title.clone(),
                description: e.description.clone(),
                venue: e.venue.clone(),
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                status: e.status,
                total_tickets: e.total_tickets,
                updated_at: e.updated_at,
            },
        }
    }
}

/// A refund, when the money has gone back.
#[derive(Debug, Serialize)]
pub struct RefundData {
    pub refund: RefundSnapshot,
}

#[derive(Debug, Serialize)]
pub struct RefundSnapshot {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub booking_id: Option<Uuid>,
    pub event_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub reason: RefundReason,
}

impl From<&RefundModel> for RefundData {
    fn from(r: &RefundModel) -> Self {
        Self {
            refund: RefundSnapshot {
                id: r.id,
                payment_id: r.payment_id,
                booking_id: r.booking_id,
                event_id: r.event_id,
                amount: r.amount,
                currency: r.currency.clone(),
                reason: r.reason,
            },
        }
    }
}

/// Where endpoints may point (`WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE`;
/// both off: public `https://` only), for the api and the worker alike.
pub fn destinations_from_env() -> Result<webhook::DestinationRules, platform::env::ConfigError> {
    Ok(webhook::DestinationRules {
        allow_http: platform::env::parsed_or("WEBHOOK_ALLOW_HTTP", false)?,
        allow_private: platform::env::parsed_or("WEBHOOK_ALLOW_PRIVATE", false)?,
    })
}

/// A ticket, when it was checked in.
#[derive(Debug, Serialize)]
pub struct TicketData {
    pub ticket: TicketSnapshot,
}

#[derive(Debug, Serialize)]
pub struct TicketSnapshot {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    pub seat_id: Option<Uuid>,
    pub checked_in_at: Option<DateTime<Utc>>,
}

impl From<&TicketModel> for TicketData {
    fn from(t: &TicketModel) -> Self {
        Self {
            ticket: TicketSnapshot {
                id: t.id,
                booking_id: t.booking_id,
                event_id: t.event_id,
                ticket_type_id: t.ticket_type_id,
                seat_id: t.seat_id,
                checked_in_at: t.checked_in_at,
            },
        }
    }
}
