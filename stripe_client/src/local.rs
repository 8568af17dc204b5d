//! A local Stripe for tests, tools and the compose stack: `localstripe`
//! (PyPI), stateful, sending signed webhooks. Tests share one per test
//! process: `STRIPE_API_BASE` when set (CI starts one, as it starts Redis),
//! else one started here (`python3 -m localstripe`), which stops when the
//! test process does.
//!
//! localstripe sends an event to its webhooks one after another, iterating
//! over its table of them, and a webhook added meanwhile ends that iteration
//! (Python's "dictionary changed size during iteration"): the event never
//! reaches the webhooks after it, and is never sent again. So the table never
//! grows while tests run: a fixed set of webhook slots is registered once,
//! switched off, and each test borrows one ([`LocalStripe::send_webhooks_to`]).

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

/// How many webhooks may send at once in a test process.
const WEBHOOK_SLOTS: usize = 64;
/// Where a switched-off slot points; it takes no event type, so nothing is sent.
const NOWHERE: &str = "http://127.0.0.1:9/switched-off";

pub struct LocalStripe {
    pub base: String,
    /// The webhook slots no test holds; `None` until they are registered.
    free_slots: tokio::sync::Mutex<Option<Vec<String>>>,
}

static SHARED: OnceLock<Option<LocalStripe>> = OnceLock::new();

/// The local Stripe, or `None` when none is configured and none can be
/// started (no Python or no localstripe): the caller says it skips.
pub fn shared() -> Option<&'static LocalStripe> {
    SHARED
        .get_or_init(|| match std::env::var("STRIPE_API_BASE") {
            Ok(base) if !base.is_empty() => Some(LocalStripe::at(base)),
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
            return Some(LocalStripe::at(format!("http://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

impl LocalStripe {
    fn at(base: String) -> Self {
        Self {
            base,
            free_slots: tokio::sync::Mutex::new(None),
        }
    }

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

    /// Sends every event to `url`, signed with [`WEBHOOK_SECRET`], until the
    /// slot returned is dropped (drop it before the app behind `url` stops).
    pub async fn send_webhooks_to(&'static self, url: &str) -> Result<WebhookSlot, reqwest::Error> {
        let slot = WebhookSlot {
            stripe: self,
            id: self.borrow_slot().await?,
        };
        self.point_webhook(&slot.id, Some(url)).await?;
        Ok(slot)
    }

    async fn borrow_slot(&self) -> Result<String, reqwest::Error> {
        loop {
            {
                let mut free = self.free_slots.lock().await;
                if free.is_none() {
                    let ids: Vec<String> =
                        (0..WEBHOOK_SLOTS).map(|n| format!("slot-{n}")).collect();
                    for id in &ids {
                        self.point_webhook(id, None).await?;
                    }
                    *free = Some(ids);
                }
                if let Some(id) = free.as_mut().and_then(Vec::pop) {
                    return Ok(id);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Points webhook `id` at `url`, or (`None`) switches it off.
    async fn point_webhook(&self, id: &str, url: Option<&str>) -> Result<(), reqwest::Error> {
        let body = match url {
            Some(url) => serde_json::json!({"url": url, "secret": WEBHOOK_SECRET}),
            None => serde_json::json!({"url": NOWHERE, "secret": WEBHOOK_SECRET, "events": []}),
        };
        Self::client()
            .post(format!("{}/_config/webhooks/{id}", self.base))
            .json(&body)
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

/// A webhook slot a test holds ([`LocalStripe::send_webhooks_to`]).
pub struct WebhookSlot {
    stripe: &'static LocalStripe,
    id: String,
}

impl Drop for WebhookSlot {
    /// Switches the slot off and frees it; waits for that, as the app behind
    /// it is about to stop. A slot that cannot be switched off is not reused.
    fn drop(&mut self) {
        let (stripe, id) = (self.stripe, std::mem::take(&mut self.id));
        // Drop may run inside a runtime: switch it off from a thread of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                stripe.point_webhook(&id, None).await.ok()?;
                stripe.free_slots.lock().await.as_mut()?.push(id);
                Some(())
            })
        })
        .join();
    }
}
