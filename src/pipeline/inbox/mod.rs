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

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::app::config::InboundTransportKind;
use crate::app::context::AppContext;
use crate::domain::mail::{self, Automatic, Email};
use crate::domain::{Channel, EmailProblem};
use crate::pipeline::replies::{self, Class, Classification, Incoming};
use crate::store::audit::{self, Actor};
use crate::store::inbound::{self, NewReply};
use crate::store::{clients, messages};

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

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Duplicate,
    Stored {
        matched: bool,
        automatic: Option<inbound::Automatic>,
    },
}

impl InboxSummary {
    fn count(&mut self, received: Received) {
        match received {
            Received::Duplicate => self.duplicates += 1,
            Received::Stored { matched, automatic } => {
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

/// Stores one raw message and acts on it. On an error the source keeps the
/// message for the next poll. The message may be stored already (the
/// database failed after storing it, while acting on it): the next poll
/// then sees a duplicate and does not act again: the reply shows on
/// `/replies`, but what it called for (a hold, an opt-out) waits for a
/// person, and the failed job run is logged for an operator.
pub async fn receive(ctx: &AppContext, raw: &[u8], now: DateTime<Utc>) -> anyhow::Result<Received> {
    let email = match mail::read(raw) {
        Ok(email) => email,
        Err(reason) => return unreadable(ctx, raw, &reason, now).await,
    };
    let key = email.message_id.clone().unwrap_or_else(|| hash_of(raw));
    let mut conn = ctx.store.conn().await?;
    if inbound::provider_id_known(&mut conn, &key).await? {
        return Ok(Received::Duplicate);
    }
    let answered = messages::client_of_email_ids(&mut conn, &email.answers).await?;
    let client_id = match (answered, &email.automatic) {
        (Some(id), _) => Some(id),
        (None, Some(Automatic::Bounce(bounce))) => match &bounce.recipient {
            Some(to) => clients::by_email(&mut conn, to).await?.map(|c| c.id),
            None => None,
        },
        (None, _) => match &email.from {
            Some(from) => clients::by_email(&mut conn, from).await?.map(|c| c.id),
            None => None,
        },
    };
    drop(conn);
    let address = ctx.settings.email.inbound.address.as_str();
    match &email.automatic {
        Some(Automatic::Bounce(bounce)) => bounced(ctx, &email, bounce, &key, client_id, now).await,
        // A machine's text with crisis words in it is read as a person's:
        // a missed crisis costs more than a false alarm.
        Some(Automatic::AutoReply) if !ctx.words.classify(&email.text).is(Class::Crisis) => {
            let class = Classification::default();
            let mut conn = ctx.store.conn().await?;
            let stored = inbound::store(
                &mut conn,
                &NewReply {
                    automatic: Some(inbound::Automatic::AutoReply),
                    unmatched_reason: client_id
                        .is_none()
                        .then_some("an auto-reply to no message we sent"),
                    ..machine_row(ctx, &email, &email.text, client_id, &class, &key)
                },
                now,
            )
            .await?;
            if stored.is_some() {
                ctx.metrics.inbound("auto_reply");
            }
            Ok(stored.map_or(Received::Duplicate, |_| Received::Stored {
                matched: client_id.is_some(),
                automatic: Some(inbound::Automatic::AutoReply),
            }))
        }
        _ => {
            let incoming = Incoming {
                channel: Channel::Email,
                from: email.from.as_deref().unwrap_or(""),
                to: Some(address),
                body: &email.text,
                provider_id: Some(&key),
                subject: email.subject.as_deref(),
                client_id,
            };
            replies::receive(ctx, &incoming, now).await?;
            // `receive` looks for the sender only where this did already.
            Ok(Received::Stored {
                matched: client_id.is_some(),
                automatic: None,
            })
        }
    }
}

/// A delivery failure. A hard one (5.x.x) stops email to the address, cancels
/// unsent email to it, and waits for a person, so the coach hears of it in
/// their notice; a soft one (4.x.x) changes nothing.
async fn bounced(
    ctx: &AppContext,
    email: &Email,
    bounce: &mail::Bounce,
    key: &str,
    client_id: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<Received> {
    let recipient = bounce
        .recipient
        .as_deref()
        .unwrap_or("the client's address");
    let body = format!(
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
    );
    let automatic = inbound::Automatic::Bounce { hard: bounce.hard };
    let class = Classification::default();
    let mut tx = ctx.store.begin().await?;
    let stored = inbound::store(
        &mut tx,
        &NewReply {
            automatic: Some(automatic),
            unmatched_reason: client_id
                .is_none()
                .then_some("a bounce of no message we sent"),
            ..machine_row(ctx, email, &body, client_id, &class, key)
        },
        now,
    )
    .await?;
    if stored.is_none() {
        return Ok(Received::Duplicate);
    }
    // A late bounce for an address the client has since changed says
    // nothing of the new one.
    let current = match (bounce.hard, client_id) {
        (true, Some(id)) => clients::by_id(&mut tx, id).await?.filter(|c| {
            bounce.recipient.as_deref().is_none_or(|failed| {
                c.email
                    .as_deref()
                    .is_some_and(|email| email.eq_ignore_ascii_case(failed))
            })
        }),
        _ => None,
    };
    if let Some(id) = current.map(|c| c.id) {
        clients::set_email_bad(&mut tx, id, EmailProblem::Bounced, now).await?;
        audit::record(
            &mut tx,
            audit::Entry {
                actor: Actor::System("email bounce"),
                action: "email_bounced",
                client_id: Some(id),
                message_id: None,
                detail: Some(body.clone()),
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    ctx.metrics.inbound("bounce");
    Ok(Received::Stored {
        matched: client_id.is_some(),
        automatic: Some(automatic),
    })
}

/// The row of an email no classifier acts on (mail a machine wrote).
fn machine_row<'a>(
    ctx: &'a AppContext,
    email: &'a Email,
    body: &'a str,
    client_id: Option<i64>,
    class: &'a Classification,
    key: &'a str,
) -> NewReply<'a> {
    NewReply {
        channel: Channel::Email,
        from: email.from.as_deref().unwrap_or(""),
        to: Some(&ctx.settings.email.inbound.address),
        body,
        client_id,
        class,
        provider_id: Some(key),
        subject: email.subject.as_deref(),
        automatic: None,
        unmatched_reason: None,
    }
}

/// A message that cannot be read at all: stored as unmatched with the reason
/// and the first of its text, for an admin to look at.
async fn unreadable(
    ctx: &AppContext,
    raw: &[u8],
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Received> {
    let text = String::from_utf8_lossy(raw);
    let body: String = text.chars().take(2000).collect();
    let key = hash_of(raw);
    let reason = format!("unreadable: {reason}");
    let class = Classification::default();
    let mut conn = ctx.store.conn().await?;
    let stored = inbound::store(
        &mut conn,
        &NewReply {
            channel: Channel::Email,
            from: "",
            to: Some(&ctx.settings.email.inbound.address),
            body: &body,
            client_id: None,
            class: &class,
            provider_id: Some(&key),
            subject: None,
            automatic: None,
            unmatched_reason: Some(&reason),
        },
        now,
    )
    .await?;
    tracing::warn!(%reason, "an email that cannot be read was stored as unmatched");
    if stored.is_some() {
        ctx.metrics.inbound("unreadable");
    }
    Ok(stored.map_or(Received::Duplicate, |_| Received::Stored {
        matched: false,
        automatic: None,
    }))
}

/// The key of a message without a Message-ID: the same bytes, the same key.
fn hash_of(raw: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw)))
}
