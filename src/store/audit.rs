//! The audit log: who did what and when, for clinical supervision. Rows are
//! only ever added.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::time::ts;
use crate::domain::AuditAction;

/// Who acted: a coach, or reengage itself (an import run by an operator, a job).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Coach { id: i64, email: &'a str },
    System(&'a str),
}

impl<'a> Actor<'a> {
    /// The coach who acted.
    pub fn coach(coach: &'a super::coaches::CoachRow) -> Self {
        Actor::Coach {
            id: coach.id,
            email: &coach.email,
        }
    }
}

pub struct Entry<'a> {
    pub actor: Actor<'a>,
    pub action: AuditAction,
    pub client_id: Option<i64>,
    pub message_id: Option<i64>,
    pub detail: Option<String>,
}

pub async fn record(
    conn: &mut AnyConnection,
    entry: Entry<'_>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (coach_id, actor) = match entry.actor {
        Actor::Coach { id, email } => (Some(id), email),
        Actor::System(name) => (None, name),
    };
    sqlx::query(
        "INSERT INTO audit_log (at, actor_coach_id, actor, action, client_id, message_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(ts(at))
    .bind(coach_id)
    .bind(actor)
    .bind(entry.action.as_ref())
    .bind(entry.client_id)
    .bind(entry.message_id)
    .bind(entry.detail)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub actor: String,
    #[sqlx(try_from = "String")]
    pub action: AuditAction,
    pub client_id: Option<i64>,
    pub message_id: Option<i64>,
    pub detail: Option<String>,
}

/// The newest entries first.
pub async fn recent(conn: &mut AnyConnection, limit: i64) -> anyhow::Result<Vec<AuditRow>> {
    Ok(sqlx::query_as(
        "SELECT at, actor, action, client_id, message_id, detail FROM audit_log \
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
