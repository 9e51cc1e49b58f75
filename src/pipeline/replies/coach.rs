//! A coach's action on a reply: handled, or "I'm on it" for a crisis.

use chrono::{DateTime, Utc};

use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::ReplyAction;
use crate::store::audit::{self, Actor};
use crate::store::clients;
use crate::store::coaches::{self, CoachRow};
use crate::store::inbound;

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
        ReplyAction::Handled => AuditAction::ReplyHandled,
        ReplyAction::Acknowledge => AuditAction::CrisisAcknowledged,
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
