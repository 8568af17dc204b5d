use std::collections::BTreeMap;

/// Field → what is wrong with it, collected so a client learns every problem at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ValidationErrors(BTreeMap<String, String>);

impl ValidationErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many fields have a problem.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_fields(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// The one rule for text a client sends: control characters (C0, U+0000 to
/// U+001F, and DEL) are refused, never stripped, because PostgreSQL `text` cannot
/// hold U+0000 and the rest have no place in a name or a title. Multi-line fields
/// allow line breaks and tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    Single,
    Multi,
}

impl Lines {
    fn allows(self, c: char) -> bool {
        let control = c.is_ascii_control();
        !control || (self == Lines::Multi && matches!(c, '\n' | '\r' | '\t'))
    }

    fn message(self) -> &'static str {
        match self {
            Lines::Single => "must not contain control characters (such as U+0000 or line breaks)",
            Lines::Multi => "must not contain control characters other than line breaks and tabs",
        }
    }
}

/// Trims `value` and checks it against the text rule and a length bound; empty
/// text is returned as empty, for the caller to decide whether that is allowed.
pub fn checked_text(
    errors: &mut ValidationErrors,
    field: &str,
    value: &str,
    lines: Lines,
    max_chars: usize,
) -> Option<String> {
    let value = value.trim();
    if !value.chars().all(|c| lines.allows(c)) {
        errors.add(field, lines.message());
        None
    } else if value.chars().count() > max_chars {
        errors.add(field, format!("must be at most {max_chars} characters"));
        None
    } else {
        Some(value.to_owned())
    }
}

/// A whole number from 1 to `max` (which fits an `i32`), or the field's error.
pub fn count(errors: &mut ValidationErrors, field: &str, raw: i64, max: i64) -> Option<i32> {
    match i32::try_from(raw) {
        Ok(n) if (1..=max).contains(&raw) => Some(n),
        _ => {
            errors.add(field, format!("must be between 1 and {max}"));
            None
        }
    }
}

/// A required, trimmed, single-line, bounded piece of text.
pub fn text(
    errors: &mut ValidationErrors,
    field: &str,
    value: &str,
    max_chars: usize,
) -> Option<String> {
    let value = checked_text(errors, field, value, Lines::Single, max_chars)?;
    if value.is_empty() {
        errors.add(field, "must not be empty");
        return None;
    }
    Some(value)
}

/// The years an event's times may fall in. Outside them a time is a typo or an
/// attack, and far outside them it cannot even be written back as RFC 3339 (an
/// offset can push `0000-01-01` into year −1, or `9999-12-31` into 10000).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2200;

/// A time within [`YEARS`], in UTC.
pub fn moment(
    errors: &mut ValidationErrors,
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    if YEARS.contains(&at.year()) {
        Some(at)
    } else {
        errors.add(
            field,
            format!(
                "must fall in the years {} to {} (UTC)",
                YEARS.start(),
                YEARS.end()
            ),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str, lines: Lines) -> Result<String, String> {
        let mut errors = ValidationErrors::default();
        checked_text(&mut errors, "f", value, lines, 10)
            .ok_or_else(|| errors.into_fields().remove("f").unwrap_or_default())
    }

    #[test]
    fn control_characters_are_refused_not_stripped() {
        for bad in ["a\u{0}b", "a\u{1b}b", "a\u{7f}b", "a\nb", "a\tb"] {
            assert!(check(bad, Lines::Single).is_err(), "{bad:?} accepted");
        }
        for bad in ["a\u{0}b", "a\u{8}b"] {
            assert!(check(bad, Lines::Multi).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check(" a\r\n\tb ", Lines::Multi).as_deref(), Ok("a\r\n\tb"));
        assert_eq!(check("Zoë – ü", Lines::Single).as_deref(), Ok("Zoë – ü"));
    }

    #[test]
    fn empty_is_an_error_only_where_text_is_required() {
        let mut errors = ValidationErrors::default();
        assert_eq!(text(&mut errors, "f", "  ", 10), None);
        assert_eq!(check("  ", Lines::Multi).as_deref(), Ok(""));
    }
}
