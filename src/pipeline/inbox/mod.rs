//! Email replies come in: fetched from a folder of `.eml` files or an IMAP
//! mailbox ([`folder`], [`imap`]), read ([`crate::domain::mail`]), matched to
//! the client and screened exactly as SMS replies are ([`replies::receive`]).
//!
//! Nothing lost, nothing twice: each message is stored (committed) before
//! its source marks it done, and a message fetched again after a crash is
//! recognised by its Message-ID (or, without one, by a hash of its bytes). A
//! message that cannot be read is stored as unmatched, with the reason, and
//! marked done like any other: it never stops a poll or makes it loop.
//!
//! Matching, in order: what it answers (`In-Reply-To`, `References`, and a
//! bounce's returned Message-ID) against the Message-IDs we sent; then the
//! sender's address, when exactly one client has it; else it is unmatched.

pub mod folder;
pub mod imap;

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::app::config::InboundTransportKind;
use crate::app::context::AppContext;
use crate::domain::Channel;
use crate::domain::mail::{self, Automatic};
use crate::pipeline::replies::{self, Incoming, Kind, Received, Sender};
use crate::store::{inbound, messages};

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InboxSummary {
    /// New messages stored.
    pub stored: u64,
    /// Of those, matched to a client.
    pub matched: u64,
    /// Of those, matched to no client (admins see them).
    pub unmatched: u64,
    /// Of those, auto-replies (stored; no engagement, no notice).
    pub auto_replies: u64,
    /// Of those, delivery failures.
    pub bounces: u64,
    /// Messages stored before (fetched again after a crash or a repeat).
    pub duplicates: u64,
}

impl fmt::Display for InboxSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored {}, matched {}, unmatched {}, auto-replies {}, bounces {}, duplicates {}",
            self.stored,
            self.matched,
            self.unmatched,
            self.auto_replies,
            self.bounces,
            self.duplicates
        )
    }
}

impl InboxSummary {
    fn count(&mut self, received: &Received) {
        match *received {
            Received::Duplicate => self.duplicates += 1,
            Received::Stored {
                matched, automatic, ..
            } => {
                self.stored += 1;
                if matched {
                    self.matched += 1;
                } else {
                    self.unmatched += 1;
                }
                match automatic {
                    Some(inbound::Automatic::AutoReply) => self.auto_replies += 1,
                    Some(inbound::Automatic::Bounce { .. }) => self.bounces += 1,
                    None => {}
                }
            }
        }
    }
}

/// Fetches once from the configured source and takes in every message.
pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<InboxSummary> {
    match ctx.settings.email.inbound.transport {
        InboundTransportKind::Off => Ok(InboxSummary::default()),
        InboundTransportKind::Folder => folder::poll(ctx, now).await,
        InboundTransportKind::Imap => imap::poll(ctx, now).await,
    }
}

/// Reads one raw message and hands it to [`replies::receive`]. On an error
/// the source keeps the message for the next poll. The message may be stored
/// already (the database failed after storing it, while acting on it): the
/// next poll then sees a duplicate and does not act again: the reply shows
/// on `/replies`, but what it called for (a hold, an opt-out) waits for a
/// person, and the failed job run is logged for an operator.
pub async fn receive(ctx: &AppContext, raw: &[u8], now: DateTime<Utc>) -> anyhow::Result<Received> {
    let address = ctx.settings.email.inbound.address.as_str();
    let email = match mail::read(raw) {
        Ok(email) => email,
        Err(reason) => {
            let text = String::from_utf8_lossy(raw);
            let body: String = text.chars().take(2000).collect();
            let key = hash_of(raw);
            let incoming = Incoming {
                channel: Channel::Email,
                from: "",
                to: Some(address),
                body: &body,
                provider_id: Some(&key),
                subject: None,
                sender: Sender::Nobody,
                kind: Kind::Unreadable(&reason),
            };
            return replies::receive(ctx, &incoming, now).await;
        }
    };
    let key = email.message_id.clone().unwrap_or_else(|| hash_of(raw));
    let mut conn = ctx.store.conn().await?;
    if inbound::provider_id_known(&mut conn, &key).await? {
        return Ok(Received::Duplicate);
    }
    let answered = messages::client_of_email_ids(&mut conn, &email.answers).await?;
    drop(conn);
    let from = email.from.as_deref();
    // A bounce is about the address it could not reach; other mail, about
    // its sender.
    let (kind, address_of, body) = match &email.automatic {
        Some(Automatic::Bounce(bounce)) => (
            Kind::Bounce(bounce),
            bounce.recipient.as_deref(),
            Cow::Owned(bounce_text(bounce)),
        ),
        Some(Automatic::AutoReply) => (Kind::AutoReply, from, Cow::Borrowed(email.text.as_str())),
        None => (Kind::Person, from, Cow::Borrowed(email.text.as_str())),
    };
    let sender = match (answered, address_of) {
        (Some(id), _) => Sender::Client(id),
        (None, Some(address)) => Sender::Email(address),
        (None, None) => Sender::Nobody,
    };
    let incoming = Incoming {
        channel: Channel::Email,
        from: from.unwrap_or(""),
        to: Some(address),
        body: &body,
        provider_id: Some(&key),
        subject: email.subject.as_deref(),
        sender,
        kind,
    };
    replies::receive(ctx, &incoming, now).await
}

/// What a coach reads of a delivery failure.
fn bounce_text(bounce: &mail::Bounce) -> String {
    let recipient = bounce
        .recipient
        .as_deref()
        .unwrap_or("the client's address");
    format!(
        "{} bounce: email to {recipient} {}{}",
        if bounce.hard { "Hard" } else { "Soft" },
        match (bounce.hard, bounce.status.as_deref()) {
            (true, _) => "failed for good; no email goes there until the address changes",
            (false, Some(s)) if s.starts_with('5') => {
                "was refused, but not for the address; it is still used"
            }
            (false, _) => "was delayed; it will be tried again",
        },
        match (&bounce.status, &bounce.diagnostic) {
            (Some(status), Some(why)) => format!(" ({status}: {why})"),
            (Some(status), None) => format!(" ({status})"),
            (None, Some(why)) => format!(" ({why})"),
            (None, None) => String::new(),
        }
    )
}

/// The key of a message without a Message-ID: the same bytes, the same key.
fn hash_of(raw: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw)))
}
