//! What a coach does with a client, beside drafts: pause, hold or resume them,
//! record a personal contact, record an opt-out, and (admins) reassign them.
//! The web UI calls these; each is audited.

use chrono::{DateTime, Utc};

use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::client::Client;
use crate::domain::eligibility::Refusal;
use crate::domain::{Channel, ClientStatus, EventKind, StatusReason};
use crate::store::audit::{self, Actor};
use crate::store::clients::{self};
use crate::store::coaches::{self, CoachRow};
use crate::store::episodes;
use crate::store::events::{self, NewEvent};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("no such client")]
    NotFound,
    #[error("only an admin may do this")]
    AdminOnly,
    #[error("no active coach has the email {0}")]
    UnknownCoach(String),
    #[error("a reply said this client has died: confirm or undo that first")]
    ReportedDeceased,
    #[error("no reply has said this client died")]
    NoDeathReported,
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The client, if `coach` may see them.
pub async fn visible_client(
    ctx: &AppContext,
    coach: &CoachRow,
    external_id: &str,
) -> Result<Client, CaseError> {
    let mut conn = ctx.store.conn().await?;
    visible_client_on(&mut conn, coach, external_id, ctx.clock.now()).await
}

/// [`visible_client`] on `conn`, for a workflow that reads it in its own
/// transaction.
pub async fn visible_client_on(
    conn: &mut sqlx::AnyConnection,
    coach: &CoachRow,
    external_id: &str,
    now: DateTime<Utc>,
) -> Result<Client, CaseError> {
    let scope = coaches::scope_for(conn, coach, now).await?;
    clients::by_external_id(conn, external_id)
        .await?
        .filter(|c| scope.includes(c.coach_id))
        .ok_or(CaseError::NotFound)
}

/// An audit detail, noting when a backup acts for a coach who is away.
pub fn covering_note(
    coach: &CoachRow,
    client_coach_id: i64,
    detail: Option<String>,
) -> Option<String> {
    if coach.is_admin() || coach.id == client_coach_id {
        return detail;
    }
    let note = format!("covering for coach {client_coach_id}");
    Some(match detail {
        Some(d) => format!("{d}; {note}"),
        None => note,
    })
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
    /// The phone a reply called a wrong number is the client's after all.
    ConfirmPhone,
    /// A reply said the client died, and it is so: the client is discharged
    /// and nothing goes to them again.
    ConfirmDeceased,
    /// A reply said the client died, and it is not so: the client is active
    /// again and outreach resumes.
    UndoDeceased,
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
) -> Result<(), CaseError> {
    // The client is read in the transaction that acts: a death reported a
    // moment ago must stop a resume that was pressed before it arrived.
    let mut tx = ctx.store.begin().await?;
    let client = visible_client_on(&mut tx, coach, external_id, now).await?;
    let (name, detail) = match action {
        CaseAction::SetStatus(_) if client.status_reason.is_some() => {
            return Err(CaseError::ReportedDeceased);
        }
        CaseAction::ConfirmDeceased | CaseAction::UndoDeceased
            if client.status_reason.is_none() =>
        {
            return Err(CaseError::NoDeathReported);
        }
        CaseAction::ConfirmDeceased => {
            let reason = Some(StatusReason::Deceased);
            clients::set_status_for(&mut tx, client.id, ClientStatus::Discharged, reason, now)
                .await?;
            episodes::wind_down(&mut tx, &[client.id], Refusal::Deceased, now).await?;
            (
                AuditAction::ConfirmDeceased,
                Some("discharged; nothing goes to the client again".to_owned()),
            )
        }
        CaseAction::UndoDeceased => {
            clients::set_status_for(&mut tx, client.id, ClientStatus::Active, None, now).await?;
            (
                AuditAction::UndoDeceased,
                Some("the client is active again; outreach resumes".to_owned()),
            )
        }
        CaseAction::SetStatus(status) => {
            episodes::change_status(&mut tx, client.id, *status, now).await?;
            let name = match status {
                ClientStatus::Active => AuditAction::Resume,
                ClientStatus::Paused => AuditAction::Pause,
                ClientStatus::Hold => AuditAction::Hold,
                ClientStatus::Discharged => AuditAction::Discharge,
            };
            (name, None)
        }
        CaseAction::ReachedPersonally => {
            let contact = NewEvent {
                kind: EventKind::CoachContact,
                occurred_at: now,
                source: "coach",
                note: Some("reached personally"),
                by: Some(coach.id),
            };
            let first_step = ctx.settings.first_step_after();
            events::record(&mut tx, &(&client).into(), &contact, first_step, now).await?;
            (AuditAction::CoachContact, None)
        }
        CaseAction::OptOut(channel) => {
            clients::opt_out(&mut tx, client.id, *channel, now).await?;
            (AuditAction::OptOut, Some(channel.to_string()))
        }
        CaseAction::OptIn(channel) => {
            clients::record_opt_in(&mut tx, client.id, *channel, now).await?;
            (
                AuditAction::OptIn,
                Some(format!("{channel}, recorded by the coach")),
            )
        }
        CaseAction::ConfirmPhone => {
            clients::set_phone_wrong(&mut tx, client.id, false, now).await?;
            (AuditAction::ConfirmPhone, client.phone.clone())
        }
        CaseAction::DismissOutreach => {
            episodes::finish_outreach(&mut tx, &[client.id], now).await?;
            (AuditAction::DismissOutreach, None)
        }
        CaseAction::Reassign(email) => {
            if !coach.is_admin() {
                return Err(CaseError::AdminOnly);
            }
            let Some(to) = coaches::by_email(&mut tx, email)
                .await?
                .filter(|c| c.is_active())
            else {
                return Err(CaseError::UnknownCoach(email.clone()));
            };
            clients::reassign(&mut tx, client.id, to.id, now).await?;
            (AuditAction::Reassign, Some(format!("to {}", to.email)))
        }
    };
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::coach(coach),
            action: name,
            client_id: Some(client.id),
            message_id: None,
            detail: covering_note(coach, client.coach_id, detail),
        },
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// Why an away period was not set.
#[derive(Debug, thiserror::Error)]
pub enum AwayError {
    #[error("no active coach has the email {0}")]
    UnknownCoach(String),
    #[error("only an admin may set another coach's away period")]
    NotYours,
    #[error("`{0}` is not a date like 2026-12-24 or an RFC 3339 time")]
    BadDate(String),
    #[error("the away period must end in the future ({0} has passed)")]
    Past(String),
    #[error("a coach cannot be their own backup")]
    SelfBackup,
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The coach named by `email`, if `actor` (`None`: the operator, at the CLI)
/// may change their away period.
async fn away_target(
    ctx: &AppContext,
    actor: Option<&CoachRow>,
    email: &str,
) -> Result<CoachRow, AwayError> {
    let mut conn = ctx.store.conn().await?;
    let Some(coach) = coaches::by_email(&mut conn, email.trim())
        .await?
        .filter(|c| c.is_active())
    else {
        return Err(AwayError::UnknownCoach(email.to_owned()));
    };
    if actor.is_some_and(|a| !a.is_admin() && a.id != coach.id) {
        return Err(AwayError::NotYours);
    }
    Ok(coach)
}

/// Audits a change of an away period and commits it; returns `text`.
async fn record_away(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    actor: Option<&CoachRow>,
    action: AuditAction,
    text: String,
    now: DateTime<Utc>,
) -> Result<String, AwayError> {
    let actor = match actor {
        Some(a) => Actor::coach(a),
        None => Actor::System("operator"),
    };
    audit::record(
        &mut tx,
        audit::Entry {
            actor,
            action,
            client_id: None,
            message_id: None,
            detail: Some(text.clone()),
        },
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(text)
}

/// Sets `email`'s away period, to the end of `until` (a date, in the
/// coach's timezone, or an RFC 3339 time), with `backup` covering. Audited.
/// Returns a sentence saying what was set.
pub async fn set_away(
    ctx: &AppContext,
    actor: Option<&CoachRow>,
    email: &str,
    until: &str,
    backup: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, AwayError> {
    let coach = away_target(ctx, actor, email).await?;
    let tz = coach.tz(ctx.settings.defaults.timezone);
    let until_text = until.trim();
    let end = match chrono::NaiveDate::parse_from_str(until_text, "%Y-%m-%d") {
        Ok(day) => match day.succ_opt() {
            Some(next) => {
                crate::domain::local_time::local_to_utc(tz, next.and_time(chrono::NaiveTime::MIN))
            }
            None => return Err(AwayError::BadDate(until_text.to_owned())),
        },
        Err(_) => match DateTime::parse_from_rfc3339(until_text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => return Err(AwayError::BadDate(until_text.to_owned())),
        },
    };
    if end <= now {
        return Err(AwayError::Past(until_text.to_owned()));
    }
    let mut tx = ctx.store.begin().await?;
    let backup = match backup.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) => match coaches::by_email(&mut tx, b)
            .await?
            .filter(|c| c.is_active())
        {
            Some(c) if c.id == coach.id => return Err(AwayError::SelfBackup),
            Some(c) => Some(c),
            None => return Err(AwayError::UnknownCoach(b.to_owned())),
        },
        None => None,
    };
    coaches::set_away(&mut tx, coach.id, Some(end), backup.as_ref().map(|b| b.id)).await?;
    let covered = match &backup {
        Some(b) => format!("{} covers", b.email),
        None => "no backup: notices go to the admins".to_owned(),
    };
    let text = format!(
        "{} is away until {}; {covered}",
        coach.email,
        end.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
    );
    record_away(tx, actor, AuditAction::CoachAway, text, now).await
}

/// Ends `email`'s away period now; the backup stays, for escalations.
pub async fn set_back(
    ctx: &AppContext,
    actor: Option<&CoachRow>,
    email: &str,
    now: DateTime<Utc>,
) -> Result<String, AwayError> {
    let coach = away_target(ctx, actor, email).await?;
    let mut tx = ctx.store.begin().await?;
    coaches::set_away(&mut tx, coach.id, None, coach.backup_coach_id).await?;
    let text = format!("{} is back", coach.email);
    record_away(tx, actor, AuditAction::CoachBack, text, now).await
}
