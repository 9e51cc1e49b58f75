//! What a coach does with drafts: approve or reject them. The CLI uses these now;
//! the web UI and the API call the same functions. A coach acts only on their own
//! clients' drafts, an admin on anyone's, and every action is audited.

use chrono::{DateTime, Utc};

use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::compose::lint::{self, Severity};
use crate::domain::compose::text::MessageText;
use crate::domain::{Channel, MessageStatus, limits};
use crate::store::audit::{self, Actor};
use crate::store::coaches::{self, CoachRow};
use crate::store::messages::{self, MessageView};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no active coach has the email {0}")]
    UnknownCoach(String),
    #[error("draft {0} does not exist")]
    NotFound(i64),
    #[error("draft {id} is for a client of another coach; {coach} cannot act on it")]
    NotYours { id: i64, coach: String },
    #[error("draft {id} is {status}, not pending")]
    NotPending { id: i64, status: String },
    #[error("message {id} is {status}, not in doubt")]
    NotInDoubt { id: i64, status: String },
    #[error(
        "draft {id} has {errors} error finding(s) from the lint: read them, then confirm to approve anyway"
    )]
    NeedsConfirmation { id: i64, errors: usize },
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

impl From<anyhow::Error> for EditError {
    fn from(e: anyhow::Error) -> Self {
        EditError::Action(ActionError::Unexpected(e))
    }
}

/// Replaces a pending draft's words. The original is kept beside the edit, and
/// the edit is audited. An email needs a subject; neither part may be empty.
pub async fn edit(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
    subject: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), EditError> {
    let draft = visible_draft(ctx, coach, id).await?;
    let text =
        MessageText::parse(draft.channel, subject, body).map_err(|p| EditError::Invalid {
            field: p.field,
            problem: p.problem,
        })?;
    // An edit that leaves the subject out keeps the draft's; one that blanks
    // an email's subject is refused.
    let subject = match (draft.channel, text.subject.as_deref(), subject) {
        (Channel::Email, None, Some(_)) => {
            return Err(EditError::Invalid {
                field: "subject",
                problem: "an email needs a subject".into(),
            });
        }
        (Channel::Email, None, None) => draft.subject.as_deref(),
        (_, given, _) => given,
    };
    let body = text.body.as_str();
    let client = {
        let mut conn = ctx.store.conn().await?;
        crate::store::clients::by_id(&mut conn, draft.client_id).await?
    };
    let discreet = client.as_ref().is_some_and(|c| c.discreet);
    let channel = draft.channel;
    // An edited email keeps an HTML part: the edited text in the agency's layout.
    let html = match channel {
        Channel::Email => Some(ctx.composer.html_of_text(
            client.as_ref().map_or("en", |c| c.language.as_str()),
            subject.unwrap_or_default(),
            body,
        )?),
        Channel::Sms => None,
    };
    let findings = ctx.lint.check(&lint::Draft {
        channel,
        subject,
        body,
        discreet,
        first_of_episode: draft.step == Some(1),
    });
    let mut tx = ctx.store.begin().await?;
    if !messages::edit(
        &mut tx,
        id,
        subject,
        body,
        html.as_deref(),
        &serde_json::to_string(&findings).map_err(anyhow::Error::from)?,
    )
    .await?
    {
        return Err(ActionError::NotPending {
            id,
            status: draft.status.to_string(),
        }
        .into());
    }
    record_action(&mut tx, coach, AuditAction::Edit, &draft, None, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// Hides a pending draft from the queue until `until` (which must be later).
pub async fn snooze(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), EditError> {
    let draft = visible_draft(ctx, coach, id).await?;
    if until <= now {
        return Err(EditError::Invalid {
            field: "until",
            problem: "must be in the future".into(),
        });
    }
    let mut tx = ctx.store.begin().await?;
    if !messages::snooze(&mut tx, id, until).await? {
        return Err(ActionError::NotPending {
            id,
            status: draft.status.to_string(),
        }
        .into());
    }
    record_action(
        &mut tx,
        coach,
        AuditAction::Snooze,
        &draft,
        Some(until.to_rfc3339()),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// The draft, if `coach` may see it.
pub async fn read(ctx: &AppContext, coach: &CoachRow, id: i64) -> Result<MessageView, ActionError> {
    visible_draft(ctx, coach, id).await
}

/// What a coach decides about a message whose attempt is in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDoubtDecision {
    /// Send it again (the coach accepts that it may arrive twice).
    Resend,
    /// It went out (for example the client answered it): mark it sent.
    Resolve,
}

/// Acts on an `in_doubt` message as `coach`; both decisions are audited.
pub async fn decide_in_doubt(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
    decision: InDoubtDecision,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let message = visible_draft(ctx, coach, id).await?;
    let mut tx = ctx.store.begin().await?;
    let (changed, action) = match decision {
        InDoubtDecision::Resend => (
            messages::retry_in_doubt(&mut tx, id, now).await?,
            AuditAction::Resend,
        ),
        InDoubtDecision::Resolve => (
            messages::resolve_in_doubt_as_sent(&mut tx, id, None, now).await?,
            AuditAction::ResolveSent,
        ),
    };
    if !changed {
        return Err(ActionError::NotInDoubt {
            id,
            status: message.status.to_string(),
        });
    }
    record_action(
        &mut tx,
        coach,
        action,
        &message,
        message.last_error.clone(),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// Writes a coach's action on a message to the audit log.
async fn record_action(
    conn: &mut sqlx::AnyConnection,
    coach: &CoachRow,
    action: AuditAction,
    draft: &MessageView,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    audit::record(
        conn,
        audit::Entry {
            actor: Actor::coach(coach),
            action,
            client_id: Some(draft.client_id),
            message_id: Some(draft.id),
            detail: crate::pipeline::casework::covering_note(coach, draft.client_coach_id, detail),
        },
        now,
    )
    .await
}

/// Finds the acting coach by email; inactive coaches cannot act.
pub async fn acting_coach(ctx: &AppContext, email: &str) -> Result<CoachRow, ActionError> {
    let mut conn = ctx.store.conn().await?;
    coaches::active_by_email(&mut conn, email)
        .await?
        .ok_or_else(|| ActionError::UnknownCoach(email.to_owned()))
}

/// The draft, if `coach` may see it.
async fn visible_draft(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
) -> Result<MessageView, ActionError> {
    let mut conn = ctx.store.conn().await?;
    let scope = coaches::scope_for(&mut conn, coach, ctx.clock.now()).await?;
    match messages::view(&mut conn, id).await? {
        None => Err(ActionError::NotFound(id)),
        Some(m) if !scope.includes(m.client_coach_id) => Err(ActionError::NotYours {
            id,
            coach: coach.email.clone(),
        }),
        Some(m) => Ok(m),
    }
}

/// Approves a pending draft: it becomes due for sending at once.
/// A draft with error findings needs `confirmed`: the lint never blocks a
/// coach, but it makes them look twice, and the audit log records it.
pub async fn approve(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
    confirmed: bool,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let draft = visible_draft(ctx, coach, id).await?;
    let errors = draft
        .lint
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 && !confirmed && draft.status == MessageStatus::Pending {
        return Err(ActionError::NeedsConfirmation { id, errors });
    }
    let mut tx = ctx.store.begin().await?;
    if !messages::approve(&mut tx, id, coach.id, now).await? {
        return Err(ActionError::NotPending {
            id,
            status: draft.status.to_string(),
        });
    }
    let detail =
        (errors > 0).then(|| format!("approved despite {errors} error finding(s) of the lint"));
    record_action(&mut tx, coach, AuditAction::Approve, &draft, detail, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// Rejects a pending draft. The cadence step counts as settled, so the next
/// step still comes; a coach who wants no more puts the client on hold.
pub async fn reject(
    ctx: &AppContext,
    coach: &CoachRow,
    id: i64,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), EditError> {
    let draft = visible_draft(ctx, coach, id).await?;
    if let Some(problem) = reason.and_then(|r| limits::length_problem(r, limits::NOTE)) {
        return Err(EditError::Invalid {
            field: "reason",
            problem,
        });
    }
    let mut tx = ctx.store.begin().await?;
    if !messages::reject(&mut tx, id, reason, now).await? {
        return Err(ActionError::NotPending {
            id,
            status: draft.status.to_string(),
        }
        .into());
    }
    crate::store::clients::set_next_detect(&mut tx, &[(draft.client_id, Some(now))]).await?;
    record_action(
        &mut tx,
        coach,
        AuditAction::Reject,
        &draft,
        reason.map(str::to_owned),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}
