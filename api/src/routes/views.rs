//! The JSON representations the api returns.

use chrono::{DateTime, Utc};
use entity::prelude::*;

use crate::domain::{
    admission::{Standing, Status as QueueStatus},
    door::{Admitted, TicketDetails},
    promo_codes::PromoCodeDetails,
    queries::EventDetails,
    refunds::{BookingPayment, BookingPaymentStatus},
    report::{Report, TaxLine, TypeSales},
    sale::{BookingDetails, HoldDetails},
    seating::FreeRun,
    waiting_room::Statistics,
    waitlist::Place,
    webhooks::EndpointDetails,
};
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
    /// `available + held + booked == total`, always.
    pub total_tickets: i32,
    pub available_tickets: i32,
    /// In active holds.
    pub held_tickets: i32,
    /// In confirmed bookings.
    pub booked_tickets: i32,
    /// ISO 4217: what the event's prices are in.
    #[schema(example = "EUR")]
    pub currency: String,
    /// The kinds of ticket it sells, in order (hidden ones are not listed);
    /// the event's counts are their sums.
    pub ticket_types: Vec<TicketTypeView>,
    /// How long a hold lasts.
    pub hold_minutes: i32,
    /// How long a waitlist offer lasts.
    pub offer_minutes: i32,
    /// Holds and bookings open then; `null`: on sale.
    pub on_sale_at: Option<DateTime<Utc>>,
    /// A paid booking cancelled by its customer is refunded until then
    /// (unset: until `starts_at`).
    pub refund_until: Option<DateTime<Utc>>,
    pub waiting_room: WaitingRoomView,
    /// Reserved seating: see `GET /events/{id}/seats`.
    pub seated: bool,
    #[schema(value_type = EventStatusName)]
    pub status: EventStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EventDetails> for EventView {
    fn from(details: EventDetails) -> Self {
        let e = details.event;
        Self {
            ticket_types: details
                .ticket_types
                .into_iter()
                .filter(|t| !t.hidden)
                .map(TicketTypeView::from)
                .collect(),
            id: e.id,
            organizer_id: e.organizer_id,
            title: e.title,
            description: e.description,
            venue: e.venue,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            total_tickets: e.total_tickets,
            available_tickets: e.available_tickets,
            held_tickets: e.held_tickets,
            booked_tickets: e.booked_tickets,
            currency: e.currency,
            hold_minutes: e.hold_minutes,
            offer_minutes: e.offer_minutes,
            on_sale_at: e.on_sale_at,
            refund_until: e.refund_until,
            waiting_room: WaitingRoomView {
                enabled: e.waiting_room_enabled,
                admit_per_minute: e.admit_per_minute,
                pass_minutes: e.pass_minutes,
            },
            seated: e.seated,
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
    /// The tickets by type, at the prices they were taken at.
    pub items: Vec<ItemView>,
    /// Σ quantity × unit price, in the currency's minor unit.
    #[schema(example = 4000)]
    pub total: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    /// On a seated event, the seats; otherwise empty.
    pub seats: Vec<SeatView>,
    #[schema(value_type = BookingStatusName)]
    pub status: BookingStatus,
    /// How it was paid and what went back; `null` when free.
    pub payment: Option<BookingPaymentView>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingPaymentView {
    #[schema(value_type = ProviderName)]
    pub provider: PaymentProvider,
    #[schema(value_type = BookingPaymentStatusName)]
    pub status: &'static str,
    /// In the currency's minor unit.
    pub amount: i64,
    pub refunded_amount: i64,
    pub currency: String,
}

impl From<BookingPayment> for BookingPaymentView {
    fn from(p: BookingPayment) -> Self {
        Self {
            provider: p.provider,
            status: match p.status {
                BookingPaymentStatus::Paid => "paid",
                BookingPaymentStatus::RefundPending => "refund_pending",
                BookingPaymentStatus::Refunded => "refunded",
                BookingPaymentStatus::RefundFailed => "refund_failed",
            },
            amount: p.amount,
            refunded_amount: p.refunded_amount,
            currency: p.currency,
        }
    }
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BookingPaymentStatusName {
    Paid,
    RefundPending,
    Refunded,
    RefundFailed,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ProviderName {
    Stripe,
    Manual,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PaymentStatusName {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

/// One attempt at paying for a hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub hold_id: Uuid,
    #[schema(value_type = ProviderName)]
    pub provider: PaymentProvider,
    #[schema(value_type = PaymentStatusName)]
    pub status: PaymentStatus,
    /// The hold's total, in the currency's minor unit.
    #[schema(example = 4000)]
    pub amount: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    /// For Stripe.js (`stripe.confirmCardPayment`); only its customer sees it.
    pub client_secret: Option<String>,
    /// The PaymentIntent id.
    #[schema(example = "pi_3Nx…")]
    pub provider_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<PaymentModel> for PaymentView {
    fn from(p: PaymentModel) -> Self {
        Self {
            id: p.id,
            hold_id: p.hold_id,
            provider: p.provider,
            status: p.status,
            amount: p.amount,
            currency: p.currency,
            client_secret: p.client_secret,
            provider_ref: p.provider_ref,
            created_at: p.created_at,
        }
    }
}

impl From<BookingDetails> for BookingView {
    fn from(details: BookingDetails) -> Self {
        let b = details.booking;
        Self {
            id: b.id,
            event_id: b.event_id,
            user_id: b.user_id,
            quantity: b.quantity,
            items: details.items.into_iter().map(ItemView::from).collect(),
            total: b.total,
            currency: b.currency,
            seats: details.seats.into_iter().map(SeatView::from).collect(),
            status: b.status,
            payment: details.payment.map(BookingPaymentView::from),
            created_at: b.created_at,
            cancelled_at: b.cancelled_at,
        }
    }
}

/// A kind of ticket an event sells.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketTypeView {
    pub id: Uuid,
    #[schema(example = "Early bird")]
    pub name: String,
    pub description: Option<String>,
    /// Tax included, in the event currency's minor unit.
    #[schema(example = 2500)]
    pub price: i64,
    /// Percent, up to two decimals.
    #[schema(example = 19.5)]
    pub tax_rate: f64,
    /// `available + held + booked == quantity`, always.
    pub quantity: i32,
    pub available: i32,
    pub held: i32,
    pub booked: i32,
    pub sales_start: Option<DateTime<Utc>>,
    pub sales_end: Option<DateTime<Utc>>,
    #[schema(example = 10)]
    pub max_per_order: i32,
    pub hidden: bool,
}

impl From<TicketTypeModel> for TicketTypeView {
    fn from(t: TicketTypeModel) -> Self {
        Self {
            id: t.id,
            name: t.name,
            description: t.description,
            price: t.price,
            tax_rate: f64::from(t.tax_rate) / 100.0,
            quantity: t.quantity,
            available: t.available,
            held: t.held,
            booked: t.booked,
            sales_start: t.sales_start,
            sales_end: t.sales_end,
            max_per_order: t.max_per_order,
            hidden: t.hidden,
        }
    }
}

/// So many tickets of one type in a hold or booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    pub ticket_type_id: Uuid,
    #[schema(example = "General admission")]
    pub name: String,
    #[schema(example = 2)]
    pub quantity: i32,
    /// Fixed when the tickets were taken, in the currency's minor unit.
    #[schema(example = 2000)]
    pub unit_price: i64,
    /// Off each ticket, by a promo code.
    #[schema(example = 200)]
    pub discount: i64,
}

impl From<crate::domain::sale::Item> for ItemView {
    fn from(item: crate::domain::sale::Item) -> Self {
        Self {
            ticket_type_id: item.ticket_type_id,
            name: item.name,
            quantity: item.quantity,
            unit_price: item.unit_price,
            discount: item.discount,
        }
    }
}

/// A seat, as holds and bookings name it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatView {
    pub id: Uuid,
    #[schema(example = "Floor")]
    pub section: String,
    #[schema(example = "A")]
    pub row: String,
    #[schema(example = 12)]
    pub number: i32,
    #[schema(example = "Floor A-12")]
    pub label: String,
}

impl From<SeatModel> for SeatView {
    fn from(seat: SeatModel) -> Self {
        Self {
            id: seat.id,
            section: seat.section,
            row: seat.row,
            number: seat.number,
            label: seat.label,
        }
    }
}

/// A seat on the seat map, with whether it can be had (never by whom).
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatStatusView {
    #[serde(flatten)]
    pub seat: SeatView,
    #[schema(value_type = SeatStatusName)]
    pub status: SeatStatus,
}

impl From<SeatModel> for SeatStatusView {
    fn from(seat: SeatModel) -> Self {
        Self {
            status: seat.status,
            seat: seat.into(),
        }
    }
}

/// A page of the seat map.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatPageView {
    pub items: Vec<SeatStatusView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Seats `from` to `to` of a row, all available.
#[derive(Debug, Serialize, ToSchema)]
pub struct FreeRunView {
    pub section: String,
    pub row: String,
    pub from: i32,
    pub to: i32,
}

impl From<FreeRun> for FreeRunView {
    fn from(run: FreeRun) -> Self {
        Self {
            section: run.section,
            row: run.row,
            from: run.from,
            to: run.to,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub quantity: i32,
    /// The tickets by type, at the prices they were taken at.
    pub items: Vec<ItemView>,
    /// Σ quantity × unit price, in the currency's minor unit.
    #[schema(example = 4000)]
    pub total: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    /// On a seated event, the seats held; otherwise empty.
    pub seats: Vec<SeatView>,
    #[schema(value_type = HoldStatusName)]
    pub status: HoldStatus,
    /// While active, the tickets are the customer's until then.
    pub expires_at: DateTime<Utc>,
    /// Once confirmed, the booking it became.
    pub booking_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<HoldDetails> for HoldView {
    fn from(details: HoldDetails) -> Self {
        let h = details.hold;
        Self {
            id: h.id,
            event_id: h.event_id,
            user_id: h.user_id,
            quantity: h.quantity,
            items: details.items.into_iter().map(ItemView::from).collect(),
            total: h.total,
            currency: h.currency.clone(),
            seats: details.seats.into_iter().map(SeatView::from).collect(),
            status: h.status,
            expires_at: h.expires_at,
            booking_id: h.booking_id,
            created_at: h.created_at,
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

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum WebhookDeliveryStatusName {
    Pending,
    Sending,
    Delivered,
    Failed,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HoldStatusName {
    Active,
    Confirmed,
    Released,
    Expired,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingRoomView {
    pub enabled: bool,
    pub admit_per_minute: i32,
    pub pass_minutes: i32,
}

/// Where a customer stands in an event's waiting room.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    #[schema(value_type = QueueStatusName)]
    pub status: &'static str,
    /// While waiting: how many are ahead, plus one. `null` before the on-sale,
    /// when the order of those who came early is not yet drawn.
    pub position: Option<i64>,
    pub estimated_wait_secs: Option<i64>,
    /// When the admission pass ends (or will, once your turn comes).
    pub pass_expires_at: Option<DateTime<Utc>>,
}

impl From<Standing> for QueueView {
    fn from(s: Standing) -> Self {
        Self {
            status: match s.status {
                QueueStatus::Waiting => "waiting",
                QueueStatus::Admitted => "admitted",
                QueueStatus::Expired => "expired",
            },
            position: s.position,
            estimated_wait_secs: s.estimated_wait_secs,
            pass_expires_at: s.pass_expires_at,
        }
    }
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum QueueStatusName {
    Waiting,
    Admitted,
    Expired,
}

/// The organizer's view of the waiting room.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatisticsView {
    pub waiting: u64,
    pub admitted: u64,
    pub expired: u64,
    pub served: u64,
}

impl From<Statistics> for QueueStatisticsView {
    fn from(s: Statistics) -> Self {
        Self {
            waiting: s.waiting,
            admitted: s.admitted,
            expired: s.expired,
            served: s.served,
        }
    }
}

/// A place in an event's waitlist.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistView {
    pub id: Uuid,
    pub event_id: Uuid,
    /// 1 is next; `null` once offered or left.
    pub position: Option<u64>,
    pub quantity: i32,
    /// Waiting for this type only; `null`: any type.
    pub ticket_type_id: Option<Uuid>,
    #[schema(value_type = WaitlistStatusName)]
    pub status: WaitlistStatus,
    /// Once offered: the hold made for you (confirm it to book).
    pub hold_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<Place> for WaitlistView {
    fn from(place: Place) -> Self {
        let e = place.entry;
        Self {
            id: e.id,
            event_id: e.event_id,
            position: place.position,
            quantity: e.quantity,
            ticket_type_id: e.ticket_type_id,
            status: e.status,
            hold_id: e.hold_id,
            created_at: e.created_at,
        }
    }
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum WaitlistStatusName {
    Waiting,
    Offered,
    Left,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SeatStatusName {
    Available,
    Held,
    Booked,
}

/// A promo code, with how many tickets it was used for.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromoCodeView {
    pub id: Uuid,
    #[schema(example = "EARLY10")]
    pub code: String,
    pub discount: DiscountView,
    pub max_uses: Option<i32>,
    /// Tickets held or booked with it now (a use comes back when its hold
    /// ends unconfirmed or its booking is cancelled).
    pub used: i32,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// The types it discounts; empty: every type.
    pub ticket_type_ids: Vec<Uuid>,
    pub unlocks: Vec<Uuid>,
    pub disabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

impl From<PromoCodeDetails> for PromoCodeView {
    fn from(details: PromoCodeDetails) -> Self {
        let c = details.code;
        Self {
            id: c.id,
            code: c.code,
            discount: DiscountView {
                percent: c.percent,
                amount: c.amount,
            },
            max_uses: c.max_uses,
            used: c.used,
            valid_from: c.valid_from,
            valid_until: c.valid_until,
            ticket_type_ids: details.ticket_type_ids,
            unlocks: details.unlocks,
            disabled: c.disabled,
        }
    }
}

/// What an event sold and took; money in the currency's minor unit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    #[schema(example = "EUR")]
    pub currency: String,
    pub ticket_types: Vec<TypeSalesView>,
    /// Taken by payments (Stripe and manual), refunded or not.
    pub gross: i64,
    /// Refunded, or being refunded.
    pub refunded: i64,
    /// `gross - refunded`.
    pub net: i64,
    /// The confirmed bookings' revenue by tax rate, split into net and tax
    /// (prices include tax).
    pub tax: Vec<TaxView>,
    /// Promo code discounts on the confirmed bookings.
    pub discounts: i64,
    /// Confirmed bookings.
    pub bookings: u64,
    pub cancelled: u64,
    /// Tickets admitted at the door.
    pub checked_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeSalesView {
    pub id: Uuid,
    pub name: String,
    pub sold: i32,
    pub held: i32,
    pub available: i32,
    /// Of its confirmed bookings, after discounts.
    pub revenue: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaxView {
    /// Percent, up to two decimals.
    #[schema(example = 19.5)]
    pub rate: f64,
    pub net: i64,
    pub tax: i64,
}

impl From<Report> for ReportView {
    fn from(r: Report) -> Self {
        Self {
            currency: r.currency,
            ticket_types: r
                .ticket_types
                .into_iter()
                .map(|t: TypeSales| TypeSalesView {
                    id: t.id,
                    name: t.name,
                    sold: t.sold,
                    held: t.held,
                    available: t.available,
                    revenue: t.revenue,
                })
                .collect(),
            gross: r.gross,
            refunded: r.refunded,
            net: r.net,
            tax: r
                .tax
                .into_iter()
                .map(|t: TaxLine| TaxView {
                    rate: f64::from(t.rate) / 100.0,
                    net: t.net,
                    tax: t.tax,
                })
                .collect(),
            discounts: r.discounts,
            bookings: r.bookings,
            cancelled: r.cancelled,
            checked_in: r.checked_in,
        }
    }
}

/// One admission: a unit of a confirmed booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    #[schema(example = "Standard")]
    pub ticket_type: String,
    /// On a seated event, the seat's label.
    #[schema(example = "Stalls A-5")]
    pub seat: Option<String>,
    #[schema(value_type = TicketStatusName)]
    pub status: TicketStatus,
    pub checked_in_at: Option<DateTime<Utc>>,
    /// What its QR code carries: 128 URL-safe characters, verifiable offline
    /// (README, "Ticket codes").
    pub code: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TicketStatusName {
    Valid,
    Cancelled,
}

impl From<TicketDetails> for TicketView {
    fn from(t: TicketDetails) -> Self {
        Self {
            id: t.ticket.id,
            booking_id: t.ticket.booking_id,
            event_id: t.ticket.event_id,
            ticket_type_id: t.ticket.ticket_type_id,
            ticket_type: t.ticket_type,
            seat: t.seat,
            status: t.ticket.status,
            checked_in_at: t.ticket.checked_in_at,
            code: t.code,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    #[schema(example = "ed25519")]
    pub algorithm: &'static str,
    /// base64url (no padding) of the raw 32-byte public key.
    pub public_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DoorDeviceView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub name: String,
    /// Shown once, when the device is made: its bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl DoorDeviceView {
    pub fn with_token(device: DoorDeviceModel, token: String) -> Self {
        Self {
            token: Some(token),
            ..device.into()
        }
    }
}

impl From<DoorDeviceModel> for DoorDeviceView {
    fn from(d: DoorDeviceModel) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            name: d.name,
            token: None,
            created_at: d.created_at,
            revoked_at: d.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendeeNameView {
    pub name: String,
}

/// A ticket admitted at the door.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckedInView {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub ticket: TicketView,
    pub attendee: AttendeeNameView,
    pub checked_in_at: Option<DateTime<Utc>>,
}

impl From<Admitted> for CheckedInView {
    fn from(a: Admitted) -> Self {
        Self {
            status: "ok",
            checked_in_at: a.ticket.ticket.checked_in_at,
            ticket: a.ticket.into(),
            attendee: AttendeeNameView { name: a.attendee },
        }
    }
}

/// What one uploaded scan did: admitted (`status: ok`, as a scan answers),
/// or refused (`status: error`, with the error a scan would get).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanResultView {
    #[schema(example = "ok")]
    pub status: &'static str,
    pub ticket: Option<TicketView>,
    pub attendee: Option<AttendeeNameView>,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub error: Option<crate::http::error::ErrorDetail>,
}

impl From<Result<Admitted, crate::domain::Error>> for ScanResultView {
    fn from(result: Result<Admitted, crate::domain::Error>) -> Self {
        match result {
            Ok(admitted) => {
                let view = CheckedInView::from(admitted);
                Self {
                    status: "ok",
                    ticket: Some(view.ticket),
                    attendee: Some(view.attendee),
                    checked_in_at: view.checked_in_at,
                    error: None,
                }
            }
            Err(error) => Self {
                status: "error",
                ticket: None,
                attendee: None,
                checked_in_at: None,
                error: Some(crate::http::ApiError::from(error).detail()),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    pub results: Vec<ScanResultView>,
}

/// A ticket as a scanner caches it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CachedTicketView {
    pub id: Uuid,
    #[schema(value_type = TicketStatusName)]
    pub status: TicketStatus,
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketCachePage {
    pub items: Vec<CachedTicketView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl TicketCachePage {
    pub fn new(tickets: Vec<TicketModel>, next: Option<Uuid>) -> Self {
        Self {
            items: tickets
                .into_iter()
                .map(|t| CachedTicketView {
                    id: t.id,
                    status: t.status,
                    checked_in_at: t.checked_in_at,
                })
                .collect(),
            next_cursor: next.map(|id| id.to_string()),
        }
    }
}

/// A webhook endpoint; `secret` only in the answer that made it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// The events it is about; empty: all of the organizer's.
    pub event_ids: Vec<Uuid>,
    /// `whsec_` + base64 of the signing key: shown once, at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub enabled: bool,
    /// Why it was switched off, when it was not its organizer.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<EndpointDetails> for WebhookEndpointView {
    fn from(details: EndpointDetails) -> Self {
        let events = details.types();
        let e = details.endpoint;
        Self {
            id: e.id,
            url: e.url,
            events,
            event_ids: details.event_ids,
            secret: None,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
        }
    }
}

/// One message to an endpoint, and how its delivery went.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    /// Its `webhook-id`, the same on every attempt.
    #[schema(example = "msg_0190f4b2000070008000000000000001")]
    pub id: String,
    #[schema(example = "booking.confirmed")]
    pub r#type: String,
    /// `pending` (waiting for its next attempt), `sending`, `delivered` or `failed`.
    #[schema(value_type = WebhookDeliveryStatusName)]
    pub status: WebhookMessageStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookMessageModel> for WebhookDeliveryView {
    fn from(m: WebhookMessageModel) -> Self {
        Self {
            id: inventory::webhooks::message_id(m.id),
            r#type: m.r#type,
            status: m.status,
            attempts: m.attempts,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            next_attempt_at: m.next_attempt_at,
            created_at: m.created_at,
            delivered_at: m.delivered_at,
        }
    }
}
