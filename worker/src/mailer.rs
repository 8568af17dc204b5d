//! Outgoing email: real SMTP, or `.eml` files for a first run without a mail server.

use std::{sync::Arc, time::Duration};

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::PoolConfig,
};

use platform::health::MailHealth;

use crate::settings::MailSettings;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("writing mail file: {0}")]
    File(#[from] lettre::transport::file::Error),
    #[error("creating the mail directory: {0}")]
    Dir(#[from] std::io::Error),
    #[error("the mail server did not finish the send within {0:?}")]
    TimedOut(Duration),
}

#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        send_timeout: Duration,
        health: Arc<MailHealth>,
    },
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// Up to `connections` SMTP connections are kept open, one per email in
    /// flight. Throughput comes from them: lettre sends a message's closing
    /// `.` in a write of its own with Nagle's algorithm on, so each message
    /// waits out the server's delayed ACK (~40 ms on Linux) before it is
    /// accepted; one connection manages about 25 messages a second.
    pub fn from_settings(settings: &MailSettings, connections: usize) -> Result<Self, MailError> {
        match &settings.smtp_url {
            Some(url) => {
                let connections = u32::try_from(connections).unwrap_or(u32::MAX);
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(Duration::from_secs(20)))
                    .pool_config(PoolConfig::new().max_size(connections))
                    .build();
                Ok(Mailer::Smtp {
                    transport,
                    send_timeout: settings.send_timeout,
                    health: Arc::default(),
                })
            }
            None => {
                std::fs::create_dir_all(&settings.dir)?;
                Ok(Mailer::Files(AsyncFileTransport::new(&settings.dir)))
            }
        }
    }

    /// Whether sends get through (files always do).
    pub fn health(&self) -> Arc<MailHealth> {
        match self {
            Mailer::Smtp { health, .. } => health.clone(),
            Mailer::Files(_) => Arc::default(),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Mailer::Smtp { .. } => "smtp",
            Mailer::Files(_) => "files",
        }
    }

    /// Sends one message. A server that accepts the connection and then stops
    /// answering is given up on at the send deadline (a transient failure:
    /// the notification is retried), and told to [`Self::health`].
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            Mailer::Smtp {
                transport,
                send_timeout,
                health,
            } => match tokio::time::timeout(*send_timeout, transport.send(message)).await {
                Ok(sent) => {
                    sent?;
                    health.sent();
                }
                Err(_) => {
                    health.timed_out();
                    crate::metrics::SEND_TIMEOUTS.inc();
                    return Err(MailError::TimedOut(*send_timeout));
                }
            },
            Mailer::Files(transport) => {
                transport.send(message).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The api checks addresses with `platform::email` (no mailer compiled in);
    /// every address it lets through must be one this mailer can write to.
    #[test]
    fn the_apis_address_rule_is_the_mailers() {
        let corpus = [
            "ann@example.com",
            "Ann.Lee+tickets@Example.COM",
            "x@localhost",
            "user@[127.0.0.1]",
            "user@[::1]",
            "üñî@exämple.de",
            "用户@例子.广告",
            "\"quoted local\"@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a@b@example.com",
            "a b@example.com",
            "@example.com",
            "ann@",
            "ann",
            "",
            "ann@-example.com",
            "ann@example..com",
            "ann@exa mple.com",
            "a\u{0}@example.com",
            "a@ex\u{0}ample.com",
            "<ann@example.com>",
            "Ann <ann@example.com>",
            "ann@example.com.",
            "very.common@example.org",
            "x@x.x",
            "!#$%&'*+-/=?^_`{|}~@example.org",
        ];
        for address in corpus {
            assert_eq!(
                platform::email::is_valid_address(address),
                address.parse::<lettre::Address>().is_ok(),
                "{address:?}"
            );
        }
    }
}
