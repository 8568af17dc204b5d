//! An event's promo codes as its organizer makes and changes them (SPEC §13).
//! Redeeming one is `promotion`'s, in the sale's own transaction.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use super::{
    Error, Services, ValidationErrors, begin_write, events, now, promotion, queries,
    ticket_types::MAX_PRICE,
};

const CODE_MAX_CHARS: usize = 40;
const MAX_LISTED_TYPES: usize = 20;
const NOT_YOURS: &str = "only the event's organizer may manage its promo codes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// Off each ticket's price, 1 to 100.
    Percent(i32),
    /// Minor units off each ticket, never below 0.
    Amount(i64),
}

/// A checked promo code, not yet written.
#[derive(Debug, Clone)]
pub struct NewPromoCode {
    code: String,
    discount: Discount,
    max_uses: Option<i32>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    ticket_type_ids: Vec<Uuid>,
    unlocks: Vec<Uuid>,
}

impl NewPromoCode {
    /// Checks every field, adding to `errors` (which may hold the caller's).
    #[expect(clippy::too_many_arguments, reason = "one per field of the request")]
    pub fn parse(
        mut errors: ValidationErrors,
        code: &str,
        percent: Option<i64>,
        amount: Option<i64>,
        max_uses: Option<i64>,
        valid_from: Option<DateTime<Utc>>,
        valid_until: Option<DateTime<Utc>>,
        ticket_type_ids: Vec<Uuid>,
        unlocks: Vec<Uuid>,
    ) -> Result<Self, ValidationErrors> {
        let normalized = promotion::normalize(code);
        let code_ok = (1..=CODE_MAX_CHARS).contains(&normalized.chars().count())
            && normalized
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !code_ok {
            errors.add(
                "code",
                format!("must be 1 to {CODE_MAX_CHARS} letters, digits, - or _"),
            );
        }
        let discount = match (percent, amount) {
            (Some(p), None) if (1..=100).contains(&p) => Some(Discount::Percent(p as i32)),
            (None, Some(a)) if (1..=MAX_PRICE).contains(&a) => Some(Discount::Amount(a)),
            (Some(_), None) => {
                errors.add("discount.percent", "must be from 1 to 100");
                None
            }
            (None, Some(_)) => {
                errors.add("discount.amount", format!("must be from 1 to {MAX_PRICE}"));
                None
            }
            _ => {
                errors.add("discount", "give exactly one of percent and amount");
                None
            }
        };
        let max_uses = max_uses.and_then(|n| match i32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                errors.add("max_uses", "must be at least 1");
                None
            }
        });
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && until <= from
        {
            errors.add("valid_until", "must be after valid_from");
        }
        for (field, ids) in [("ticket_type_ids", &ticket_type_ids), ("unlocks", &unlocks)] {
            let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
            if ids.len() > MAX_LISTED_TYPES || distinct.len() != ids.len() {
                errors.add(field, format!("up to {MAX_LISTED_TYPES} distinct types"));
            }
        }
        match discount {
            Some(discount) if errors.is_empty() => Ok(Self {
                code: normalized,
                discount,
                max_uses,
                valid_from,
                valid_until,
                ticket_type_ids,
                unlocks,
            }),
            _ => Err(errors),
        }
    }
}

/// What an organizer may change in a code: its limits, and switching it off.
/// A code that was used can only be disabled.
#[derive(Debug, Clone, Default)]
pub struct PromoCodeChanges {
    pub max_uses: Option<i32>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub disabled: Option<bool>,
}

/// A code and the types it covers.
#[derive(Debug, Clone)]
pub struct PromoCodeDetails {
    pub code: PromoCodeModel,
    pub ticket_type_ids: Vec<Uuid>,
    pub unlocks: Vec<Uuid>,
}

pub async fn create(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    new: NewPromoCode,
) -> Result<PromoCodeDetails, Error> {
    let txn = begin_write(&services.db).await?;
    events::lock_own_event(&txn, event_id, organizer_id, NOT_YOURS).await?;
    let types: Vec<Uuid> = inventory::event_types(&txn, event_id)
        .await?
        .iter()
        .map(|t| t.id)
        .collect();
    let mut errors = ValidationErrors::default();
    for (field, ids) in [
        ("ticket_type_ids", &new.ticket_type_ids),
        ("unlocks", &new.unlocks),
    ] {
        if ids.iter().any(|id| !types.contains(id)) {
            errors.add(field, "names a ticket type this event does not sell");
        }
    }
    let taken = PromoCode::find()
        .filter(PromoCodeColumn::EventId.eq(event_id))
        .filter(PromoCodeColumn::Code.eq(new.code.clone()))
        .count(&txn)
        .await?
        > 0;
    if taken {
        errors.add("code", "this event already has this code");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let now = now();
    let (percent, amount) = match new.discount {
        Discount::Percent(p) => (Some(p), None),
        Discount::Amount(a) => (None, Some(a)),
    };
    let code = PromoCodeActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event_id),
        code: Set(new.code),
        percent: Set(percent),
        amount: Set(amount),
        max_uses: Set(new.max_uses),
        used: Set(0),
        valid_from: Set(new.valid_from),
        valid_until: Set(new.valid_until),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let rows: Vec<PromoCodeTypeActiveModel> = [(false, &new.ticket_type_ids), (true, &new.unlocks)]
        .into_iter()
        .flat_map(|(unlocks, ids)| {
            ids.iter()
                .map(move |ticket_type_id| PromoCodeTypeActiveModel {
                    promo_code_id: Set(code.id),
                    ticket_type_id: Set(*ticket_type_id),
                    unlocks: Set(unlocks),
                })
        })
        .collect();
    if !rows.is_empty() {
        PromoCodeType::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(PromoCodeDetails {
        code,
        ticket_type_ids: new.ticket_type_ids,
        unlocks: new.unlocks,
    })
}

/// The event's codes with their uses, newest first.
pub async fn list(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
) -> Result<Vec<PromoCodeDetails>, Error> {
    queries::own_event(&services.db, organizer_id, event_id, NOT_YOURS).await?;
    let codes = PromoCode::find()
        .filter(PromoCodeColumn::EventId.eq(event_id))
        .order_by_desc(PromoCodeColumn::CreatedAt)
        .order_by_desc(PromoCodeColumn::Id)
        .all(&services.db)
        .await?;
    let ids: Vec<Uuid> = codes.iter().map(|c| c.id).collect();
    let types = PromoCodeType::find()
        .filter(PromoCodeTypeColumn::PromoCodeId.is_in(ids))
        .all(&services.db)
        .await?;
    Ok(codes
        .into_iter()
        .map(|code| {
            let of = |unlocks: bool| {
                types
                    .iter()
                    .filter(|t| t.promo_code_id == code.id && t.unlocks == unlocks)
                    .map(|t| t.ticket_type_id)
                    .collect()
            };
            PromoCodeDetails {
                ticket_type_ids: of(false),
                unlocks: of(true),
                code,
            }
        })
        .collect())
}

pub async fn change(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    code_id: Uuid,
    changes: PromoCodeChanges,
) -> Result<PromoCodeDetails, Error> {
    let txn = begin_write(&services.db).await?;
    events::lock_own_event(&txn, event_id, organizer_id, NOT_YOURS).await?;
    let code = own_code(&txn, event_id, code_id).await?;
    let limits_change =
        changes.max_uses.is_some() || changes.valid_from.is_some() || changes.valid_until.is_some();
    if limits_change && ever_used(&txn, code_id).await? {
        return Err(Error::Conflict(
            "a code that was used can only be disabled".into(),
        ));
    }
    let from = changes.valid_from.or(code.valid_from);
    let until = changes.valid_until.or(code.valid_until);
    if let (Some(from), Some(until)) = (from, until)
        && until <= from
    {
        return Err(ValidationErrors::single("valid_until", "must be after valid_from").into());
    }
    let mut active: PromoCodeActiveModel = code.into();
    if let Some(max) = changes.max_uses {
        active.max_uses = Set(Some(max));
    }
    active.valid_from = Set(from);
    active.valid_until = Set(until);
    if let Some(disabled) = changes.disabled {
        active.disabled = Set(disabled);
    }
    active.updated_at = Set(now());
    active.update(&txn).await?;
    txn.commit().await?;
    list(services, organizer_id, event_id)
        .await?
        .into_iter()
        .find(|details| details.code.id == code_id)
        .ok_or(Error::NotFound("promo code"))
}

/// Removes a code that was never used; a used one can only be disabled.
pub async fn remove(
    services: &Services,
    organizer_id: Uuid,
    event_id: Uuid,
    code_id: Uuid,
) -> Result<(), Error> {
    let txn = begin_write(&services.db).await?;
    events::lock_own_event(&txn, event_id, organizer_id, NOT_YOURS).await?;
    own_code(&txn, event_id, code_id).await?;
    if ever_used(&txn, code_id).await? {
        return Err(Error::Conflict(
            "a code that was used can only be disabled".into(),
        ));
    }
    PromoCodeType::delete_many()
        .filter(PromoCodeTypeColumn::PromoCodeId.eq(code_id))
        .exec(&txn)
        .await?;
    PromoCode::delete_by_id(code_id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

async fn own_code(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    code_id: Uuid,
) -> Result<PromoCodeModel, Error> {
    PromoCode::find_by_id(code_id)
        .filter(PromoCodeColumn::EventId.eq(event_id))
        .one(txn)
        .await?
        .ok_or(Error::NotFound("promo code"))
}

/// Whether any hold or booking ever used the code.
async fn ever_used(txn: &DatabaseTransaction, code_id: Uuid) -> Result<bool, Error> {
    let holds = Hold::find()
        .filter(HoldColumn::PromoCodeId.eq(code_id))
        .count(txn)
        .await?;
    let bookings = Booking::find()
        .filter(BookingColumn::PromoCodeId.eq(code_id))
        .count(txn)
        .await?;
    Ok(holds + bookings > 0)
}
