//! Ticket types as an organizer describes them (SPEC §13): each field
//! checked, every problem reported at once, under the field's own name
//! (`ticket_types[1].price`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{ValidationErrors, sale::MAX_QUANTITY, validation};

pub const MAX_TYPES: usize = 20;
pub const MAX_PRICE: i64 = 10_000_000;
const NAME_MAX_CHARS: usize = 100;
const DESCRIPTION_MAX_CHARS: usize = 2_000;

/// A ticket type as given, times already read.
#[derive(Debug, Clone, Default)]
pub struct TicketTypeDraft {
    pub name: String,
    pub description: Option<String>,
    pub price: i64,
    pub quantity: Option<i64>,
    /// Percent, up to two decimals.
    pub tax_rate: Option<f64>,
    pub sales_start: Option<DateTime<Utc>>,
    pub sales_end: Option<DateTime<Utc>>,
    pub max_per_order: Option<i64>,
    pub hidden: bool,
}

/// A checked ticket type, not yet written.
#[derive(Debug, Clone)]
pub struct NewTicketType {
    pub name: String,
    pub description: Option<String>,
    pub price: i64,
    /// `None` on a seated event: its seats.
    pub quantity: Option<i32>,
    /// Hundredths of a percent.
    pub tax_rate: i32,
    pub sales_start: Option<DateTime<Utc>>,
    pub sales_end: Option<DateTime<Utc>>,
    pub max_per_order: i32,
    pub hidden: bool,
}

impl NewTicketType {
    /// Its row, `quantity` tickets all available, the event's `position`th.
    pub fn into_row(
        self,
        event_id: uuid::Uuid,
        position: i32,
        quantity: i32,
        at: DateTime<Utc>,
    ) -> entity::prelude::TicketTypeModel {
        entity::prelude::TicketTypeModel {
            id: uuid::Uuid::now_v7(),
            event_id,
            position,
            name: self.name,
            description: self.description,
            price: self.price,
            tax_rate: self.tax_rate,
            quantity,
            available: quantity,
            held: 0,
            booked: 0,
            sales_start: self.sales_start,
            sales_end: self.sales_end,
            max_per_order: self.max_per_order,
            hidden: self.hidden,
            created_at: at,
            updated_at: at,
        }
    }

    /// Checks one type; `field` is where it sits (`ticket_types[0]`).
    pub fn parse(
        errors: &mut ValidationErrors,
        field: &str,
        draft: TicketTypeDraft,
        max_quantity: i64,
    ) -> Option<Self> {
        let before = errors.len();
        let name = validation::text(errors, &at(field, "name"), &draft.name, NAME_MAX_CHARS);
        let description = draft.description.and_then(|raw| {
            validation::checked_text(
                errors,
                &at(field, "description"),
                &raw,
                validation::Lines::Multi,
                DESCRIPTION_MAX_CHARS,
            )
            .filter(|d| !d.is_empty())
        });
        if !(0..=MAX_PRICE).contains(&draft.price) {
            errors.add(
                &at(field, "price"),
                format!("must be from 0 to {MAX_PRICE}, in the currency's minor unit"),
            );
        }
        let quantity = draft
            .quantity
            .and_then(|n| validation::count(errors, &at(field, "quantity"), n, max_quantity));
        let tax_rate = tax_rate(
            errors,
            &at(field, "tax_rate"),
            draft.tax_rate.unwrap_or(0.0),
        );
        let max_per_order = validation::count(
            errors,
            &at(field, "max_per_order"),
            draft.max_per_order.unwrap_or(MAX_QUANTITY),
            MAX_QUANTITY,
        );
        if let (Some(start), Some(end)) = (draft.sales_start, draft.sales_end)
            && end <= start
        {
            errors.add(&at(field, "sales_end"), "must be after sales_start");
        }
        if errors.len() != before {
            return None;
        }
        Some(Self {
            name: name?,
            description,
            price: draft.price,
            quantity,
            tax_rate: tax_rate?,
            sales_start: draft.sales_start,
            sales_end: draft.sales_end,
            max_per_order: max_per_order?,
            hidden: draft.hidden,
        })
    }

    /// Checks an event's list: 1 to [`MAX_TYPES`] types with distinct names,
    /// each with a quantity (`quantities`: general admission; a seated
    /// event's types are as many as their seats, checked by the caller).
    pub fn parse_all(
        errors: &mut ValidationErrors,
        drafts: Vec<TicketTypeDraft>,
        quantities: bool,
        max_quantity: i64,
    ) -> Option<Vec<Self>> {
        if drafts.is_empty() || drafts.len() > MAX_TYPES {
            errors.add(
                "ticket_types",
                format!("must list between 1 and {MAX_TYPES} ticket types"),
            );
            return None;
        }
        let before = errors.len();
        let mut names = BTreeSet::new();
        let mut types = Vec::with_capacity(drafts.len());
        for (i, draft) in drafts.into_iter().enumerate() {
            let field = format!("ticket_types[{i}]");
            if quantities && draft.quantity.is_none() {
                errors.add(&at(&field, "quantity"), "is required");
            }
            let Some(ticket_type) = Self::parse(errors, &field, draft, max_quantity) else {
                continue;
            };
            if !names.insert(ticket_type.name.to_lowercase()) {
                errors.add(&at(&field, "name"), "another type has this name");
            }
            types.push(ticket_type);
        }
        (errors.len() == before).then_some(types)
    }
}

/// Percent with up to two decimals, 0 to 100, as hundredths of a percent.
fn tax_rate(errors: &mut ValidationErrors, field: &str, percent: f64) -> Option<i32> {
    let hundredths = percent * 100.0;
    let whole = hundredths.round();
    if !(0.0..=100.0).contains(&percent) || (hundredths - whole).abs() > 1e-6 {
        errors.add(
            field,
            "must be a percentage from 0 to 100 with at most two decimals",
        );
        return None;
    }
    // In range and whole: 0..=10,000.
    Some(whole as i32)
}

/// What an organizer asks to change in a type, each given field checked on
/// its own; how it fits the type as it stands is checked when applied.
#[derive(Debug, Clone, Default)]
pub struct TicketTypeChanges {
    pub name: Option<String>,
    /// `Some(None)`: remove the description.
    pub description: Option<Option<String>>,
    pub price: Option<i64>,
    pub quantity: Option<i32>,
    pub sales_start: Option<DateTime<Utc>>,
    pub sales_end: Option<DateTime<Utc>>,
    pub max_per_order: Option<i32>,
}

impl TicketTypeChanges {
    /// Checks the fields given; an empty description removes it.
    #[expect(clippy::too_many_arguments, reason = "one per field of the request")]
    pub fn parse(
        mut errors: ValidationErrors,
        name: Option<&str>,
        description: Option<String>,
        price: Option<i64>,
        quantity: Option<i64>,
        sales_start: Option<DateTime<Utc>>,
        sales_end: Option<DateTime<Utc>>,
        max_per_order: Option<i64>,
        max_quantity: i64,
    ) -> Result<Self, ValidationErrors> {
        let errors = &mut errors;
        let name = name.and_then(|name| validation::text(errors, "name", name, NAME_MAX_CHARS));
        let description = description.map(|raw| {
            validation::checked_text(
                errors,
                "description",
                &raw,
                validation::Lines::Multi,
                DESCRIPTION_MAX_CHARS,
            )
            .filter(|d| !d.is_empty())
        });
        if let Some(price) = price
            && !(0..=MAX_PRICE).contains(&price)
        {
            errors.add(
                "price",
                format!("must be from 0 to {MAX_PRICE}, in the currency's minor unit"),
            );
        }
        // Zero closes a type; below what is held or booked is refused when
        // applied.
        let quantity = quantity.and_then(|n| match i32::try_from(n) {
            Ok(n) if (0..=max_quantity).contains(&i64::from(n)) => Some(n),
            _ => {
                errors.add("quantity", format!("must be from 0 to {max_quantity}"));
                None
            }
        });
        let max_per_order =
            max_per_order.and_then(|n| validation::count(errors, "max_per_order", n, MAX_QUANTITY));
        if !errors.is_empty() {
            return Err(std::mem::take(errors));
        }
        Ok(Self {
            name,
            description,
            price,
            quantity,
            sales_start,
            sales_end,
            max_per_order,
        })
    }
}

/// A field's name inside `field` (nothing: the body itself).
pub fn at(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_owned()
    } else {
        format!("{field}.{name}")
    }
}
