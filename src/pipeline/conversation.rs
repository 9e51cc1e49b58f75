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
use crate::domain::compose::lint::{self, Severity};
use crate::domain::{Channel, limits};
use crate::pipeline::casework::{self, CaseError};
use crate::store::audit::{self, Actor};
use crate::store::clients::ClientRow;
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
) -> Result<(ClientRow, Vec<Item>), AnswerError> {
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
    let channel = answer
        .channel
        .or(last.as_ref().map(|r| r.channel))
        .unwrap_or(client.preferred_channel);
    let recipient = writable(&client, channel)?;
    let body = answer.body.trim();
    if body.is_empty() {
        return Err(AnswerError::Invalid {
            field: "body",
            problem: "must not be empty".into(),
        });
    }
    let most = match channel {
        Channel::Sms => limits::SMS,
        Channel::Email => limits::BODY,
    };
    if let Some(problem) = limits::length_problem(body, most) {
        return Err(AnswerError::Invalid {
            field: "body",
            problem,
        });
    }
    if let Some(problem) = answer
        .subject
        .and_then(|s| limits::length_problem(s.trim(), limits::SUBJECT))
    {
        return Err(AnswerError::Invalid {
            field: "subject",
            problem,
        });
    }
    // The email it answers: the client's last email to us, if that is where
    // this goes.
    let answered_any = last.as_ref().map(|r| r.received_at);
    let answered = last.filter(|r| r.channel == channel);
    let subject = match channel {
        Channel::Sms if answer.subject.is_some_and(|s| !s.trim().is_empty()) => {
            return Err(AnswerError::Invalid {
                field: "subject",
                problem: "an SMS has no subject".into(),
            });
        }
        Channel::Sms => None,
        Channel::Email => Some(
            match answer.subject.map(str::trim).filter(|s| !s.is_empty()) {
                Some(subject) => subject.to_owned(),
                None => default_subject(ctx, &client, answered.as_ref()).await?,
            },
        ),
    };
    let findings = ctx.lint.check(&lint::Draft {
        channel,
        subject: subject.as_deref(),
        body,
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
    let (html, email_message_id) = match channel {
        Channel::Email => (
            Some(ctx.composer.html_of_text(
                &client.language,
                subject.as_deref().unwrap_or_default(),
                body,
            )?),
            Some(new_message_id(&ctx.settings.email.from)),
        ),
        Channel::Sms => (None, None),
    };
    let in_reply_to = answered
        .as_ref()
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
        answered_any.map(from_ts),
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
            recipient,
            subject: subject.as_deref(),
            body,
            html: html.as_deref(),
            email_message_id: email_message_id.as_deref(),
            answers_id: answered.as_ref().map(|r| r.id),
            email_in_reply_to: in_reply_to.as_deref(),
            lint: &serde_json::to_string(&findings).map_err(anyhow::Error::from)?,
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
            action: "coach_message",
            client_id: Some(client.id),
            message_id: Some(id),
            detail,
        },
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    ctx.dispatch_now.notify_one();
    let mut conn = ctx.store.conn().await?;
    Ok(messages::view(&mut conn, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("message {id} vanished after it was stored"))?)
}

/// The client's address on `channel`, if they may be written to there.
fn writable(client: &ClientRow, channel: Channel) -> Result<&str, AnswerError> {
    if let Some(code) = client.refusal(channel) {
        let detail = match code {
            "opted_out" => format!("the client opted out of {channel}"),
            "wrong_number" => {
                "a reply said this phone is not the client's; confirm it or give a new number"
                    .to_owned()
            }
            "bounced" => "email to this address bounced; give a new address".to_owned(),
            "wrong_person" => {
                "a reply said this address is not the client's; give a new address".to_owned()
            }
            _ => format!("the client has not consented to {channel}"),
        };
        return Err(AnswerError::Refused { code, detail });
    }
    client.contact(channel).ok_or_else(|| AnswerError::Refused {
        code: "no_address",
        detail: format!("the client has no {channel} address"),
    })
}

/// "Re:" the client's last email, else the subject of our last email to them.
async fn default_subject(
    ctx: &AppContext,
    client: &ClientRow,
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
