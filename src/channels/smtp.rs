//! Email through an SMTP server with lettre's pooled async transport.
//!
//! Outcomes, after RFC 5321 and DOMAIN.md:
//! - a 2xx reply to the end of DATA: `Sent` (the id is our Message-ID);
//! - a 4xx reply: `Retry`; a 5xx reply: `Failed`, with the code;
//! - the connection refused, or TLS failing, before anything was sent: `Retry`;
//! - any other dropped connection or timeout: `InDoubt`. The pooled transport
//!   cannot say whether the drop came before or after the end of DATA, and a
//!   resend could deliver twice, so reengage assumes the worst and leaves the
//!   decision to the coach.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{Delivery, Outgoing, Transport, email};
use crate::config::{EmailSettings, SmtpTls};

pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sender: email::Sender,
}

impl SmtpEmail {
    /// Builds the pooled transport from `[email.smtp]` (checked at start).
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Self> {
        let smtp = &settings.smtp;
        let host = smtp.host.trim();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(smtp.timeout_seconds)))
            .pool_config(PoolConfig::new().max_size(smtp.pool_size));
        let tls = || {
            TlsParameters::new(host.to_owned()).map_err(|e| {
                anyhow::anyhow!("config key `email.smtp.host`: cannot set up TLS for {host}: {e}")
            })
        };
        builder = match smtp.tls {
            SmtpTls::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpTls::None => builder.tls(Tls::None),
        };
        if !smtp.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                smtp.username.clone(),
                smtp.password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            sender: email::Sender::from_settings(settings),
        })
    }
}

#[async_trait]
impl Transport for SmtpEmail {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        let email = match email::build(&self.sender, message) {
            Ok(email) => email,
            Err(e) => {
                return Delivery::Failed {
                    code: None,
                    error: e.to_string(),
                };
            }
        };
        match self.transport.send(email).await {
            Ok(_) => Delivery::Sent {
                provider_id: message.email_message_id.clone().unwrap_or_default(),
            },
            Err(e) => classify(&e),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> Delivery {
    let code = e.status().map(|c| c.to_string());
    let error = describe(e);
    if e.is_transient() {
        Delivery::Retry { code, error }
    } else if e.is_permanent() {
        Delivery::Failed { code, error }
    } else if refused(e) || e.is_tls() {
        Delivery::Retry { code, error }
    } else {
        Delivery::InDoubt { code, error }
    }
}

/// The server could not be reached at all: nothing was sent.
fn refused(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            );
        }
        source = s.source();
    }
    false
}

/// The error with its causes, on one line (the server's reply text included).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
