//! An IMAP mailbox (async-imap on tokio, TLS by rustls). Each poll logs in,
//! takes in every unseen message, and only after its row is committed flags
//! it `\Seen` or moves it to `processed_mailbox`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use rustls_platform_verifier::ConfigVerifierExt;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{InboxSummary, receive};
use crate::app::config::{ImapSettings, SmtpTls};
use crate::app::context::AppContext;

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
type Stream = Box<dyn Io>;

/// Takes in the messages not taken in yet: with `processed_mailbox`, every
/// message left in the mailbox (taken ones are moved away, so one a person
/// read first is still taken in); without, every unseen one.
pub async fn poll(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<InboxSummary> {
    let imap = &ctx.settings.email.inbound.imap;
    let limit = Duration::from_secs(imap.timeout_seconds);
    let mut session = within(limit, "log in", connect(imap)).await?;
    within(limit, "select the mailbox", async {
        Ok(session.select(&imap.mailbox).await?)
    })
    .await?;
    let query = if imap.processed_mailbox.is_empty() {
        "UNSEEN"
    } else {
        "ALL"
    };
    let mut uids: Vec<u32> = within(limit, "search", async {
        Ok(session.uid_search(query).await?)
    })
    .await?
    .into_iter()
    .collect();
    uids.sort_unstable();
    let mut summary = InboxSummary::default();
    for uid in uids {
        let raw = within(limit, "fetch a message", async {
            let fetched: Vec<_> = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await?
                .try_collect()
                .await?;
            Ok(fetched
                .iter()
                .find_map(|f| f.body().map(<[u8]>::to_vec))
                .unwrap_or_default())
        })
        .await?;
        summary.count(&receive(ctx, &raw, now).await?);
        within(limit, "mark a message done", done(&mut session, imap, uid)).await?;
    }
    // The messages are stored and marked; a failed goodbye loses nothing.
    if let Err(e) = session.logout().await {
        tracing::debug!(error = %e, "the IMAP server did not say goodbye");
    }
    Ok(summary)
}

async fn within<T>(
    limit: Duration,
    what: &str,
    step: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(limit, step)
        .await
        .map_err(|_| anyhow::anyhow!("the IMAP server did not answer in time ({what})"))?
        .with_context(|| format!("IMAP: failed to {what}"))
}

/// Flags the message `\Seen`, or moves it to `processed_mailbox`.
async fn done(session: &mut Session<Stream>, imap: &ImapSettings, uid: u32) -> anyhow::Result<()> {
    let uid = uid.to_string();
    if imap.processed_mailbox.is_empty() {
        let _: Vec<_> = session
            .uid_store(&uid, "+FLAGS (\\Seen)")
            .await?
            .try_collect()
            .await?;
    } else {
        session.uid_mv(&uid, &imap.processed_mailbox).await?;
    }
    Ok(())
}

async fn connect(imap: &ImapSettings) -> anyhow::Result<Session<Stream>> {
    let tcp = TcpStream::connect((imap.host.as_str(), imap.port))
        .await
        .with_context(|| format!("Failed to reach {}:{}", imap.host, imap.port))?;
    let client: Client<Stream> = match imap.tls {
        SmtpTls::None => greeted(Box::new(tcp)).await?,
        SmtpTls::Tls => greeted(Box::new(tls(&imap.host, tcp).await?)).await?,
        SmtpTls::Starttls => {
            let mut plain = greeted(Box::new(tcp) as Stream).await?;
            plain.run_command_and_check_ok("STARTTLS", None).await?;
            let upgraded = tls(&imap.host, plain.into_inner()).await?;
            Client::new(Box::new(upgraded) as Stream)
        }
    };
    client
        .login(&imap.username, imap.password.expose_secret())
        .await
        .map_err(|(e, _)| anyhow::anyhow!("the IMAP server refused the login: {e}"))
}

/// A client that has read the server's greeting.
async fn greeted(stream: Stream) -> anyhow::Result<Client<Stream>> {
    let mut client = Client::new(stream);
    client
        .read_response()
        .await?
        .context("the IMAP server closed the connection before its greeting")?;
    Ok(client)
}

async fn tls<S>(host: &str, stream: S) -> anyhow::Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = rustls::ClientConfig::with_platform_verifier()?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("`{host}` is not a host name TLS can check"))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await?)
}
