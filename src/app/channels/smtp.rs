//! Email through an SMTP server: lettre's SMTP client over a pool of
//! connections (deadpool), driven one command at a time so that every failure
//! is known by the phase it happened in.
//!
//! Why not lettre's own pooled transport: it sends MAIL, RCPT, DATA and the
//! message in one call, so a dropped connection cannot be placed before or after
//! the end of DATA, and its sockets keep Nagle's algorithm on, which stalls the
//! final `.` behind the server's delayed ACK (about 40 ms a message).
//!
//! Outcomes, after RFC 5321 and docs/domain.md:
//! - a 2xx reply to the end of DATA: `Sent` (the id is our Message-ID);
//! - a 4xx reply at any step: `Retry`; a 5xx reply: `Failed`, with the code;
//! - the connection refused or lost before the message body was sent: `Retry`
//!   (the server has accepted nothing);
//! - the connection lost or timed out while the body and its final `.` were on
//!   the way, or while waiting for the reply to them: `InDoubt`.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult};
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;

use super::{Delivery, Outgoing, Transport, email};
use crate::app::config::{EmailSettings, SmtpTls};

pub struct SmtpEmail {
    pool: Pool<Connector>,
    timeout: Duration,
    sender: email::Sender,
}

/// Opens and vets SMTP connections for the pool.
struct Connector {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<(String, SecretString)>,
    timeout: Duration,
    client_id: ClientId,
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("cannot connect to the SMTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the SMTP server did not answer in time")]
    Timeout,
    #[error("{}", describe(.0))]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl managed::Manager for Connector {
    type Type = AsyncSmtpConnection;
    type Error = ConnectError;

    async fn create(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| ConnectError::Timeout)?
    }

    async fn recycle(
        &self,
        conn: &mut AsyncSmtpConnection,
        _: &Metrics,
    ) -> RecycleResult<ConnectError> {
        if conn.has_broken() {
            return Err(RecycleError::message("the connection broke"));
        }
        Ok(())
    }
}

impl Connector {
    async fn connect(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        let mut conn = match self.tls {
            // Implicit TLS: lettre opens the socket and wraps it.
            SmtpTls::Tls => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.client_id,
                    Some(TlsParameters::new(self.host.clone())?),
                    None,
                )
                .await?
            }
            SmtpTls::Starttls | SmtpTls::None => {
                let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
                tcp.set_nodelay(true)?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.client_id)
                        .await?;
                if self.tls == SmtpTls::Starttls {
                    conn.starttls(TlsParameters::new(self.host.clone())?, &self.client_id)
                        .await?;
                }
                conn
            }
        };
        if let Some((user, password)) = &self.credentials {
            let credentials = Credentials::new(user.clone(), password.expose_secret().to_owned());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await?;
        }
        Ok(conn)
    }
}

impl SmtpEmail {
    /// Builds the pool from `[email.smtp]` (checked at start). Connections open
    /// on first use.
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Self> {
        let smtp = &settings.smtp;
        let timeout = Duration::from_secs(smtp.timeout_seconds);
        let connector = Connector {
            host: smtp.host.trim().to_owned(),
            port: smtp.port,
            tls: smtp.tls,
            credentials: (!smtp.username.is_empty())
                .then(|| (smtp.username.clone(), smtp.password.clone())),
            timeout,
            client_id: ClientId::default(),
        };
        let pool = Pool::builder(connector)
            .max_size(smtp.pool_size as usize)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| {
                anyhow::anyhow!("config key `email.smtp`: cannot build the connection pool: {e}")
            })?;
        Ok(Self {
            pool,
            timeout,
            sender: email::Sender::from_settings(settings),
        })
    }

    /// MAIL, RCPT, DATA: nothing the server could deliver has been sent yet.
    async fn envelope(
        conn: &mut AsyncSmtpConnection,
        email: &Message,
        bytes: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let envelope = email.envelope();
        let mut parameters = Vec::new();
        if !bytes.is_ascii() {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), parameters))
            .await?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![])).await?;
        }
        conn.command(Data).await?;
        Ok(())
    }
}

#[async_trait]
impl Transport for SmtpEmail {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        let email = match email::build_or_fail(&self.sender, message) {
            Ok(email) => email,
            Err(failed) => return failed,
        };
        let bytes = email.formatted();
        // A pooled connection may have been closed by the server while idle; that
        // shows at MAIL, before anything was sent, so one fresh connection is tried.
        let mut fresh_try = false;
        loop {
            let mut conn = match self.pool.get().await {
                Ok(conn) => conn,
                Err(e) => {
                    return Delivery::Retry {
                        code: None,
                        error: match e {
                            managed::PoolError::Backend(e) => e.to_string(),
                            other => format!("no SMTP connection: {other}"),
                        },
                    };
                }
            };
            let reused = managed::Object::metrics(&conn).recycle_count > 0;
            let failure =
                match tokio::time::timeout(self.timeout, Self::envelope(&mut conn, &email, &bytes))
                    .await
                {
                    Ok(Ok(())) => match tokio::time::timeout(self.timeout, conn.message(&bytes))
                        .await
                    {
                        Ok(Ok(_)) => {
                            return Delivery::Sent {
                                provider_id: message.email_message_id.clone().unwrap_or_default(),
                            };
                        }
                        Ok(Err(e)) => classify(&e, Phase::Body),
                        Err(_) => Delivery::InDoubt {
                            code: None,
                            error: "the SMTP server did not answer the end of the message in time"
                                .into(),
                        },
                    },
                    Ok(Err(e))
                        if reused && !fresh_try && !e.is_transient() && !e.is_permanent() =>
                    {
                        drop(managed::Object::take(conn));
                        fresh_try = true;
                        continue;
                    }
                    Ok(Err(e)) => classify(&e, Phase::Envelope),
                    Err(_) => Delivery::Retry {
                        code: None,
                        error:
                            "the SMTP server did not answer in time, before the message was sent"
                                .into(),
                    },
                };
            // A connection that failed mid-transaction is not reused.
            drop(managed::Object::take(conn));
            return failure;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Envelope,
    Body,
}

fn classify(e: &lettre::transport::smtp::Error, phase: Phase) -> Delivery {
    let code = e.status().map(|c| c.to_string());
    let error = describe(e);
    // A full mailbox (x.2.2) is soft whatever its first digit (RFC 3463).
    if e.is_transient() || crate::domain::mail::mailbox_full(&error) {
        Delivery::Retry { code, error }
    } else if e.is_permanent() {
        Delivery::Failed { code, error }
    } else if phase == Phase::Envelope {
        Delivery::Retry { code, error }
    } else {
        Delivery::InDoubt { code, error }
    }
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
