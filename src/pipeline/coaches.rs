//! Managing coaches: adding one, turning one off or on, and setting a new
//! password. The admin page and `reengage coaches add` both come here, so a
//! coach is checked by the same limits and audited the same way whoever adds
//! them: the admin who did it, or the operator at the command line.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use crate::app::auth;
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::{EmailAddress, PhoneNumber, Role, limits};
use crate::store::audit::{self, Actor};
use crate::store::coaches::{self, CoachRow};

#[derive(Debug, thiserror::Error)]
pub enum CoachError {
    #[error("only an admin may manage coaches")]
    AdminOnly,
    /// What is wrong with the input, starting with the field's name.
    #[error("{0}")]
    Invalid(String),
    #[error("email: a coach with this email exists")]
    Exists,
    #[error("email: no coach has this email")]
    Unknown,
    #[error("you cannot deactivate yourself")]
    Yourself,
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

fn invalid<T>(problem: impl Into<String>) -> Result<T, CoachError> {
    Err(CoachError::Invalid(problem.into()))
}

/// A role as typed: `coach` or `admin`, nothing else.
pub fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a role: coach or admin"))
}

/// A coach to add, as typed.
pub struct NewCoach<'a> {
    pub email: &'a str,
    pub name: &'a str,
    /// `coach` or `admin`; left out: `coach`.
    pub role: Option<&'a str>,
    pub phone: Option<&'a str>,
    /// The IANA timezone their pages show times in; left out: `defaults.timezone`.
    pub timezone: Option<&'a str>,
    pub password: Option<SecretString>,
}

/// Who manages coaches and API tokens: an admin signed in, or (`None`) the
/// operator at the command line (`cli`); no one else.
pub(super) fn manager(by: Option<&CoachRow>) -> Option<Actor<'_>> {
    match by {
        Some(c) if !c.is_admin() => None,
        Some(c) => Some(Actor::coach(c)),
        None => Some(Actor::System("cli")),
    }
}

/// Hashes a password off the async workers; an empty one is refused.
async fn hash(password: SecretString) -> Result<String, CoachError> {
    if password.expose_secret().trim().is_empty() {
        return invalid("password: type the new password");
    }
    auth::hash_password_async(password)
        .await
        .or_else(|e| invalid(format!("password: {e}")))
}

/// The checked fields of a new coach: email, name, role, phone, timezone.
struct Checked<'a> {
    email: EmailAddress,
    name: &'a str,
    role: Role,
    phone: Option<PhoneNumber>,
}

fn check<'a>(ctx: &AppContext, new: &NewCoach<'a>) -> Result<Checked<'a>, CoachError> {
    let Ok(email) = EmailAddress::parse(new.email) else {
        return invalid(format!("email: `{}` is not an email address", new.email));
    };
    let name = new.name.trim();
    if name.is_empty() {
        return invalid("name: must not be empty");
    }
    let lengths = [
        ("email", email.as_str(), limits::EMAIL),
        ("name", name, limits::NAME),
        ("phone", new.phone.unwrap_or_default(), limits::PHONE),
        ("timezone", new.timezone.unwrap_or_default(), limits::CODE),
    ];
    if let Some(problem) = lengths
        .iter()
        .find_map(|(field, value, max)| limits::too_long(field, value, *max))
    {
        return invalid(problem);
    }
    let role = match new.role {
        Some(text) => parse_role(text).or_else(|problem| invalid(format!("role: {problem}")))?,
        None => Role::Coach,
    };
    if let Some(tz) = new.timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        return invalid(format!(
            "timezone: `{tz}` is not an IANA timezone like America/Chicago"
        ));
    }
    let phone = match new.phone {
        Some(p) => Some(
            PhoneNumber::parse(p, Some(ctx.settings.phone_region()))
                .or_else(|e| invalid(format!("phone: {e}")))?,
        ),
        None => None,
    };
    Ok(Checked {
        email,
        name,
        role,
        phone,
    })
}

/// Adds a coach, checked and audited (`coach_added`); returns their id.
pub async fn add(
    ctx: &AppContext,
    by: Option<&CoachRow>,
    new: NewCoach<'_>,
    now: DateTime<Utc>,
) -> Result<i64, CoachError> {
    let actor = manager(by).ok_or(CoachError::AdminOnly)?;
    let checked = check(ctx, &new)?;
    let password_hash = match new.password {
        Some(password) => Some(hash(password).await?),
        None => None,
    };
    let mut tx = ctx.store.begin().await?;
    // Emails are one coach whatever their case (the column's own UNIQUE is
    // case-sensitive; every lookup is not).
    if coaches::by_email(&mut tx, checked.email.as_str())
        .await?
        .is_some()
    {
        return Err(CoachError::Exists);
    }
    let row = coaches::NewCoach {
        email: checked.email.as_str(),
        name: checked.name,
        phone: checked.phone.as_ref().map(PhoneNumber::as_str),
        role: checked.role,
        password_hash: password_hash.as_deref(),
        timezone: new.timezone,
    };
    let Some(id) = coaches::insert(&mut tx, &row, now).await? else {
        return Err(CoachError::Exists);
    };
    record(
        &mut tx,
        actor,
        AuditAction::CoachAdded,
        checked.email.to_string(),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(id)
}

/// A change to a coach who exists.
pub enum Change {
    Activate,
    Deactivate,
    /// A new password, which ends their sessions.
    Password(SecretString),
}

/// Changes the coach with `email`, audited (`coach_activated`,
/// `coach_deactivated`, `password_reset`). No one deactivates themselves.
pub async fn change(
    ctx: &AppContext,
    by: Option<&CoachRow>,
    email: &str,
    change: Change,
    now: DateTime<Utc>,
) -> Result<(), CoachError> {
    let actor = manager(by).ok_or(CoachError::AdminOnly)?;
    let email = email.trim();
    // The lookup, the change and its audit entry in one transaction.
    let mut tx = ctx.store.begin().await?;
    let target = coaches::by_email(&mut tx, email)
        .await?
        .ok_or(CoachError::Unknown)?;
    if matches!(change, Change::Deactivate) && by.is_some_and(|b| b.id == target.id) {
        return Err(CoachError::Yourself);
    }
    let (action, active, password_hash) = match change {
        Change::Activate => (AuditAction::CoachActivated, Some(true), None),
        Change::Deactivate => (AuditAction::CoachDeactivated, Some(false), None),
        Change::Password(password) => (
            AuditAction::PasswordReset,
            None,
            Some(hash(password).await?),
        ),
    };
    if let Some(active) = active {
        coaches::set_active(&mut tx, target.id, active).await?;
    }
    if let Some(hash) = &password_hash {
        coaches::set_password(&mut tx, target.id, hash, now).await?;
    }
    record(&mut tx, actor, action, email.to_owned(), now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// The audit entry of a change to a coach or a token.
pub(super) async fn record(
    conn: &mut sqlx::AnyConnection,
    actor: Actor<'_>,
    action: AuditAction,
    detail: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let entry = audit::Entry {
        actor,
        action,
        client_id: None,
        message_id: None,
        detail: Some(detail),
    };
    audit::record(conn, entry, now).await
}
