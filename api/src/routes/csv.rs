//! The attendee list as CSV (RFC 4180), safe to open in a spreadsheet.

use crate::domain::report::AttendeeRow;
use entity::prelude::BookingStatus;

const HEADER: &str =
    "ticket_id,booking_id,name,email,ticket_type,seat,price,status,checked_in_at\r\n";

pub fn attendees(rows: &[AttendeeRow]) -> String {
    let mut out = String::from(HEADER);
    for row in rows {
        let status = match row.status {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Cancelled => "cancelled",
        };
        let cells = [
            row.ticket_id.map(|id| id.to_string()).unwrap_or_default(),
            row.booking_id.to_string(),
            row.name.clone(),
            row.email.clone(),
            row.ticket_type.clone(),
            row.seat.clone().unwrap_or_default(),
            row.price.to_string(),
            status.to_owned(),
            row.checked_in_at
                .map(|at| at.to_rfc3339())
                .unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|cell| field(cell)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One field: text a spreadsheet would take for a formula gets a leading
/// `'`; a field with a comma, quote or line break is quoted.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("Ada"), "Ada");
        assert_eq!(field("Lovelace, Ada"), "\"Lovelace, Ada\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
    }
}
