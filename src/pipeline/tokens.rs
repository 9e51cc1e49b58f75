//! API tokens: made, listed and revoked from the command line, revoked from
//! the admin page too; each change is audited the same way from either.

use chrono::{DateTime, Duration, Utc};

use super::coaches::{manager, record};
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::store::coaches::{self, CoachRow};
use crate::store::tokens::{self, TokenRow};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("only an admin may manage API tokens")]
    AdminOnly,
    #[error("no active coach has the email {0}")]
    UnknownCoach(String),
    #[error("no live token has id {0}")]
    NotLive(i64),
    /// The database or something else failed; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

async fn active_coach(ctx: &AppContext, email: &str) -> Result<CoachRow, TokenError> {
    let mut conn = ctx.store.conn().await?;
    coaches::active_by_email(&mut conn, email)
        .await?
        .ok_or_else(|| TokenError::UnknownCoach(email.to_owned()))
}

/// A new token that acts as the coach with `email`, working for
/// `expires_in_days` (default: until revoked). Only its hash is kept, so the
/// token is returned once, here. Audited (`token_created`).
pub async fn create(
    ctx: &AppContext,
    by: Option<&CoachRow>,
    email: &str,
    expires_in_days: Option<u32>,
    now: DateTime<Utc>,
) -> Result<String, TokenError> {
    let actor = manager(by).ok_or(TokenError::AdminOnly)?;
    let coach = active_coach(ctx, email).await?;
    let expires = expires_in_days.map(|d| now + Duration::days(i64::from(d)));
    let mut tx = ctx.store.begin().await?;
    let token = tokens::create(&mut tx, coach.id, expires, now).await?;
    let detail = format!("API token for {}", coach.email);
    record(&mut tx, actor, AuditAction::TokenCreated, detail, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(token)
}

/// Every token (never the token itself), or the coach with `email`'s.
pub async fn list(ctx: &AppContext, email: Option<&str>) -> Result<Vec<TokenRow>, TokenError> {
    let coach_id = match email {
        Some(email) => Some(active_coach(ctx, email).await?.id),
        None => None,
    };
    let mut conn = ctx.store.conn().await?;
    Ok(tokens::list(&mut conn, coach_id).await?)
}

/// Revokes a live token: it is refused from the next request. Audited
/// (`token_revoked`).
pub async fn revoke(
    ctx: &AppContext,
    by: Option<&CoachRow>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), TokenError> {
    let actor = manager(by).ok_or(TokenError::AdminOnly)?;
    let mut tx = ctx.store.begin().await?;
    if !tokens::revoke(&mut tx, id, now).await? {
        return Err(TokenError::NotLive(id));
    }
    record(
        &mut tx,
        actor,
        AuditAction::TokenRevoked,
        format!("API token {id}"),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}
