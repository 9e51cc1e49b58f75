//! The conversation a check-in opens: the client's thread, and a coach's own
//! answer, sent from the agency (never the coach's phone or mailbox) through
//! the same path as every message: eligibility, the send log, delivery status.
//!
//! A coach's message is approved by its author as they send it and audited.
//! It follows the rules of a conversation (see `dispatch`): it may go to a
//! client on hold, it goes at once while the client is writing, and it does
//! not wait for the caps. Opt-outs, consent, a stranger's phone and a bad
//! address refuse it; the lint's errors need the coach's confirmation, as
//! approving a draft does. Sending it answers the client's waiting replies.

use chrono::{DateTime, Utc};

use crate::app::channels::email::new_message_id;
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::Channel;
use crate::domain::client::Client;
use crate::domain::compose::lint::{self, Severity};
use crate::domain::compose::text::MessageText;
use crate::domain::eligibility::{Purpose, Refusal, eligibility};
use crate::pipeline::casework::{self, CaseError};
use crate::store::audit::{self, Actor};
use crate::store::coaches::CoachRow;
use crate::store::conversation::{self, Cursor, Item};
use crate::store::from_ts;
use crate::store::inbound;
use crate::store::messages::{self, MessageView, NewAnswer};

/// What a coach writes.
#[derive(Debug, Clone, Default)]
pub struct Answer<'a> {
    /// Left out: the channel the client last wrote on, else their preferred one.
    pub channel: Option<Channel>,
    /// An email's subject; left out, "Re:" the client's last email, or the
    /// subject of the last email we sent them.
    pub subject: Option<&'a str>,
    pub body: &'a str,
    /// Send despite the lint's findings.
    pub confirm: bool,
    /// Hold for warnings too, not only errors, until confirmed: the page
    /// shows every finding before anything is sent.
    pub hold_for_warnings: bool,
}

/// Why a coach's message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("no such client")]
    NotFound,
    /// The client cannot be written to on that channel; `code` names why.
    #[error("{detail}")]
    Refused { code: &'static str, detail: String },
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("the lint found {} problem(s): read them, then confirm to send anyway", findings.len())]
    NeedsConfirmation {
        errors: usize,
        findings: Vec<lint::Finding>,
    },
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<CaseError> for AnswerError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Unexpected(e) => AnswerError::Unexpected(e),
            _ => AnswerError::NotFound,
        }
    }
}

/// A page of the client's conversation, oldest first, for a coach who may
/// see them.
pub async fn thread(
    ctx: &AppContext,
    coach: &CoachRow,
    external_id: &str,
    after: Option<Cursor>,
    limit: i64,
) -> Result<(Client, Vec<Item>), AnswerError> {
    let client = casework::visible_client(ctx, coach, external_id).await?;
    let mut conn = ctx.store.conn().await?;
    let items = conversation::page(&mut conn, client.id, after, limit).await?;
    Ok((client, items))
}

/// Sends the coach's message to the client. Returns it as stored: approved,
/// due now, and the dispatcher woken for it.
pub async fn answer(
    ctx: &AppContext,
    coach: &CoachRow,
    external_id: &str,
    answer: &Answer<'_>,
    now: DateTime<Utc>,
) -> Result<MessageView, AnswerError> {
    let client = casework::visible_client(ctx, coach, external_id).await?;
    let mut conn = ctx.store.conn().await?;
    let last = inbound::last_from_client(&mut conn, client.id).await?;
    drop(conn);
    let written = write(ctx, &client, answer, last).await?;
    let id = store_answer(ctx, coach, &client, &written, now).await?;
    ctx.dispatch_now.notify_one();
    let mut conn = ctx.store.conn().await?;
    Ok(messages::view(&mut conn, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("message {id} vanished after it was stored"))?)
}

/// A coach's message that passed the rules, ready to store.
struct Written<'a> {
    channel: Channel,
    recipient: &'a str,
    subject: Option<String>,
    body: String,
    findings: Vec<lint::Finding>,
    /// Error findings the coach confirmed past.
    errors: usize,
    /// The client's last message on this channel, which this answers.
    answered: Option<inbound::Latest>,
    /// When the client last wrote, on any channel.
    answered_any: Option<i64>,
}

/// Checks the coach's message: the channel (the one asked for, else the
/// client's last, else their preferred), the rule for who may be written
/// to, the rule for text, and the lint.
async fn write<'a>(
    ctx: &AppContext,
    client: &'a Client,
    answer: &Answer<'_>,
    last: Option<inbound::Latest>,
) -> Result<Written<'a>, AnswerError> {
    let channel = answer
        .channel
        .or(last.as_ref().map(|r| r.channel))
        .unwrap_or(client.preferred_channel);
    let recipient = writable(client, channel)?;
    let text = MessageText::parse(channel, answer.subject, answer.body).map_err(|p| {
        AnswerError::Invalid {
            field: p.field,
            problem: p.problem,
        }
    })?;
    let answered_any = last.as_ref().map(|r| r.received_at);
    let answered = last.filter(|r| r.channel == channel);
    let subject = match (channel, text.subject) {
        (Channel::Sms, _) => None,
        (Channel::Email, Some(subject)) => Some(subject),
        (Channel::Email, None) => Some(default_subject(ctx, client, answered.as_ref()).await?),
    };
    let findings = ctx.lint.check(&lint::Draft {
        channel,
        subject: subject.as_deref(),
        body: &text.body,
        discreet: client.discreet,
        first_of_episode: false,
    });
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let held = errors > 0 || (answer.hold_for_warnings && !findings.is_empty());
    if held && !answer.confirm {
        return Err(AnswerError::NeedsConfirmation { errors, findings });
    }
    Ok(Written {
        channel,
        recipient,
        subject,
        body: text.body,
        findings,
        errors,
        answered,
        answered_any,
    })
}

/// Stores the message, approved by its author and due by the rules of a
/// conversation, marks the replies it answers, and audits it.
async fn store_answer(
    ctx: &AppContext,
    coach: &CoachRow,
    client: &Client,
    written: &Written<'_>,
    now: DateTime<Utc>,
) -> Result<i64, AnswerError> {
    let Written {
        channel, errors, ..
    } = *written;
    let subject = written.subject.as_deref();
    let (html, email_message_id) = match channel {
        Channel::Email => (
            Some(ctx.composer.html_of_text(
                &client.language,
                subject.unwrap_or_default(),
                &written.body,
            )?),
            Some(new_message_id(&ctx.settings.email.from)),
        ),
        Channel::Sms => (None, None),
    };
    let answered = written.answered.as_ref();
    let in_reply_to = answered
        .filter(|r| r.channel == Channel::Email)
        .and_then(|r| r.provider_id.clone())
        .filter(|id| id.starts_with('<'));
    let tz = client
        .timezone
        .parse()
        .unwrap_or(ctx.settings.defaults.timezone);
    let due_at = ctx.settings.quiet_hours().conversation_due(
        tz,
        now,
        written.answered_any.map(from_ts),
        ctx.settings.conversation_window(),
    );
    let mut tx = ctx.store.begin().await?;
    let id = messages::insert_answer(
        &mut tx,
        &NewAnswer {
            client_id: client.id,
            coach_id: client.coach_id,
            author_id: coach.id,
            channel,
            recipient: written.recipient,
            subject,
            body: &written.body,
            html: html.as_deref(),
            email_message_id: email_message_id.as_deref(),
            answers_id: answered.map(|r| r.id),
            email_in_reply_to: in_reply_to.as_deref(),
            lint: &serde_json::to_string(&written.findings).map_err(anyhow::Error::from)?,
            due_at,
        },
        now,
    )
    .await?;
    let answered_count = inbound::answered(&mut tx, client.id, coach.id, now).await?;
    let detail = casework::covering_note(
        coach,
        client.coach_id,
        Some(format!(
            "{channel}; answers {answered_count} waiting repl{}{}",
            if answered_count == 1 { "y" } else { "ies" },
            if errors > 0 {
                format!("; sent despite {errors} error finding(s) of the lint")
            } else {
                String::new()
            }
        )),
    );
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::coach(coach),
            action: AuditAction::CoachMessage,
            client_id: Some(client.id),
            message_id: Some(id),
            detail,
        },
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(id)
}

/// The client's address on `channel`, if a coach may write to them there.
fn writable(client: &Client, channel: Channel) -> Result<&str, AnswerError> {
    eligibility(client, channel, Purpose::CoachMessage).map_err(|refusal| {
        AnswerError::Refused {
            code: refusal.into(),
            detail: refusal.explain(channel),
        }
    })?;
    client.contact(channel).ok_or_else(|| AnswerError::Refused {
        code: Refusal::NoAddress.into(),
        detail: Refusal::NoAddress.explain(channel),
    })
}

/// "Re:" the client's last email, else the subject of our last email to them.
async fn default_subject(
    ctx: &AppContext,
    client: &Client,
    answered: Option<&inbound::Latest>,
) -> anyhow::Result<String> {
    let theirs = answered.and_then(|r| r.subject.clone());
    let base = match theirs {
        Some(subject) => subject,
        None => {
            let mut conn = ctx.store.conn().await?;
            messages::last_email_subject(&mut conn, client.id)
                .await?
                .unwrap_or_else(|| "Checking in".to_owned())
        }
    };
    let bare = base.trim();
    Ok(if bare.to_ascii_lowercase().starts_with("re:") {
        bare.to_owned()
    } else {
        format!("Re: {bare}")
    })
}
