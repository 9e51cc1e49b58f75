//! What a stored message calls for, class by class (a text may be several).
//! A person's reply to their client record; a stranger's; a bounce.

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::alerts;
use super::incoming::Incoming;
use crate::app::channels::{Delivery, Outgoing};
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::client::Client;
use crate::domain::eligibility::{Purpose, Refusal, eligibility};
use crate::domain::mail::Bounce;
use crate::domain::words::{Class, Classification};
use crate::domain::{Channel, ClientStatus, EmailProblem, EventKind, StatusReason};
use crate::store::audit::{self, Actor};
use crate::store::episodes;
use crate::store::events::{self, NewEvent};
use crate::store::{clients, inbound, messages};

/// The reply being acted on.
struct Reply<'a> {
    ctx: &'a AppContext,
    now: DateTime<Utc>,
    client: &'a Client,
    class: &'a Classification,
    incoming: &'a Incoming<'a>,
    id: i64,
}

/// What the actions on one reply did: the texts to answer with, and the
/// audit entries (action, detail).
#[derive(Default)]
struct Done {
    answers: Vec<String>,
    /// The crisis resources, to send by email once the reply is committed.
    resources_email: Option<String>,
    audit: Vec<(AuditAction, Option<String>)>,
}

impl Done {
    /// Answers with `text` if the client may be written to for `purpose`.
    fn answer(&mut self, client: &Client, channel: Channel, purpose: Purpose, text: &str) {
        if eligibility(client, channel, purpose).is_ok() {
            self.answers.push(text.to_owned());
        }
    }
}

/// Acts on a client's reply, class by class, in one transaction; a crisis
/// alerts once it is committed. Returns the texts to answer with.
pub async fn person(
    ctx: &AppContext,
    client: &Client,
    class: &Classification,
    incoming: &Incoming<'_>,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    // A reported death is the client's standing from here on: every answer
    // below asks eligibility, which now refuses all but crisis resources.
    let reported;
    let client = if class.is(Class::Deceased) {
        reported = Client {
            status: ClientStatus::Hold,
            status_reason: Some(StatusReason::ReportedDeceased),
            ..client.clone()
        };
        &reported
    } else {
        client
    };
    let reply = Reply {
        ctx,
        now,
        client,
        class,
        incoming,
        id: reply_id,
    };
    let mut done = Done::default();
    let mut tx = ctx.store.begin().await?;
    let channel = incoming.channel;
    if class.is(Class::Crisis) {
        crisis(&reply, &mut tx, &mut done).await?;
    }
    if class.is(Class::Deceased) {
        deceased(&reply, &mut tx, &mut done).await?;
    }
    if class.is(Class::WrongNumber) {
        wrong_number(&reply, &mut tx, &mut done).await?;
    }
    if class.is(Class::OptOut) {
        opt_out(&reply, &mut tx, &mut done).await?;
    }
    if class.is(Class::OptIn) && !class.is(Class::OptOut) {
        clients::record_opt_in(&mut tx, client.id, channel, now).await?;
        done.audit.push((
            AuditAction::OptIn,
            Some(format!("{channel}, from the client")),
        ));
    }
    if class.is(Class::Help) {
        // Answered by SMS only; never to a phone a stranger holds, nor to
        // one who just said the phone is not the client's.
        if channel == Channel::Sms && !class.is(Class::WrongNumber) {
            let text = &ctx.settings.replies.help_text;
            done.answer(client, channel, Purpose::Answer, text);
        }
        done.audit.push((AuditAction::Help, None));
    }
    if done.audit.is_empty() {
        let reply = NewEvent {
            kind: EventKind::MessageReply,
            occurred_at: now,
            source: channel.as_ref(),
            note: None,
            by: None,
        };
        let first_step = ctx.settings.first_step_after();
        events::record(&mut tx, &client.into(), &reply, first_step, now).await?;
        done.audit.push((AuditAction::Reply, None));
    }
    for (action, detail) in done.audit {
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
    if !done.answers.is_empty() {
        inbound::set_answer(&mut tx, reply_id, &done.answers.join("\n")).await?;
    }
    tx.commit().await?;
    // One alert, of what the reply is called: a crisis, or a death.
    if let Some(concern) = alerts::Concern::of(class.primary()) {
        alerts::alert(ctx, concern, reply_id, Some(client), now).await?;
    }
    if let Some(text) = done.resources_email {
        email_resources(ctx, client, incoming, reply_id, text, now).await;
    }
    Ok(done.answers)
}

/// The crisis resources by email, in answer to the client's email (threaded
/// under it). A failure is logged: the alert has gone to a person already.
async fn email_resources(
    ctx: &AppContext,
    client: &Client,
    incoming: &Incoming<'_>,
    reply_id: i64,
    text: String,
    now: DateTime<Utc>,
) {
    let subject = match incoming.subject.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.to_ascii_lowercase().starts_with("re:") => s.to_owned(),
        Some(s) => format!("Re: {s}"),
        None => "Re: your message".to_owned(),
    };
    let mut message = Outgoing::note(
        Channel::Email,
        format!("resources-{reply_id}"),
        incoming.from.to_owned(),
        Some(subject),
        text,
        &ctx.settings.email.from,
        now,
    );
    message.in_reply_to = incoming
        .provider_id
        .filter(|id| id.starts_with('<'))
        .map(str::to_owned);
    message.discreet = client.discreet;
    match ctx
        .channels
        .deliver_gated(&ctx.clock, Channel::Email, &message)
        .await
    {
        Delivery::Sent { .. } => {}
        failed => tracing::error!(reply = reply_id, "crisis resources not emailed: {failed:?}"),
    }
}

/// The client goes on hold; if the agency turned it on, the resources go
/// once, in the client's language: in answer to a text, or by email to an
/// email (sent once the reply is committed).
async fn crisis(reply: &Reply<'_>, tx: &mut AnyConnection, done: &mut Done) -> Result<()> {
    let (ctx, now) = (reply.ctx, reply.now);
    let Reply { client, class, .. } = *reply;
    let channel = reply.incoming.channel;
    episodes::change_status(tx, client.id, ClientStatus::Hold, now).await?;
    let resources = &ctx.settings.crisis;
    if resources.auto_reply
        && eligibility(client, channel, Purpose::CrisisResource).is_ok()
        && !inbound::resources_sent(tx, client.id).await?
    {
        inbound::mark_resources_sent(tx, reply.id).await?;
        let text = resources.resources_for(&client.language).to_owned();
        match channel {
            Channel::Sms => done.answers.push(text),
            Channel::Email => done.resources_email = Some(text),
        }
    }
    done.audit.push((
        AuditAction::CrisisHold,
        Some(format!(
            "matched {}; the client is on hold until a coach resumes them",
            rules_of(class, Class::Crisis)
        )),
    ));
    Ok(())
}

/// A reply says the client has died. Everything stops on every channel: the
/// client goes on hold with the reason `reported_deceased` until a coach
/// confirms or undoes it, and every unsent message is cancelled, a coach's
/// own too. If the text also asks us to stop, the address it came from is
/// marked as not the client's. Nothing is said back.
async fn deceased(reply: &Reply<'_>, tx: &mut AnyConnection, done: &mut Done) -> Result<()> {
    let now = reply.now;
    let Reply {
        client,
        class,
        incoming,
        ..
    } = *reply;
    let reason = Some(StatusReason::ReportedDeceased);
    clients::set_status_for(tx, client.id, ClientStatus::Hold, reason, now).await?;
    let refusal = Refusal::ReportedDeceased;
    episodes::wind_down(tx, &[client.id], refusal, now).await?;
    for channel in [Channel::Sms, Channel::Email] {
        let all = messages::Unsent::On(channel);
        messages::cancel_unsent(tx, &[client.id], all, refusal, now).await?;
    }
    if class.is(Class::OptOut) && !class.is(Class::WrongNumber) {
        match incoming.channel {
            Channel::Sms => clients::set_phone_wrong(tx, client.id, true, now).await?,
            Channel::Email => {
                clients::set_email_bad(tx, client.id, EmailProblem::WrongPerson, now).await?;
            }
        }
    }
    done.audit.push((
        AuditAction::ReportedDeceased,
        Some(format!(
            "matched {}; nothing goes to the client until a coach confirms or undoes it",
            rules_of(class, Class::Deceased)
        )),
    ));
    Ok(())
}

/// The address or phone is a stranger's: nothing more goes there, and a
/// phone's holder gets one short apology.
async fn wrong_number(reply: &Reply<'_>, tx: &mut AnyConnection, done: &mut Done) -> Result<()> {
    let (ctx, now) = (reply.ctx, reply.now);
    let Reply {
        client,
        class,
        incoming,
        ..
    } = *reply;
    let detail = Some(format!(
        "{} marked as not the client's; matched {}",
        incoming.from,
        rules_of(class, Class::WrongNumber)
    ));
    match incoming.channel {
        Channel::Email => {
            clients::set_email_bad(tx, client.id, EmailProblem::WrongPerson, now).await?;
            done.audit.push((AuditAction::WrongPerson, detail));
        }
        Channel::Sms => {
            let first = !client.phone_is_wrong();
            clients::set_phone_wrong(tx, client.id, true, now).await?;
            let sms = messages::Unsent::On(Channel::Sms);
            messages::cancel_unsent(tx, &[client.id], sms, Refusal::WrongNumber, now).await?;
            if first {
                let text = &ctx.settings.replies.wrong_number_reply;
                done.answer(client, Channel::Sms, Purpose::Confirmation, text);
            }
            done.audit.push((AuditAction::WrongNumber, detail));
        }
    }
    Ok(())
}

/// The channel closes; one confirmation, unless the provider sends its own
/// for a bare STOP (and it was not told otherwise).
async fn opt_out(reply: &Reply<'_>, tx: &mut AnyConnection, done: &mut Done) -> Result<()> {
    let (ctx, now) = (reply.ctx, reply.now);
    let Reply { client, class, .. } = *reply;
    let channel = reply.incoming.channel;
    let first = client.opted_out_at(channel).is_none();
    clients::opt_out(tx, client.id, channel, now).await?;
    let confirm = first
        && !class.is(Class::WrongNumber)
        && (!class.keyword || ctx.settings.replies.confirm_opt_out);
    if confirm && channel == Channel::Sms {
        let text = &ctx.settings.replies.opt_out_confirmation;
        done.answer(client, channel, Purpose::Confirmation, text);
    }
    let how = if class.keyword {
        "keyword".to_owned()
    } else {
        format!(
            "in the client's words ({}): check it was meant",
            rules_of(class, Class::OptOut)
        )
    };
    done.audit
        .push((AuditAction::OptOut, Some(format!("{channel}, {how}"))));
    Ok(())
}

/// A reply from an address no client has. A crisis still reaches a person
/// (the admins: it may be a client on a new phone); a wrong number gets its
/// apology once; nothing else is said (the help text names the program, and
/// this sender may be a stranger who was never texted).
pub async fn stranger(
    ctx: &AppContext,
    class: &Classification,
    incoming: &Incoming<'_>,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let mut answers = Vec::new();
    // A death reported from a number we do not know is answered by nobody.
    if incoming.channel == Channel::Sms
        && class.is(Class::WrongNumber)
        && !class.is(Class::Deceased)
    {
        let mut conn = ctx.store.conn().await?;
        if !inbound::wrong_number_answered(&mut conn, incoming.from).await? {
            answers.push(ctx.settings.replies.wrong_number_reply.clone());
            inbound::set_answer(&mut conn, reply_id, &answers.join("\n")).await?;
        }
    }
    if class.is(Class::Crisis) {
        alerts::alert(ctx, alerts::Concern::Crisis, reply_id, None, now).await?;
    }
    Ok(answers)
}

/// A delivery failure. A hard one stops email to the address and cancels
/// unsent email to it, unless the client has changed the address since (a
/// late bounce says nothing of the new one); a soft one changes nothing.
pub async fn bounced(
    ctx: &AppContext,
    body: &str,
    bounce: &Bounce,
    client: Option<&Client>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let current = client.filter(|c| {
        bounce.hard
            && bounce.recipient.as_deref().is_none_or(|failed| {
                c.email
                    .as_deref()
                    .is_some_and(|email| email.eq_ignore_ascii_case(failed))
            })
    });
    if let Some(client) = current {
        let mut tx = ctx.store.begin().await?;
        clients::set_email_bad(&mut tx, client.id, EmailProblem::Bounced, now).await?;
        audit::record(
            &mut tx,
            audit::Entry {
                actor: Actor::System("email bounce"),
                action: AuditAction::EmailBounced,
                client_id: Some(client.id),
                message_id: None,
                detail: Some(body.to_owned()),
            },
            now,
        )
        .await?;
        tx.commit().await?;
    }
    ctx.metrics.inbound("bounce");
    Ok(())
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
