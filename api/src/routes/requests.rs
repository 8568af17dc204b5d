//! What clients send: the request bodies as they arrive (serde, and their schema
//! for the API document), and their conversion into the domain's checked types,
//! every field's problem collected at once.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use uuid::Uuid;

use crate::domain::{
    ValidationErrors,
    events::{EventChanges, MAX_TICKETS, NewEvent, SaleSettings, WaitingRoomSettings},
    promo_codes::{NewPromoCode, PromoCodeChanges},
    sale::{Ask, Selection},
    seating::SeatMapInput,
    ticket_types::{NewTicketType, TicketTypeChanges, TicketTypeDraft, at},
    users::NewUser,
    webhooks::{EndpointChanges, NewEndpoint},
};
use webhook::DestinationRules;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(example = "Ada Lovelace", min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(value_type = super::RoleName, example = "customer")]
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

impl TryFrom<Registration> for NewUser {
    type Error = ValidationErrors;

    fn try_from(input: Registration) -> Result<Self, Self::Error> {
        NewUser::parse(&input.email, input.password, &input.name, &input.role)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventInput {
    #[schema(example = "Night of Rust", min_length = 1, max_length = 200)]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(example = "Hall A", min_length = 1, max_length = 200)]
    pub venue: String,
    /// RFC 3339; stored and returned in UTC.
    #[schema(example = "2030-05-01T19:00:00Z", format = DateTime)]
    pub starts_at: String,
    /// RFC 3339, after `starts_at`.
    #[schema(example = "2030-05-01T23:00:00Z", format = DateTime)]
    pub ends_at: String,
    /// Required without `seating`; with it, the seat count (and may be left out).
    #[serde(default)]
    #[schema(example = 100, minimum = 1, maximum = 1_000_000)]
    pub total_tickets: Option<i64>,
    /// The kinds of ticket it sells (1 to 20, distinct names); without them,
    /// one free "General admission" type holds every ticket.
    #[serde(default)]
    #[schema(max_items = 20, min_items = 1)]
    pub ticket_types: Option<Vec<TicketTypeInput>>,
    /// ISO 4217, in capitals: what the event's prices are in.
    #[serde(default)]
    #[schema(default = "EUR", example = "EUR", min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    /// How long a hold lasts before its tickets go back on sale.
    #[serde(default)]
    #[schema(default = 10, minimum = 1, maximum = 60)]
    pub hold_minutes: Option<i64>,
    /// How long a waitlist offer lasts.
    #[serde(default)]
    #[schema(default = 30, minimum = 1, maximum = 1440)]
    pub offer_minutes: Option<i64>,
    /// Reserved seating: the seat map, fixed from then on.
    #[serde(default)]
    pub seating: Option<SeatingInput>,
    /// RFC 3339: holds and bookings open then (409 `not_on_sale` before).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub on_sale_at: Option<String>,
    /// Paid bookings cancelled by their customers are refunded until then;
    /// unset, until the event starts.
    #[schema(format = DateTime)]
    pub refund_until: Option<String>,
    /// Sell through a waiting room: customers join a line and need an
    /// admission pass to hold or book.
    #[serde(default)]
    pub waiting_room: Option<WaitingRoomInput>,
}

/// A kind of ticket, as the organizer describes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketTypeInput {
    #[schema(example = "Early bird", min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Tax included, in the currency's minor unit (cents for EUR).
    #[schema(example = 2500, minimum = 0, maximum = 10_000_000)]
    pub price: i64,
    #[schema(example = 100, minimum = 1, maximum = 1_000_000)]
    pub quantity: Option<i64>,
    /// Percent, up to two decimals, included in the price.
    #[serde(default)]
    #[schema(default = 0, example = 19.5, minimum = 0, maximum = 100)]
    pub tax_rate: Option<f64>,
    /// RFC 3339: sold from then (409 `not_on_sale` before).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub sales_start: Option<String>,
    /// RFC 3339: sold until then, after `sales_start`.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub sales_end: Option<String>,
    #[serde(default)]
    #[schema(default = 10, minimum = 1, maximum = 10)]
    pub max_per_order: Option<i64>,
    /// Not listed, and not sold without a promo code that unlocks it.
    #[serde(default)]
    pub hidden: bool,
}

impl TicketTypeInput {
    /// The draft the domain checks; times read here, errors under `field`.
    fn draft(self, errors: &mut ValidationErrors, field: &str) -> TicketTypeDraft {
        let mut time = |name: &str, raw: Option<String>| {
            raw.and_then(|raw| timestamp(errors, &at(field, name), &raw))
        };
        let sales_start = time("sales_start", self.sales_start);
        let sales_end = time("sales_end", self.sales_end);
        TicketTypeDraft {
            name: self.name,
            description: self.description,
            price: self.price,
            quantity: self.quantity,
            tax_rate: self.tax_rate,
            sales_start,
            sales_end,
            max_per_order: self.max_per_order,
            hidden: self.hidden,
        }
    }
}

impl TryFrom<TicketTypeInput> for NewTicketType {
    type Error = ValidationErrors;

    fn try_from(input: TicketTypeInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let draft = input.draft(&mut errors, "");
        if draft.quantity.is_none() {
            errors.add("quantity", "is required");
        }
        match NewTicketType::parse(&mut errors, "", draft, MAX_TICKETS) {
            Some(new) if errors.is_empty() => Ok(new),
            _ => Err(errors),
        }
    }
}

/// What to change in a ticket type; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketTypePatch {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// An empty string removes it.
    pub description: Option<String>,
    /// For holds made from now on.
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub price: Option<i64>,
    /// Not below the tickets held and booked; moves the event's total.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub quantity: Option<i64>,
    #[schema(format = DateTime)]
    pub sales_start: Option<String>,
    #[schema(format = DateTime)]
    pub sales_end: Option<String>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_per_order: Option<i64>,
}

impl TryFrom<TicketTypePatch> for TicketTypeChanges {
    type Error = ValidationErrors;

    fn try_from(patch: TicketTypePatch) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let sales_start = patch
            .sales_start
            .and_then(|raw| timestamp(&mut errors, "sales_start", &raw));
        let sales_end = patch
            .sales_end
            .and_then(|raw| timestamp(&mut errors, "sales_end", &raw));
        TicketTypeChanges::parse(
            errors,
            patch.name.as_deref(),
            patch.description,
            patch.price,
            patch.quantity,
            sales_start,
            sales_end,
            patch.max_per_order,
            MAX_TICKETS,
        )
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomInput {
    pub enabled: bool,
    /// Customers admitted per minute, in line order.
    #[serde(default)]
    #[schema(default = 60, minimum = 1, maximum = 600000)]
    pub admit_per_minute: Option<i64>,
    /// How long an admission pass lasts.
    #[serde(default)]
    #[schema(default = 10, minimum = 1, maximum = 120)]
    pub pass_minutes: Option<i64>,
}

fn sale_settings(
    errors: &mut ValidationErrors,
    on_sale_at: Option<&str>,
    refund_until: Option<&str>,
    waiting_room: Option<WaitingRoomInput>,
) -> SaleSettings {
    SaleSettings {
        on_sale_at: on_sale_at.and_then(|raw| timestamp(errors, "on_sale_at", raw)),
        refund_until: refund_until.and_then(|raw| timestamp(errors, "refund_until", raw)),
        waiting_room: waiting_room.and_then(|room| {
            WaitingRoomSettings::parse(
                errors,
                room.enabled,
                room.admit_per_minute,
                room.pass_minutes,
            )
        }),
    }
}

/// Sections in order of preference (best first), each with its rows; up to
/// 100,000 seats. Seats are numbered from 1 along each row.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatingInput {
    pub sections: Vec<SectionInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionInput {
    #[schema(example = "Floor", min_length = 1, max_length = 100)]
    pub name: String,
    /// The name of the ticket type its seats are, from the event's
    /// `ticket_types` (needed when it lists them).
    #[serde(default)]
    pub ticket_type: Option<String>,
    /// Best row first.
    pub rows: Vec<RowInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowInput {
    #[schema(example = "A", min_length = 1, max_length = 20)]
    pub label: String,
    #[schema(example = 20, minimum = 1, maximum = 1000)]
    pub seats: i64,
}

impl From<SeatingInput> for SeatMapInput {
    fn from(input: SeatingInput) -> Self {
        let section_types = input
            .sections
            .iter()
            .map(|section| section.ticket_type.clone())
            .collect();
        SeatMapInput {
            sections: input
                .sections
                .into_iter()
                .map(|section| {
                    let rows = section
                        .rows
                        .into_iter()
                        .map(|r| (r.label, r.seats))
                        .collect();
                    (section.name, rows)
                })
                .collect(),
            section_types,
        }
    }
}

/// Absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// An empty string removes it.
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub venue: Option<String>,
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// Not below the tickets already booked or held; not for a seated event.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub total_tickets: Option<i64>,
    /// For holds made from now on.
    #[schema(minimum = 1, maximum = 60)]
    pub hold_minutes: Option<i64>,
    /// For waitlist offers made from now on.
    #[schema(minimum = 1, maximum = 1440)]
    pub offer_minutes: Option<i64>,
    #[schema(format = DateTime)]
    pub on_sale_at: Option<String>,
    /// Paid bookings cancelled by their customers are refunded until then;
    /// unset, until the event starts.
    #[schema(format = DateTime)]
    pub refund_until: Option<String>,
    /// Replaces the waiting room's settings.
    pub waiting_room: Option<WaitingRoomInput>,
}

/// An RFC 3339 time, in UTC at the precision the database keeps, within the
/// years events may use.
fn timestamp(errors: &mut ValidationErrors, field: &str, raw: &str) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(t) => crate::domain::moment(errors, field, t.with_timezone(&Utc).trunc_subsecs(6)),
        Err(_) => {
            errors.add(
                field,
                "must be an RFC 3339 timestamp, e.g. 2030-05-01T19:30:00Z",
            );
            None
        }
    }
}

impl TryFrom<NewEventInput> for NewEvent {
    type Error = ValidationErrors;

    fn try_from(input: NewEventInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let starts_at = timestamp(&mut errors, "starts_at", &input.starts_at);
        let ends_at = timestamp(&mut errors, "ends_at", &input.ends_at);
        let sale = sale_settings(
            &mut errors,
            input.on_sale_at.as_deref(),
            input.refund_until.as_deref(),
            input.waiting_room,
        );
        let ticket_types = input.ticket_types.map(|types| {
            types
                .into_iter()
                .enumerate()
                .map(|(i, t)| t.draft(&mut errors, &format!("ticket_types[{i}]")))
                .collect()
        });
        NewEvent::parse(
            errors,
            &input.title,
            input.description,
            &input.venue,
            starts_at,
            ends_at,
            input.total_tickets,
            ticket_types,
            input.currency.as_deref(),
            input.hold_minutes,
            input.offer_minutes,
            input.seating.map(SeatMapInput::from),
            sale,
        )
    }
}

impl TryFrom<EventPatch> for EventChanges {
    type Error = ValidationErrors;

    fn try_from(patch: EventPatch) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let starts_at = patch
            .starts_at
            .and_then(|raw| timestamp(&mut errors, "starts_at", &raw));
        let ends_at = patch
            .ends_at
            .and_then(|raw| timestamp(&mut errors, "ends_at", &raw));
        let sale = sale_settings(
            &mut errors,
            patch.on_sale_at.as_deref(),
            patch.refund_until.as_deref(),
            patch.waiting_room,
        );
        EventChanges::parse(
            errors,
            patch.title.as_deref(),
            patch.description,
            patch.venue.as_deref(),
            starts_at,
            ends_at,
            patch.total_tickets,
            patch.hold_minutes,
            patch.offer_minutes,
            sale,
        )
    }
}

/// A place in a sold-out event's waitlist, for this many tickets.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitlistRequest {
    /// 1 to 10 tickets; 1 when absent.
    #[serde(default = "one")]
    #[schema(default = 1, example = 2, minimum = 1, maximum = 10)]
    pub quantity: i64,
    /// Wait for this type only; without it, returned tickets of any type.
    #[serde(default)]
    pub ticket_type_id: Option<Uuid>,
}

fn one() -> i64 {
    1
}

/// What to hold or book: a number of tickets, or (on a seated event) particular
/// seats. Without either, one ticket; on a seated event a quantity gets the best
/// available seats (adjacent in one row when a row has enough).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// 1 to 10 tickets; 1 when absent.
    #[serde(default)]
    #[schema(default = 1, example = 2, minimum = 1, maximum = 10)]
    pub quantity: Option<i64>,
    /// 1 to 10 seat ids of a seated event, all or nothing. Not with `quantity`.
    #[serde(default)]
    #[schema(max_items = 10, min_items = 1)]
    pub seat_ids: Option<Vec<Uuid>>,
    /// So many of each ticket type (1 to 10 tickets in all), all or nothing.
    /// Needed when more than one type is on sale; not with `quantity` or
    /// `seat_ids`.
    #[serde(default)]
    #[schema(max_items = 10, min_items = 1)]
    pub items: Option<Vec<ItemRequest>>,
    /// A discount on the types it covers, or hidden types it unlocks.
    #[serde(default)]
    #[schema(example = "EARLY10", min_length = 1, max_length = 40)]
    pub promo_code: Option<String>,
}

/// So many tickets of one type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub ticket_type_id: Uuid,
    #[schema(example = 2, minimum = 1, maximum = 10)]
    pub quantity: i64,
}

impl TicketRequest {
    /// The parts that make two requests the same, for `Idempotency-Key`.
    pub fn fingerprint(&self) -> String {
        match self.promo_code.as_deref().map(str::trim) {
            None | Some("") => self.tickets(),
            Some(code) => format!("{}|code:{}", self.tickets(), code.to_uppercase()),
        }
    }

    fn tickets(&self) -> String {
        if let Some(items) = &self.items {
            let mut items: Vec<String> = items
                .iter()
                .map(|item| format!("{}x{}", item.ticket_type_id, item.quantity))
                .collect();
            items.sort();
            return format!("items:{}", items.join(","));
        }
        match (&self.quantity, &self.seat_ids) {
            (_, Some(ids)) => {
                let mut ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                ids.sort();
                format!("seats:{}", ids.join(","))
            }
            (quantity, None) => quantity.unwrap_or(1).to_string(),
        }
    }
}

impl TryFrom<TicketRequest> for Ask {
    type Error = ValidationErrors;

    fn try_from(request: TicketRequest) -> Result<Self, Self::Error> {
        let promo_code = match request.promo_code {
            Some(code) if code.trim().is_empty() || code.chars().count() > 40 => {
                return Err(ValidationErrors::single(
                    "promo_code",
                    "must be 1 to 40 characters",
                ));
            }
            code => code,
        };
        let items = request.items.map(|items| {
            items
                .into_iter()
                .map(|item| (item.ticket_type_id, item.quantity))
                .collect()
        });
        Ok(Ask {
            selection: Selection::parse(request.quantity, items, request.seat_ids)?,
            promo_code,
        })
    }
}

/// A promo code as the organizer describes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoCodeInput {
    /// Letters, digits, `-` and `_`; matched whatever the case.
    #[schema(example = "EARLY10", min_length = 1, max_length = 40)]
    pub code: String,
    pub discount: DiscountInput,
    /// Tickets it may be used for, in all; none: no limit.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_uses: Option<i64>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub valid_from: Option<String>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
    /// The types it discounts; none: every type.
    #[serde(default)]
    pub ticket_type_ids: Vec<Uuid>,
    /// Hidden types it lets a customer buy.
    #[serde(default)]
    pub unlocks: Vec<Uuid>,
}

/// Exactly one of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountInput {
    /// Off each ticket's price.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub percent: Option<i64>,
    /// Minor units off each ticket (never below 0).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub amount: Option<i64>,
}

impl TryFrom<PromoCodeInput> for NewPromoCode {
    type Error = ValidationErrors;

    fn try_from(input: PromoCodeInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let valid_from = input
            .valid_from
            .and_then(|raw| timestamp(&mut errors, "valid_from", &raw));
        let valid_until = input
            .valid_until
            .and_then(|raw| timestamp(&mut errors, "valid_until", &raw));
        NewPromoCode::parse(
            errors,
            &input.code,
            input.discount.percent,
            input.discount.amount,
            input.max_uses,
            valid_from,
            valid_until,
            input.ticket_type_ids,
            input.unlocks,
        )
    }
}

/// What to change in a promo code; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoCodePatch {
    #[schema(minimum = 1)]
    pub max_uses: Option<i64>,
    #[schema(format = DateTime)]
    pub valid_from: Option<String>,
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
    pub disabled: Option<bool>,
}

impl TryFrom<PromoCodePatch> for PromoCodeChanges {
    type Error = ValidationErrors;

    fn try_from(patch: PromoCodePatch) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let valid_from = patch
            .valid_from
            .and_then(|raw| timestamp(&mut errors, "valid_from", &raw));
        let valid_until = patch
            .valid_until
            .and_then(|raw| timestamp(&mut errors, "valid_until", &raw));
        let max_uses = patch.max_uses.and_then(|n| match i32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                errors.add("max_uses", "must be at least 1");
                None
            }
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PromoCodeChanges {
            max_uses,
            valid_from,
            valid_until,
            disabled: patch.disabled,
        })
    }
}

/// A payment the organizer took elsewhere.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPaidInput {
    /// What identifies the payment in the organizer's books (a receipt
    /// number, a transfer reference): 1 to 200 characters.
    #[schema(example = "Cash, till 2, receipt 0042")]
    pub reference: String,
}

impl MarkPaidInput {
    pub fn reference(self) -> Result<String, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        crate::domain::text(
            &mut errors,
            "reference",
            &self.reference,
            crate::domain::payments::MAX_REFERENCE_CHARS,
        )
        .ok_or(errors)
    }
}

/// A door device's name, for the organizer's list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceInput {
    #[schema(example = "North gate, scanner 2")]
    pub name: String,
}

impl NewDeviceInput {
    pub fn name(self) -> Result<String, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        crate::domain::text(
            &mut errors,
            "name",
            &self.name,
            crate::domain::door::MAX_DEVICE_NAME_CHARS,
        )
        .ok_or(errors)
    }
}

/// A scanned ticket code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInInput {
    /// The ticket's code, as its QR code carries it.
    pub code: String,
}

/// Scans made while offline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadInput {
    /// Up to 1,000 (and 64 KiB in all).
    pub scans: Vec<ScanInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanInput {
    pub code: String,
    /// When the scanner read it (RFC 3339).
    #[schema(format = DateTime)]
    pub scanned_at: String,
}

impl UploadInput {
    pub fn scans(self) -> Result<Vec<crate::domain::door::Scan>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let scans = self
            .scans
            .into_iter()
            .enumerate()
            .filter_map(|(i, scan)| {
                let scanned_at = timestamp(
                    &mut errors,
                    &format!("scans[{i}].scanned_at"),
                    &scan.scanned_at,
                )?;
                Some(crate::domain::door::Scan {
                    code: scan.code,
                    scanned_at,
                })
            })
            .collect();
        if errors.is_empty() {
            Ok(scans)
        } else {
            Err(errors)
        }
    }
}

/// A webhook endpoint to add (SPEC §16).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointInput {
    #[schema(example = "https://crm.example.com/hooks/tickets")]
    pub url: String,
    /// Message types: `booking.confirmed`, `booking.cancelled`,
    /// `event.updated`, `event.cancelled`, `payment.refunded`,
    /// `ticket.checked_in`.
    pub events: Vec<String>,
    /// The organizer's events it is about; absent or empty: all of them.
    #[serde(default)]
    pub event_ids: Vec<Uuid>,
}

impl WebhookEndpointInput {
    pub fn parse(self, rules: DestinationRules) -> Result<NewEndpoint, ValidationErrors> {
        NewEndpoint::parse(self.url, self.events, self.event_ids, rules)
    }
}

/// What to change in a webhook endpoint; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// Empty: all of the organizer's events.
    pub event_ids: Option<Vec<Uuid>>,
    pub enabled: Option<bool>,
}

impl WebhookEndpointPatch {
    pub fn parse(self, rules: DestinationRules) -> Result<EndpointChanges, ValidationErrors> {
        EndpointChanges::parse(self.url, self.events, self.event_ids, self.enabled, rules)
    }
}
