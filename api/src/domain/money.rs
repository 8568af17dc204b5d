//! Money's words: amounts are integers in a currency's minor unit (cents for
//! EUR, yen for JPY), computed by the server, never taken from a client.

use super::ValidationErrors;

/// An ISO 4217 currency, checked against the standard's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub const DEFAULT: Currency = Currency(iso_currency::Currency::EUR);

    /// Three capital letters naming a currency of ISO 4217; `field` names it
    /// in the error.
    pub fn parse(errors: &mut ValidationErrors, field: &str, raw: &str) -> Option<Self> {
        let known = raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase());
        match iso_currency::Currency::from_code(raw).filter(|_| known) {
            Some(currency) => Some(Currency(currency)),
            None => {
                errors.add(
                    field,
                    "must be an ISO 4217 currency code in capitals, such as EUR or USD",
                );
                None
            }
        }
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }
}
