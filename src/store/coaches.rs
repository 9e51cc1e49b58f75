//! Coaches: the people who approve drafts.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::ts;
use crate::domain::Role;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CoachRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub active: i64,
    pub timezone: Option<String>,
}

impl CoachRow {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin.as_ref()
    }

    /// The timezone the coach reads times in.
    pub fn tz(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|tz| tz.parse().ok())
            .unwrap_or(default)
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

pub async fn by_email(conn: &mut AnyConnection, email: &str) -> anyhow::Result<Option<CoachRow>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, phone, role, active, timezone FROM coaches WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> anyhow::Result<Option<CoachRow>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, phone, role, active, timezone FROM coaches WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Every active coach, for lookups during an import.
pub async fn all_active(conn: &mut AnyConnection) -> anyhow::Result<Vec<CoachRow>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, phone, role, active, timezone FROM coaches WHERE active = 1 ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

/// Every coach, active or not, for the admin page.
pub async fn all(conn: &mut AnyConnection) -> anyhow::Result<Vec<CoachRow>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, phone, role, active, timezone FROM coaches ORDER BY id",
    )
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
