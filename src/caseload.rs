//! What a coach does with a client, beside drafts: pause, hold or resume them,
//! record a personal contact, record an opt-out, and (admins) reassign them.
//! The web UI calls these; each is audited.

use chrono::{DateTime, Utc};

use crate::context::AppContext;
use crate::domain::{Channel, ClientStatus, EventKind};
use crate::import::first_step_after;
use crate::store::audit::{self, Actor};
use crate::store::clients::{self, ClientRow};
use crate::store::coaches::{self, CoachRow};
use crate::store::episodes::{self, CloseReason};
use crate::store::events::{self, NewEvent};
use crate::store::messages;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CaseError {
    #[error("no such client")]
    NotFound,
    #[error("only an admin may do this")]
    AdminOnly,
    #[error("no active coach has the email {0}")]
    UnknownCoach(String),
}

/// The client, if `coach` may see them.
pub async fn visible_client(
    ctx: &AppContext,
    coach: &CoachRow,
    external_id: &str,
) -> anyhow::Result<Result<ClientRow, CaseError>> {
    let mut conn = ctx.store.conn().await?;
    Ok(clients::by_external_id(&mut conn, external_id)
        .await?
        .filter(|c| coach.is_admin() || c.coach_id == coach.id)
        .ok_or(CaseError::NotFound))
}

/// A client-level action, as the audit log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseAction {
    SetStatus(ClientStatus),
    ReachedPersonally,
    OptOut(Channel),
    /// Undo an opt-out that was misread (a plain-language one, say).
    OptIn(Channel),
    Reassign(String),
    /// The coach closes the "reach out personally" task without a contact.
    DismissOutreach,
}

/// Applies `action` to the client as `coach`. Pausing, holding or discharging
/// closes the open episode and cancels unsent messages; resuming lets detection
/// look again; a personal contact is an engagement event like any other.
pub async fn act(
    ctx: &AppContext,
    coach: &CoachRow,
    external_id: &str,
    action: &CaseAction,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<(), CaseError>> {
    let client = match visible_client(ctx, coach, external_id).await? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let mut tx = ctx.store.begin().await?;
    let (name, detail) = match action {
        CaseAction::SetStatus(status) => {
            clients::set_status(&mut tx, client.id, *status, now).await?;
            if let Some(reason) = CloseReason::for_status(*status) {
                episodes::wind_down(&mut tx, &[client.id], reason, now).await?;
            }
            let name = match status {
                ClientStatus::Active => "resume",
                ClientStatus::Paused => "pause",
                ClientStatus::Hold => "hold",
                ClientStatus::Discharged => "discharge",
            };
            (name, None)
        }
        CaseAction::ReachedPersonally => {
            let event = NewEvent {
                kind: EventKind::CoachContact,
                occurred_at: now,
                source: "coach",
                note: Some("reached personally"),
            };
            events::record(
                &mut tx,
                &(&client).into(),
                &event,
                first_step_after(ctx),
                now,
            )
            .await?;
            ("coach_contact", None)
        }
        CaseAction::OptOut(channel) => {
            clients::record_opt_out(&mut tx, client.id, *channel, now).await?;
            // Only that channel's messages: the other may still be wanted.
            messages::cancel_unsent(&mut tx, &[client.id], Some(*channel), "opted_out", now)
                .await?;
            ("opt_out", Some(channel.to_string()))
        }
        CaseAction::OptIn(channel) => {
            clients::record_opt_in(&mut tx, client.id, *channel, now).await?;
            ("opt_in", Some(format!("{channel}, recorded by the coach")))
        }
        CaseAction::DismissOutreach => {
            episodes::finish_outreach(&mut tx, &[client.id], now).await?;
            ("dismiss_outreach", None)
        }
        CaseAction::Reassign(email) => {
            if !coach.is_admin() {
                return Ok(Err(CaseError::AdminOnly));
            }
            let Some(to) = coaches::by_email(&mut tx, email)
                .await?
                .filter(|c| c.active != 0)
            else {
                return Ok(Err(CaseError::UnknownCoach(email.clone())));
            };
            clients::reassign(&mut tx, client.id, to.id, now).await?;
            ("reassign", Some(format!("to {}", to.email)))
        }
    };
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::Coach {
                id: coach.id,
                email: &coach.email,
            },
            action: name,
            client_id: Some(client.id),
            message_id: None,
            detail,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}
