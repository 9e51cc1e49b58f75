//! Coaches: the people who approve drafts.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::scope::Scope;
use super::time::ts;
use crate::domain::Role;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CoachRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// 1 while the coach may sign in and be given clients.
    active: i64,
    pub timezone: Option<String>,
    /// Who covers for this coach while they are away, and hears escalations.
    pub backup_coach_id: Option<i64>,
    pub away_until: Option<i64>,
}

/// The columns of [`CoachRow`], for queries that join coaches as `c`.
pub(crate) const COACH_COLUMNS: &str =
    "c.id, c.email, c.name, c.phone, c.role, c.active, c.timezone, c.backup_coach_id, c.away_until";

impl CoachRow {
    pub fn is_active(&self) -> bool {
        self.active != 0
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The timezone the coach reads times in.
    pub fn tz(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|tz| tz.parse().ok())
            .unwrap_or(default)
    }

    /// Whether the coach is away at `now`, so that their backup covers.
    pub fn is_away(&self, now: DateTime<Utc>) -> bool {
        self.away_until.is_some_and(|until| until > ts(now))
    }

    /// The first word of the name, for a warm sign-off.
    pub fn first_name(&self) -> &str {
        first_name_of(&self.name)
    }
}

/// The first word of a coach's name.
pub fn first_name_of(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

pub struct NewCoach<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub timezone: Option<&'a str>,
}

/// Adds a coach. Returns `None` when a coach with that email already exists.
pub async fn insert(
    conn: &mut AnyConnection,
    coach: &NewCoach<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let id = sqlx::query_scalar(
        "INSERT INTO coaches (email, name, phone, role, password_hash, timezone, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $7, 1, $6) ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(coach.email)
    .bind(coach.name)
    .bind(coach.phone)
    .bind(coach.role.as_ref())
    .bind(coach.password_hash)
    .bind(ts(now))
    .bind(coach.timezone)
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// The coach with `email` (any case), if they may act (active).
pub async fn active_by_email(
    conn: &mut AnyConnection,
    email: &str,
) -> anyhow::Result<Option<CoachRow>> {
    Ok(by_email(conn, email).await?.filter(CoachRow::is_active))
}

pub async fn by_email(conn: &mut AnyConnection, email: &str) -> anyhow::Result<Option<CoachRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM coaches c WHERE lower(c.email) = lower($1)"
    )))
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> anyhow::Result<Option<CoachRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM coaches c WHERE c.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Every active coach, for lookups during an import.
pub async fn all_active(conn: &mut AnyConnection) -> anyhow::Result<Vec<CoachRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM coaches c WHERE c.active = 1 ORDER BY c.id"
    )))
    .fetch_all(conn)
    .await?)
}

/// Every coach, active or not, for the admin page.
pub async fn all(conn: &mut AnyConnection) -> anyhow::Result<Vec<CoachRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM coaches c ORDER BY c.id"
    )))
    .fetch_all(conn)
    .await?)
}

/// Turns a coach's access off or on; an inactive coach cannot log in or act.
pub async fn set_active(conn: &mut AnyConnection, id: i64, active: bool) -> anyhow::Result<()> {
    sqlx::query("UPDATE coaches SET active = $2 WHERE id = $1")
        .bind(id)
        .bind(i64::from(active))
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a new password hash and ends the coach's sessions.
pub async fn set_password(
    conn: &mut AnyConnection,
    id: i64,
    password_hash: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE coaches SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE coach_id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whose clients `coach` acts on at `now`: everyone's for an admin; else their
/// own, and those of every coach away with them as backup.
pub async fn scope_for(
    conn: &mut AnyConnection,
    coach: &CoachRow,
    now: DateTime<Utc>,
) -> anyhow::Result<Scope> {
    if coach.is_admin() {
        return Ok(Scope::All);
    }
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM coaches WHERE backup_coach_id = $1 AND away_until > $2 AND active = 1",
    )
    .bind(coach.id)
    .bind(ts(now))
    .fetch_all(conn)
    .await?;
    ids.insert(0, coach.id);
    Ok(Scope::Coaches(ids))
}

/// Sets (or, with `None`, ends) a coach's away period and their backup.
pub async fn set_away(
    conn: &mut AnyConnection,
    id: i64,
    until: Option<DateTime<Utc>>,
    backup: Option<i64>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE coaches SET away_until = $2, backup_coach_id = $3 WHERE id = $1")
        .bind(id)
        .bind(until.map(ts))
        .bind(backup)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every active admin.
pub async fn admins(conn: &mut AnyConnection) -> anyhow::Result<Vec<CoachRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM coaches c WHERE c.active = 1 AND c.role = 'admin' ORDER BY c.id"
    )))
    .fetch_all(conn)
    .await?)
}
