//! A small typed client for the four Stripe calls the booking system makes:
//! create and read a PaymentIntent, create and list refunds. Form-encoded
//! requests, JSON answers, a deadline on every call, and an `Idempotency-Key`
//! on every call that creates something.

use std::{collections::HashMap, time::Duration};

use serde::Deserialize;

/// Every call gives up after this long; the caller retries (a payment's start
/// is the customer's to retry; refunds and reconciliation are the worker's).
const DEADLINE: Duration = Duration::from_secs(10);
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: String,
    pub webhook_secret: String,
    /// `https://api.stripe.com`, or a Stripe-compatible server (localstripe).
    pub api_base: String,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: url::Url,
    secret_key: String,
    webhook_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("stripe unreachable: {0}")]
    Network(#[from] reqwest::Error),
    #[error("stripe answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("unexpected answer from stripe: {0}")]
    Decode(String),
    #[error("bad STRIPE_API_BASE: {0}")]
    Base(#[from] url::ParseError),
}

impl StripeError {
    /// Whether the same call may succeed later: the network, rate limits and
    /// Stripe's own errors; not a request Stripe refused as it stands.
    pub fn is_transient(&self) -> bool {
        match self {
            StripeError::Network(_) | StripeError::Decode(_) => true,
            StripeError::Api { status, .. } => *status == 429 || *status >= 500,
            StripeError::Base(_) => false,
        }
    }
}

/// The part of a PaymentIntent the booking system reads.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    /// Lower case, as Stripe writes it (`eur`).
    pub currency: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
    /// `processing`, `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Present after a declined attempt.
    #[serde(default)]
    pub last_payment_error: Option<serde_json::Value>,
}

impl PaymentIntent {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }

    /// The last attempt was declined, or the intent was cancelled: this
    /// attempt will not take money unless the customer tries again on it.
    pub fn failed(&self) -> bool {
        self.status == "canceled"
            || (self.status == "requires_payment_method" && self.last_payment_error.is_some())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub status: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub charge: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A webhook's body: the event and the object it is about.
#[derive(Debug, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: WebhookData,
}

#[derive(Debug, Deserialize)]
pub struct WebhookData {
    pub object: serde_json::Value,
}

#[derive(Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

pub struct NewPaymentIntent<'a> {
    pub amount: i64,
    /// ISO 4217, any case.
    pub currency: &'a str,
    /// Unique per attempt: a retry of the same attempt gets the same intent
    /// from Stripe, a new attempt a new one.
    pub idempotency_key: &'a str,
    pub metadata: &'a [(&'a str, String)],
}

impl Stripe {
    pub fn new(settings: &StripeSettings) -> Result<Self, StripeError> {
        let http = reqwest::Client::builder()
            .timeout(DEADLINE)
            .connect_timeout(CONNECT_DEADLINE)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base: url::Url::parse(&settings.api_base)?,
            secret_key: settings.secret_key.clone(),
            webhook_secret: settings.webhook_secret.clone(),
        })
    }

    /// Checks a webhook's `Stripe-Signature` header over its raw body.
    pub fn verify_webhook(
        &self,
        payload: &[u8],
        header: Option<&str>,
        now: i64,
    ) -> Result<(), crate::signature::SignatureError> {
        crate::signature::verify(payload, header, &self.webhook_secret, now)
    }

    pub async fn create_payment_intent(
        &self,
        new: NewPaymentIntent<'_>,
    ) -> Result<PaymentIntent, StripeError> {
        let mut form = vec![
            ("amount".to_owned(), new.amount.to_string()),
            ("currency".to_owned(), new.currency.to_ascii_lowercase()),
        ];
        form.extend(
            new.metadata
                .iter()
                .map(|(key, value)| (format!("metadata[{key}]"), value.clone())),
        );
        self.post("/v1/payment_intents", &form, new.idempotency_key)
            .await
    }

    pub async fn payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.get(&format!("/v1/payment_intents/{id}"), &[]).await
    }

    /// Refunds `amount` of the intent's charge; `refund_id` is both the
    /// idempotency key and a metadata entry, by which [`Self::refunds_of`]
    /// finds it again.
    pub async fn refund(
        &self,
        payment_intent: &str,
        amount: i64,
        refund_id: &str,
    ) -> Result<Refund, StripeError> {
        let form = [
            ("payment_intent".to_owned(), payment_intent.to_owned()),
            ("amount".to_owned(), amount.to_string()),
            ("metadata[refund_id]".to_owned(), refund_id.to_owned()),
        ];
        self.post("/v1/refunds", &form, refund_id).await
    }

    /// The refunds of a succeeded intent (up to 100, newest first).
    pub async fn refunds_of(&self, payment_intent: &str) -> Result<Vec<Refund>, StripeError> {
        let list: List<Refund> = self
            .get(
                "/v1/refunds",
                &[("payment_intent", payment_intent), ("limit", "100")],
            )
            .await?;
        Ok(list.data)
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        let request = self
            .http
            .post(self.base.join(path)?)
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form);
        answer(request.send().await?).await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, StripeError> {
        let request = self
            .http
            .get(self.base.join(path)?)
            .bearer_auth(&self.secret_key)
            .query(query);
        answer(request.send().await?).await
    }
}

async fn answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, StripeError> {
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|body| body.error.message)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        return Err(StripeError::Api {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&body).map_err(|error| StripeError::Decode(error.to_string()))
}

impl StripeSettings {
    /// `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET` and `STRIPE_API_BASE`.
    /// `None` without a secret key: only manual payments are offered.
    pub fn from_env() -> Result<Option<Self>, platform::env::ConfigError> {
        use platform::env::{ConfigError, optional};
        let Some(secret_key) = optional("STRIPE_SECRET_KEY") else {
            return Ok(None);
        };
        let webhook_secret = optional("STRIPE_WEBHOOK_SECRET").ok_or_else(|| {
            ConfigError::new(
                "STRIPE_WEBHOOK_SECRET",
                "required with STRIPE_SECRET_KEY: without it no payment could be confirmed",
            )
        })?;
        let api_base = optional("STRIPE_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        if url::Url::parse(&api_base).is_err() {
            return Err(ConfigError::new("STRIPE_API_BASE", "must be a URL"));
        }
        Ok(Some(Self {
            secret_key,
            webhook_secret,
            api_base,
        }))
    }
}
