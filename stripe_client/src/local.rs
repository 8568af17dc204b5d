//! A local Stripe for tests, tools and the compose stack: `localstripe`
//! (PyPI), stateful, sending signed webhooks. Tests share one per test
//! process: `STRIPE_API_BASE` when set (CI starts one, as it starts Redis),
//! else one started here (`python3 -m localstripe`), which stops when the
//! test process does.

use std::{
    net::TcpStream,
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::{Refund, StripeSettings};

/// The webhook secret tests sign and verify with.
pub const WEBHOOK_SECRET: &str = "whsec_localstripe_test";
/// Any `sk_test_…` key is accepted by localstripe.
pub const SECRET_KEY: &str = "sk_test_localstripe";

pub struct LocalStripe {
    pub base: String,
}

static SHARED: OnceLock<Option<LocalStripe>> = OnceLock::new();

/// The local Stripe, or `None` when none is configured and none can be
/// started (no Python or no localstripe): the caller says it skips.
pub fn shared() -> Option<&'static LocalStripe> {
    SHARED
        .get_or_init(|| match std::env::var("STRIPE_API_BASE") {
            Ok(base) if !base.is_empty() => Some(LocalStripe { base }),
            _ => start(),
        })
        .as_ref()
}

fn start() -> Option<LocalStripe> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    // A shell that runs localstripe and ends it once this process is gone.
    let script = format!(
        "python3 -m localstripe --port {port} --from-scratch >/dev/null 2>&1 & child=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; \
         kill $child 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(LocalStripe {
                base: format!("http://127.0.0.1:{port}"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

impl LocalStripe {
    pub fn settings(&self) -> StripeSettings {
        StripeSettings {
            secret_key: SECRET_KEY.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
            api_base: self.base.clone(),
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default()
    }

    /// Sends every event to `url` from now on, signed with [`WEBHOOK_SECRET`].
    pub async fn send_webhooks_to(&self, id: &str, url: &str) -> Result<(), reqwest::Error> {
        Self::client()
            .post(format!("{}/_config/webhooks/{id}", self.base))
            .form(&[("url", url), ("secret", WEBHOOK_SECRET)])
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Plays the customer: attaches the card (`pm_card_visa`, or
    /// `pm_card_chargeCustomerFail` to be declined) and confirms. Returns the
    /// PaymentIntent's status afterwards.
    pub async fn pay(&self, intent: &str, card: &str) -> Result<String, reqwest::Error> {
        let client = Self::client();
        client
            .post(format!("{}/v1/payment_intents/{intent}", self.base))
            .bearer_auth(SECRET_KEY)
            .form(&[("payment_method", card)])
            .send()
            .await?
            .error_for_status()?;
        // A declined card answers 402 here; the intent says what happened.
        client
            .post(format!("{}/v1/payment_intents/{intent}/confirm", self.base))
            .bearer_auth(SECRET_KEY)
            .send()
            .await?;
        let intent: serde_json::Value = client
            .get(format!("{}/v1/payment_intents/{intent}", self.base))
            .bearer_auth(SECRET_KEY)
            .send()
            .await?
            .json()
            .await?;
        Ok(intent["status"].as_str().unwrap_or_default().to_owned())
    }

    /// The refunds of a succeeded PaymentIntent.
    pub async fn refunds_of(&self, intent: &str) -> Result<Vec<Refund>, crate::StripeError> {
        crate::Stripe::new(&self.settings())?
            .refunds_of(intent)
            .await
    }
}
