//! Reading settings from the environment. Every failure names the variable, so a
//! misconfigured process stops with one line that says what to fix.

use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// The variable's value, or `None` when it is unset or empty.
pub fn optional(variable: &'static str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn parsed_or<T>(variable: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(variable) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(variable, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// A positive whole number of milliseconds.
pub fn millis_or(
    variable: &'static str,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    let ms: u64 = parsed_or(variable, default.as_millis() as u64)?;
    if ms == 0 {
        return Err(ConfigError::new(variable, "must be greater than 0"));
    }
    Ok(std::time::Duration::from_millis(ms))
}
