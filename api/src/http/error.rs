//! Every error leaves the api as
//! `{"error": {"code": "...", "message": "...", "details": {...}}}` — including
//! Rocket's own 404/422/500 and failed request guards.
//!
//! Policy: 4xx messages say what the client can fix; 5xx messages say nothing about
//! internals (the cause is logged instead).

use std::sync::Mutex;

use rocket::{
    Request, Response, catch,
    http::{ContentType, Header, Method, Status},
    response::Responder,
};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::{Error as DomainError, ValidationErrors};

/// Every error code the api answers with: the one list, sent as the snake_case
/// strings clients match on and listed as an enum in the API document. Each code
/// has one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotAdmitted,
    NotFound,
    MethodNotAllowed,
    Conflict,
    EmailTaken,
    SoldOut,
    EventCancelled,
    NotOnSale,
    SeatsUnavailable,
    HoldExists,
    IdempotencyConflict,
    HoldExpired,
    PaymentRequired,
    RefundWindowClosed,
    InvalidSignature,
    PaymentProviderError,
    UnknownTicket,
    TicketCancelled,
    AlreadyCheckedIn,
    PayloadTooLarge,
    ValidationFailed,
    RateLimited,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> Status {
        match self {
            ErrorCode::BadRequest => Status::BadRequest,
            ErrorCode::Unauthorized => Status::Unauthorized,
            ErrorCode::Forbidden | ErrorCode::NotAdmitted => Status::Forbidden,
            ErrorCode::NotFound | ErrorCode::UnknownTicket => Status::NotFound,
            ErrorCode::MethodNotAllowed => Status::MethodNotAllowed,
            ErrorCode::Conflict
            | ErrorCode::EmailTaken
            | ErrorCode::SoldOut
            | ErrorCode::EventCancelled
            | ErrorCode::NotOnSale
            | ErrorCode::SeatsUnavailable
            | ErrorCode::HoldExists
            | ErrorCode::IdempotencyConflict
            | ErrorCode::RefundWindowClosed
            | ErrorCode::TicketCancelled
            | ErrorCode::AlreadyCheckedIn => Status::Conflict,
            ErrorCode::PaymentRequired => Status::PaymentRequired,
            ErrorCode::InvalidSignature => Status::BadRequest,
            ErrorCode::PaymentProviderError => Status::BadGateway,
            ErrorCode::HoldExpired => Status::Gone,
            ErrorCode::PayloadTooLarge => Status::PayloadTooLarge,
            ErrorCode::ValidationFailed => Status::UnprocessableEntity,
            ErrorCode::RateLimited => Status::TooManyRequests,
            ErrorCode::Internal => Status::InternalServerError,
            ErrorCode::Unavailable => Status::ServiceUnavailable,
        }
    }
}

/// The code as sent (its serde name), for log lines.
impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(quoted.trim_matches('"'))
    }
}

/// What every error response looks like.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable.
    pub code: ErrorCode,
    /// For people: what went wrong and what to do about it.
    #[schema(example = "only 3 tickets left")]
    pub message: String,
    /// For `validation_failed`: field → problem. Otherwise context, or empty.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: Status,
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
    pub headers: Vec<Header<'static>>,
    /// What really went wrong, for the log line (never for the client).
    cause: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            details: Map::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// Records the cause, logged with the request id when the error is sent.
    /// What the client reads of it, for an error inside a larger answer.
    pub fn detail(self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message,
            details: self.details,
        }
    }

    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 429, to try again in `retry_after` seconds (the `Retry-After` header).
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut error = Self::new(ErrorCode::RateLimited, message);
        error
            .headers
            .push(Header::new("Retry-After", retry_after.to_string()));
        error
    }

    pub fn validation(errors: ValidationErrors) -> Self {
        let details = errors
            .into_fields()
            .into_iter()
            .map(|(field, message)| (field, Value::String(message)))
            .collect();
        Self {
            details,
            ..Self::new(
                ErrorCode::ValidationFailed,
                "some fields are invalid; see details",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal server error")
    }

    /// The generic error for a status when nothing more specific is known.
    pub fn for_status(status: Status) -> Self {
        match status.code {
            400 => Self::bad_request("the request could not be understood"),
            401 => Self::unauthorized("authentication required"),
            403 => Self::forbidden("not allowed"),
            404 => Self::new(ErrorCode::NotFound, "no such resource"),
            405 => Self::new(ErrorCode::MethodNotAllowed, "method not allowed"),
            413 => Self::new(ErrorCode::PayloadTooLarge, "request body too large"),
            422 => Self::new(
                ErrorCode::ValidationFailed,
                "the request is well-formed but its contents are invalid",
            ),
            503 => Self::new(ErrorCode::Unavailable, "service temporarily unavailable"),
            // Any other client error keeps its own status under the generic code.
            code if code < 500 => Self {
                status,
                ..Self::new(ErrorCode::BadRequest, status.reason_lossy().to_string())
            },
            _ => Self::internal(),
        }
    }

    /// The JSON body as sent.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_default()
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }

    /// Leaves this error for the catcher: guards can only fail with a status, and
    /// this is how the catcher learns the specific reason.
    pub fn stash(self, request: &Request<'_>) -> Status {
        let status = self.status;
        let slot = request.local_cache(|| StashedError(Mutex::new(None)));
        if let Ok(mut slot) = slot.0.lock() {
            *slot = Some(self);
        }
        status
    }
}

struct StashedError(Mutex<Option<ApiError>>);

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> rocket::response::Result<'static> {
        if let Some(cause) = &self.cause {
            let request_id = crate::telemetry::request_id(request);
            if self.status.code >= 500 && self.status != Status::ServiceUnavailable {
                tracing::error!(request_id, %cause, code = %self.code, "request failed");
            } else {
                tracing::warn!(request_id, %cause, code = %self.code, "request refused");
            }
        }
        let body = self.body_json();
        let mut response = Response::build();
        response
            .status(self.status)
            .header(ContentType::JSON)
            .sized_body(body.len(), std::io::Cursor::new(body));
        if self.status == Status::ServiceUnavailable {
            response.header(Header::new("Retry-After", "5"));
        }
        for header in self.headers {
            response.header(header);
        }
        Ok(response.finalize())
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::validation(errors)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Validation(errors) => Self::validation(errors),
            DomainError::NotFound(what) => Self::not_found(what),
            DomainError::Forbidden(why) => Self::forbidden(why),
            DomainError::InvalidCredentials => Self::unauthorized("wrong email or password"),
            DomainError::EmailTaken => Self::new(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            ),
            DomainError::SoldOut { available } => {
                let mut error = Self::new(
                    ErrorCode::SoldOut,
                    match available {
                        0 => "sold out".to_string(),
                        1 => "only 1 ticket left".to_string(),
                        n => format!("only {n} tickets left"),
                    },
                );
                error
                    .details
                    .insert("available_tickets".into(), available.into());
                error
            }
            DomainError::TypeSoldOut {
                ticket_type_id,
                available,
            } => {
                let mut error = Self::new(
                    ErrorCode::SoldOut,
                    match available {
                        0 => "this ticket type is sold out".to_string(),
                        1 => "only 1 ticket of this type left".to_string(),
                        n => format!("only {n} tickets of this type left"),
                    },
                );
                error.details.insert(
                    "ticket_type_id".into(),
                    Value::String(ticket_type_id.to_string()),
                );
                error.details.insert("available".into(), available.into());
                error
            }
            DomainError::TypeNotOnSale { ticket_type_id } => {
                let mut error = Self::new(
                    ErrorCode::NotOnSale,
                    "this ticket type is not on sale now; see its sales_start and sales_end",
                );
                error.details.insert(
                    "ticket_type_id".into(),
                    Value::String(ticket_type_id.to_string()),
                );
                error
            }
            DomainError::EventCancelled => {
                Self::new(ErrorCode::EventCancelled, "this event has been cancelled")
            }
            DomainError::SeatsUnavailable(seat_ids) => {
                let mut error = Self::new(
                    ErrorCode::SeatsUnavailable,
                    "some of these seats are taken or not part of this event; nothing was held",
                );
                error.details.insert(
                    "seat_ids".into(),
                    seat_ids
                        .iter()
                        .map(|id| Value::String(id.to_string()))
                        .collect(),
                );
                error
            }
            DomainError::HoldExists { hold_id } => {
                let mut error = Self::new(
                    ErrorCode::HoldExists,
                    "you already hold tickets for this event; confirm or release that hold first",
                );
                error
                    .details
                    .insert("hold_id".into(), Value::String(hold_id.to_string()));
                error
            }
            DomainError::HoldExpired => Self::new(
                ErrorCode::HoldExpired,
                "this hold has expired and its tickets went back on sale; hold tickets again",
            ),
            DomainError::NotOnSale => Self::new(
                ErrorCode::NotOnSale,
                "tickets for this event are not on sale yet; see its on_sale_at",
            ),
            DomainError::NotAdmitted => Self::new(
                ErrorCode::NotAdmitted,
                "this event sells through its waiting room: join it and wait for your turn",
            ),
            DomainError::Conflict(message) => Self::new(ErrorCode::Conflict, message),
            DomainError::PaymentRequired => Self::new(
                ErrorCode::PaymentRequired,
                "these tickets have a price: hold them, pay for the hold (POST /holds/{id}/payment), and the payment books them",
            ),
            DomainError::RefundWindowClosed(until) => {
                let mut error = Self::new(
                    ErrorCode::RefundWindowClosed,
                    "refunds for this event closed; the booking cannot be cancelled for a refund any more",
                );
                error.details.insert(
                    "refund_until".into(),
                    Value::String(until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                );
                error
            }
            DomainError::PaymentProvider(cause) => Self::new(
                ErrorCode::PaymentProviderError,
                "the payment provider could not be reached; try again shortly",
            )
            .caused_by(cause),
            DomainError::BadSignature(why) => Self::new(ErrorCode::InvalidSignature, why),
            DomainError::UnknownTicket => Self::new(
                ErrorCode::UnknownTicket,
                "this is not a ticket for this event: the code is unknown, altered or another event's",
            ),
            DomainError::TicketCancelled => Self::new(
                ErrorCode::TicketCancelled,
                "this ticket was cancelled; do not admit",
            ),
            DomainError::AlreadyCheckedIn { at, by } => {
                let mut error = Self::new(
                    ErrorCode::AlreadyCheckedIn,
                    "this ticket was already checked in; do not admit again",
                );
                error.details.insert(
                    "checked_in_at".into(),
                    Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                );
                error.details.insert(
                    "device".into(),
                    by.map_or(Value::Null, |id| Value::String(id.to_string())),
                );
                error
            }
            DomainError::IdempotencyMismatch => Self::new(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was already used with a different request; use a new key",
            ),
            DomainError::StillInFlight => {
                let mut error = Self::new(
                    ErrorCode::Conflict,
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                );
                error.headers.push(Header::new("Retry-After", "1"));
                error
            }
            DomainError::Unavailable(cause) => Self::new(
                ErrorCode::Unavailable,
                "the database is unavailable; try again shortly",
            )
            .caused_by(cause),
            DomainError::Busy(message) => Self::new(ErrorCode::Unavailable, message),
            DomainError::Internal(cause) => Self::internal().caused_by(format!("{cause:#}")),
        }
    }
}

/// One catcher for every status: a stashed specific error if a guard left one,
/// otherwise the generic error for the status.
#[catch(default)]
pub fn json_catcher(status: Status, request: &Request<'_>) -> ApiError {
    let stashed = request
        .local_cache(|| StashedError(Mutex::new(None)))
        .0
        .lock()
        .ok()
        .and_then(|mut slot| slot.take());
    match stashed {
        Some(error) if error.status == status => error,
        _ if status == Status::NotFound => {
            method_not_allowed(request).unwrap_or_else(|| ApiError::for_status(status))
        }
        _ => ApiError::for_status(status),
    }
}

/// Rocket answers 404 when a path exists only under other methods; tell the
/// client which methods the path does have instead.
fn method_not_allowed(request: &Request<'_>) -> Option<ApiError> {
    let path: Vec<&str> = request.uri().path().segments().collect();
    let mut allowed: Vec<Method> = request
        .rocket()
        .routes()
        .filter(|route| {
            route.method != request.method() && template_matches(route.uri.path(), &path)
        })
        .map(|route| route.method)
        .collect();
    if allowed.is_empty() {
        return None;
    }
    allowed.sort_by_key(|method| method.as_str());
    allowed.dedup();
    let allow = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed here; allowed: {allow}", request.method()),
    );
    error.headers.push(Header::new("Allow", allow));
    Some(error)
}

/// Whether a route path template (`/api/v1/events/<id>`) matches path segments.
fn template_matches(template: &str, path: &[&str]) -> bool {
    let template: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let is_param = |segment: &str| segment.starts_with('<') && segment.ends_with('>');
    if let Some((last, head)) = template.split_last()
        && last.ends_with("..>")
    {
        return path.len() >= head.len()
            && head.iter().zip(path).all(|(t, p)| is_param(t) || t == p);
    }
    template.len() == path.len()
        && template
            .iter()
            .zip(path)
            .all(|(t, p)| is_param(t) || t == p)
}
