//! Replies from clients: stored first, then classified ([`classify`]) and
//! acted on, class by class (a text may be several):
//!
//! - **Crisis:** the client goes on hold, the coach (or whoever covers) is
//!   alerted at once, the alert stays open until someone says "I'm on it", and
//!   it escalates until then ([`alerts`]). If the agency turned it on, the
//!   client gets the resources message once.
//! - **Opt-out** (a keyword or the client's own words): SMS ends at once and
//!   unsent SMS are cancelled; at most one confirmation is sent.
//! - **Wrong number:** the phone is marked a stranger's, unsent SMS are
//!   cancelled, the sender gets one short apology with no program words. It
//!   is not engagement.
//! - **Help:** the help text. **Opt-in:** SMS again, if the client had opted
//!   out (otherwise "yes" is just a reply).
//! - **Anything else** is the engagement event `message_reply`.
//!
//! Every stored reply that is not one bare keyword waits for a person
//! (`needs_reply`) until a coach handles it or records a contact; each
//! dispatch run tells coaches what is waiting ([`alerts::notify_replies`]).

pub mod alerts;

use chrono::{DateTime, Utc};

pub use crate::domain::words::{Class, Classification, Match, Words};

use crate::app::context::AppContext;
use crate::domain::eligibility::Refusal;
use crate::domain::{Channel, ClientStatus, EmailProblem, EventKind, ReplyAction};
use crate::store::audit::{self, Actor};
use crate::store::clients;
use crate::store::coaches::{self, CoachRow};
use crate::store::episodes;
use crate::store::events::{self, NewEvent};
use crate::store::{inbound, messages};

/// An inbound message as the provider reports it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub channel: Channel,
    pub from: &'a str,
    pub to: Option<&'a str>,
    /// The sender's own words (for an email, without the quoted history).
    pub body: &'a str,
    pub provider_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// The client it was matched to already (an email, by what it answers);
    /// otherwise the client is found by the sender's number or address.
    pub client_id: Option<i64>,
}

/// Stores the reply, then acts on it. Returns the texts to answer with (none,
/// or one per thing to say). A repeated delivery of the same provider message
/// is stored and acted on only once, and answered with nothing.
pub async fn receive(
    ctx: &AppContext,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let client = {
        let mut conn = ctx.store.conn().await?;
        match (incoming.client_id, incoming.channel) {
            (Some(id), _) => clients::by_id(&mut conn, id).await?,
            (None, Channel::Sms) => clients::by_phone(&mut conn, incoming.from).await?,
            (None, Channel::Email) => clients::by_email(&mut conn, incoming.from).await?,
        }
    };
    let names: Vec<&str> = client
        .iter()
        .flat_map(|c| [Some(c.first_name.as_str()), c.preferred_name.as_deref()])
        .flatten()
        .collect();
    let mut class = ctx.words.classify_from(incoming.body, &names);
    // "yes" from a client who never opted out answers a question.
    let opted_out = client
        .as_ref()
        .is_some_and(|c| c.opted_out_at(incoming.channel).is_some());
    if !opted_out {
        class = class.without(Class::OptIn);
    }
    // Stored before anything else, so that no later failure can lose it.
    let stored = {
        let mut conn = ctx.store.conn().await?;
        inbound::store(
            &mut conn,
            &inbound::NewReply {
                channel: incoming.channel,
                from: incoming.from,
                to: incoming.to,
                body: incoming.body,
                client_id: client.as_ref().map(|c| c.id),
                class: &class,
                provider_id: incoming.provider_id,
                subject: incoming.subject,
                automatic: None,
                unmatched_reason: client.is_none().then_some(match incoming.channel {
                    Channel::Sms => "no client has this number",
                    Channel::Email => {
                        "no single client has this address, and it answers nothing we sent"
                    }
                }),
            },
            now,
        )
        .await?
    };
    let Some(reply_id) = stored else {
        return Ok(Vec::new());
    };
    ctx.metrics.inbound(class.primary().as_ref());
    let Some(client) = client else {
        tracing::warn!("a reply from an address no client has; stored as unmatched");
        return unmatched(ctx, &class, incoming, reply_id, now).await;
    };
    let mut answers = Vec::new();
    let mut tx = ctx.store.begin().await?;
    let mut done: Vec<(&str, Option<String>)> = Vec::new();
    let channel = incoming.channel;
    if class.is(Class::Crisis) {
        episodes::change_status(&mut tx, client.id, ClientStatus::Hold, now).await?;
        // Resources are answered by SMS only (an email crisis alerts, and
        // its coach writes back); an email one must not count as sent.
        if channel == Channel::Sms
            && ctx.settings.crisis.auto_reply
            && !inbound::resources_sent(&mut tx, client.id).await?
        {
            inbound::mark_resources_sent(&mut tx, reply_id).await?;
            answers.push(ctx.settings.crisis.resources_message.clone());
        }
        done.push((
            "crisis_hold",
            Some(format!(
                "matched {}; the client is on hold until a coach resumes them",
                rules_of(&class, Class::Crisis)
            )),
        ));
    }
    if class.is(Class::WrongNumber) && channel == Channel::Email {
        clients::set_email_bad(&mut tx, client.id, EmailProblem::WrongPerson, now).await?;
        done.push((
            "wrong_person",
            Some(format!(
                "{} marked as not the client's; matched {}",
                incoming.from,
                rules_of(&class, Class::WrongNumber)
            )),
        ));
    }
    if class.is(Class::WrongNumber) && channel == Channel::Sms {
        let first = !client.phone_is_wrong();
        clients::set_phone_wrong(&mut tx, client.id, true, now).await?;
        messages::cancel_unsent(
            &mut tx,
            &[client.id],
            messages::Unsent::On(Channel::Sms),
            Refusal::WrongNumber,
            now,
        )
        .await?;
        if first {
            answers.push(ctx.settings.replies.wrong_number_reply.clone());
        }
        done.push((
            "wrong_number",
            Some(format!(
                "{} marked as not the client's; matched {}",
                incoming.from,
                rules_of(&class, Class::WrongNumber)
            )),
        ));
    }
    if class.is(Class::OptOut) {
        let first = client.opted_out_at(channel).is_none();
        clients::opt_out(&mut tx, client.id, channel, now).await?;
        // The provider confirms a bare STOP itself, unless told it does not.
        let confirm = first
            && !class.is(Class::WrongNumber)
            && (!class.keyword || ctx.settings.replies.confirm_opt_out);
        if confirm && channel == Channel::Sms {
            answers.push(ctx.settings.replies.opt_out_confirmation.clone());
        }
        let how = if class.keyword {
            "keyword".to_owned()
        } else {
            format!(
                "in the client's words ({}): check it was meant",
                rules_of(&class, Class::OptOut)
            )
        };
        done.push(("opt_out", Some(format!("{channel}, {how}"))));
    }
    if class.is(Class::OptIn) && !class.is(Class::OptOut) {
        clients::record_opt_in(&mut tx, client.id, channel, now).await?;
        done.push(("opt_in", Some(format!("{channel}, from the client"))));
    }
    if class.is(Class::Help) {
        // A phone a stranger holds is never told what the program is.
        if channel == Channel::Sms && !client.phone_is_wrong() && !class.is(Class::WrongNumber) {
            answers.push(ctx.settings.replies.help_text.clone());
        }
        done.push(("help", None));
    }
    if done.is_empty() {
        let reply = NewEvent {
            kind: EventKind::MessageReply,
            occurred_at: now,
            source: channel.as_ref(),
            note: None,
            by: None,
        };
        let first_step = ctx.settings.first_step_after();
        events::record(&mut tx, &(&client).into(), &reply, first_step, now).await?;
        done.push(("reply", None));
    }
    for (action, detail) in done {
        audit::record(
            &mut tx,
            audit::Entry {
                actor: Actor::System("client reply"),
                action,
                client_id: Some(client.id),
                message_id: None,
                detail,
            },
            now,
        )
        .await?;
    }
    if !answers.is_empty() {
        inbound::set_answer(&mut tx, reply_id, &answers.join("\n")).await?;
    }
    tx.commit().await?;
    if class.is(Class::Crisis) {
        alerts::alert_crisis(ctx, reply_id, Some(&client), now).await?;
    }
    Ok(answers)
}

/// A reply from an address no client has. A crisis still reaches a person
/// (the admins: it may be a client on a new phone); a wrong number gets its
/// apology once.
async fn unmatched(
    ctx: &AppContext,
    class: &Classification,
    incoming: &Incoming<'_>,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let mut answers = Vec::new();
    if incoming.channel == Channel::Sms {
        let mut conn = ctx.store.conn().await?;
        // No help text: it names the program, and this sender may be a
        // stranger who was never texted.
        if class.is(Class::WrongNumber)
            && !inbound::wrong_number_answered(&mut conn, incoming.from).await?
        {
            answers.push(ctx.settings.replies.wrong_number_reply.clone());
        }
        if !answers.is_empty() {
            inbound::set_answer(&mut conn, reply_id, &answers.join("\n")).await?;
        }
    }
    if class.is(Class::Crisis) {
        alerts::alert_crisis(ctx, reply_id, None, now).await?;
    }
    Ok(answers)
}

/// The rules of `class` that matched, for the audit log.
fn rules_of(class: &Classification, which: Class) -> String {
    let rules: Vec<String> = class
        .matched
        .iter()
        .filter(|m| m.class == which)
        .map(|m| format!("`{}`", m.rule))
        .collect();
    rules.join(", ")
}

/// Why a coach's action on a reply did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// No such reply, or not one of the coach's (or their covered) clients'.
    #[error("no such reply")]
    NotFound,
    #[error("reply {0} is not waiting for anyone")]
    NotWaiting(i64),
    #[error("reply {0} is not an open crisis alert")]
    NotOpenCrisis(i64),
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Applies `action` to reply `id` as `coach`, audited (as covering, when the
/// coach acts for one who is away).
pub async fn act(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
    action: ReplyAction,
    now: DateTime<Utc>,
) -> Result<inbound::ReplyView, ReplyError> {
    let mut tx = ctx.store.begin().await?;
    let scope = coaches::scope_for(&mut tx, coach, now).await?;
    let Some(reply) = inbound::by_id(&mut tx, id).await? else {
        return Err(ReplyError::NotFound);
    };
    let visible = match reply.client_coach_id {
        Some(coach_id) => scope.includes(coach_id),
        None => coach.is_admin(),
    };
    if !visible {
        return Err(ReplyError::NotFound);
    }
    if !inbound::act(&mut tx, id, action, coach.id, now).await? {
        return Err(match action {
            ReplyAction::Handled => ReplyError::NotWaiting(id),
            ReplyAction::Acknowledge => ReplyError::NotOpenCrisis(id),
        });
    }
    let name = match action {
        ReplyAction::Handled => "reply_handled",
        ReplyAction::Acknowledge => "crisis_acknowledged",
    };
    let client = match &reply.client_external_id {
        Some(external_id) => clients::by_external_id(&mut tx, external_id).await?,
        None => None,
    };
    let detail = Some(format!("reply {id}"));
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::coach(coach),
            action: name,
            client_id: client.as_ref().map(|c| c.id),
            message_id: None,
            detail: match &client {
                Some(c) => crate::pipeline::casework::covering_note(coach, c.coach_id, detail),
                None => detail,
            },
        },
        now,
    )
    .await?;
    let updated = inbound::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("reply {id} vanished"))?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(updated)
}
