//! The one way in for everything a client (or a machine) sends us: an SMS
//! from the provider's webhook, an email from IMAP or the folder. It finds
//! the client, reads the text once, stores it once, and then acts on it.

use chrono::{DateTime, Utc};

use super::incoming::{Incoming, Kind, Sender};
use super::respond;
use crate::app::context::AppContext;
use crate::domain::Channel;
use crate::domain::client::Client;
use crate::domain::words::{Class, Classification};
use crate::store::clients;
use crate::store::inbound::{self, Automatic, NewReply};

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Delivered before: nothing stored or done again.
    Duplicate,
    Stored {
        matched: bool,
        /// `Some` for mail no person wrote.
        automatic: Option<Automatic>,
        /// The texts to answer an SMS with (none, or one per thing to say).
        answers: Vec<String>,
    },
}

impl Received {
    /// The texts to answer with.
    pub fn answers(&self) -> &[String] {
        match self {
            Received::Duplicate => &[],
            Received::Stored { answers, .. } => answers,
        }
    }
}

/// Finds the client, reads the text, stores it (before anything else, so
/// that no later failure can lose it), then acts on it.
pub async fn receive(
    ctx: &AppContext,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Received> {
    let client = find_client(ctx, incoming.sender).await?;
    let (class, automatic) = read(ctx, incoming, client.as_ref());
    let Some(reply_id) = store(ctx, incoming, client.as_ref(), &class, automatic, now).await?
    else {
        return Ok(Received::Duplicate);
    };
    let answers = match (automatic, incoming.kind) {
        (_, Kind::Bounce(bounce)) => {
            respond::bounced(ctx, incoming.body, bounce, client.as_ref(), now).await?;
            Vec::new()
        }
        (Some(_), _) => {
            ctx.metrics.inbound("auto_reply");
            Vec::new()
        }
        (None, Kind::Unreadable(reason)) => {
            tracing::warn!(%reason, "an email that cannot be read was stored as unmatched");
            ctx.metrics.inbound("unreadable");
            Vec::new()
        }
        (None, _) => {
            ctx.metrics.inbound(class.primary().as_ref());
            match &client {
                Some(client) => {
                    respond::person(ctx, client, &class, incoming, reply_id, now).await?
                }
                None => {
                    tracing::warn!("a reply from an address no client has; stored as unmatched");
                    respond::stranger(ctx, &class, incoming, reply_id, now).await?
                }
            }
        }
    };
    Ok(Received::Stored {
        matched: client.is_some(),
        automatic,
        answers,
    })
}

async fn find_client(ctx: &AppContext, sender: Sender<'_>) -> anyhow::Result<Option<Client>> {
    let mut conn = ctx.store.conn().await?;
    match sender {
        Sender::Client(id) => clients::by_id(&mut conn, id).await,
        Sender::Phone(phone) => clients::by_phone(&mut conn, phone).await,
        Sender::Email(email) => clients::by_email(&mut conn, email).await,
        Sender::Nobody => Ok(None),
    }
}

/// The text read once: what it is, and whether a machine wrote it.
fn read(
    ctx: &AppContext,
    incoming: &Incoming<'_>,
    client: Option<&Client>,
) -> (Classification, Option<Automatic>) {
    let person = || {
        let names: Vec<&str> = client
            .iter()
            .flat_map(|c| [Some(c.first_name.as_str()), c.preferred_name.as_deref()])
            .flatten()
            .collect();
        let class = ctx.words.classify_from(incoming.body, &names);
        // "yes" from a client who never opted out answers a question.
        let opted_out = client.is_some_and(|c| c.opted_out_at(incoming.channel).is_some());
        if opted_out {
            class
        } else {
            class.without(Class::OptIn)
        }
    };
    match incoming.kind {
        Kind::Person => (person(), None),
        Kind::AutoReply => {
            let class = person();
            if class.is(Class::Crisis) {
                (class, None)
            } else {
                (Classification::default(), Some(Automatic::AutoReply))
            }
        }
        Kind::Bounce(bounce) => (
            Classification::default(),
            Some(Automatic::Bounce { hard: bounce.hard }),
        ),
        Kind::Unreadable(_) => (Classification::default(), None),
    }
}

/// Stores the message; `None` if it was delivered before.
async fn store(
    ctx: &AppContext,
    incoming: &Incoming<'_>,
    client: Option<&Client>,
    class: &Classification,
    automatic: Option<Automatic>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let unmatched_reason = match (incoming.kind, automatic, incoming.channel) {
        (Kind::Unreadable(reason), _, _) => Some(format!("unreadable: {reason}")),
        _ if client.is_some() => None,
        (_, Some(Automatic::AutoReply), _) => Some("an auto-reply to no message we sent".into()),
        (_, Some(Automatic::Bounce { .. }), _) => Some("a bounce of no message we sent".into()),
        (_, None, Channel::Sms) => Some("no client has this number".into()),
        (_, None, Channel::Email) => {
            Some("no single client has this address, and it answers nothing we sent".into())
        }
    };
    let mut conn = ctx.store.conn().await?;
    inbound::store(
        &mut conn,
        &NewReply {
            channel: incoming.channel,
            from: incoming.from,
            to: incoming.to,
            body: incoming.body,
            client_id: client.map(|c| c.id),
            class,
            provider_id: incoming.provider_id,
            subject: incoming.subject,
            automatic,
            unmatched_reason: unmatched_reason.as_deref(),
        },
        now,
    )
    .await
}
