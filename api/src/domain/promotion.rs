//! Redeeming a promo code inside the transaction that takes the tickets
//! (SPEC §13): the code found and checked, its discount applied per ticket to
//! the types it covers (never below 0), and its uses (tickets) taken by a
//! conditional update the database bounds by `max_uses`, so a stampede gets
//! exactly as many as there are.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Error, ValidationErrors};

/// A code found for an event, valid now, with the types it covers.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub code: PromoCodeModel,
    /// The types it discounts; empty: every type.
    pub discounts: Vec<Uuid>,
    /// Hidden types it lets a customer buy.
    pub unlocks: Vec<Uuid>,
}

fn refused(message: &str) -> Error {
    ValidationErrors::single("promo_code", message).into()
}

/// How a customer's code is stored: trimmed, in capitals.
pub fn normalize(code: &str) -> String {
    code.trim().to_uppercase()
}

/// The event's code as typed, if it exists, is enabled and valid at `at`.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    event_id: Uuid,
    code: &str,
    at: DateTime<Utc>,
) -> Result<Promotion, Error> {
    let code = PromoCode::find()
        .filter(PromoCodeColumn::EventId.eq(event_id))
        .filter(PromoCodeColumn::Code.eq(normalize(code)))
        .one(db)
        .await?
        .filter(|code| !code.disabled)
        .ok_or_else(|| refused("no such promo code for this event"))?;
    if code.valid_from.is_some_and(|from| at < from) {
        return Err(refused("this promo code is not valid yet"));
    }
    if code.valid_until.is_some_and(|until| until <= at) {
        return Err(refused("this promo code has expired"));
    }
    if code.max_uses.is_some_and(|max| code.used >= max) {
        return Err(refused("this promo code is used up"));
    }
    let types = PromoCodeType::find()
        .filter(PromoCodeTypeColumn::PromoCodeId.eq(code.id))
        .all(db)
        .await?;
    let pick = |unlocks: bool| {
        types
            .iter()
            .filter(|t| t.unlocks == unlocks)
            .map(|t| t.ticket_type_id)
            .collect()
    };
    Ok(Promotion {
        discounts: pick(false),
        unlocks: pick(true),
        code,
    })
}

impl Promotion {
    fn covers(&self, ticket_type_id: Uuid) -> bool {
        self.discounts.is_empty() || self.discounts.contains(&ticket_type_id)
    }

    /// Applies the discount to the lines it covers; returns the uses it
    /// takes (the tickets it discounts or unlocks). A code that covers none
    /// of the lines is refused.
    pub fn apply(&self, lines: &mut [inventory::Line]) -> Result<i32, Error> {
        let mut uses = 0;
        for line in lines.iter_mut() {
            let discounted = self.covers(line.ticket_type_id);
            if discounted {
                let discount = match (self.code.percent, self.code.amount) {
                    (Some(percent), _) => line.unit_price * i64::from(percent) / 100,
                    (None, Some(amount)) => amount,
                    (None, None) => 0,
                };
                line.discount = Ord::min(discount, line.unit_price);
            }
            if discounted || self.unlocks.contains(&line.ticket_type_id) {
                uses += line.quantity;
            }
        }
        if uses == 0 {
            return Err(refused("this promo code is not for these ticket types"));
        }
        Ok(uses)
    }

    /// Takes `uses` of the code, if it has them left. `false`: used up by
    /// now, and nothing changed.
    pub async fn take_uses<C: ConnectionTrait>(&self, db: &C, uses: i32) -> Result<bool, DbErr> {
        inventory::take_promo_uses(db, self.code.id, uses).await
    }

    pub fn used_up() -> Error {
        refused("this promo code is used up")
    }
}
