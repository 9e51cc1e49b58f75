//! Web sessions and login lockout. Only a SHA-256 of a session's token is kept.

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::coaches::{COACH_COLUMNS, CoachRow};
use super::time::{from_opt_ts, ts};
use super::tokens;

/// Failed logins for one account within `LOCK_WINDOW` that lock it, and for how long.
pub const MAX_FAILURES: i64 = 5;
pub const LOCK_WINDOW: Duration = Duration::minutes(15);

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Starts a session; returns the cookie's token (shown once, stored hashed).
pub async fn create(
    conn: &mut AnyConnection,
    coach_id: i64,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> anyhow::Result<String> {
    let token = random_token();
    sqlx::query(
        "INSERT INTO sessions (token_hash, coach_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tokens::hash(&token))
    .bind(coach_id)
    .bind(random_token())
    .bind(ts(now))
    .bind(ts(now + lifetime))
    .execute(conn)
    .await?;
    Ok(token)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    #[sqlx(flatten)]
    pub coach: CoachRow,
    pub csrf_token: String,
}

/// The live session for a cookie's token: not revoked, not expired, coach active.
pub async fn find(
    conn: &mut AnyConnection,
    token: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Session>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS}, s.csrf_token FROM sessions s \
         JOIN coaches c ON c.id = s.coach_id \
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND c.active = 1"
    )))
    .bind(tokens::hash(token))
    .bind(ts(now))
    .fetch_optional(conn)
    .await?)
}

pub async fn revoke(
    conn: &mut AnyConnection,
    token: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL")
        .bind(tokens::hash(token))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Throttle {
    failures: i64,
    first_failed_at: i64,
    locked_until: Option<i64>,
}

async fn throttle(conn: &mut AnyConnection, email: &str) -> anyhow::Result<Option<Throttle>> {
    Ok(sqlx::query_as(
        "SELECT failures, first_failed_at, locked_until FROM login_throttle WHERE email = $1",
    )
    .bind(email.to_lowercase())
    .fetch_optional(conn)
    .await?)
}

/// Whether logins with this email are locked at `now`.
pub async fn locked(
    conn: &mut AnyConnection,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    Ok(throttle(conn, email)
        .await?
        .and_then(|t| from_opt_ts(t.locked_until))
        .is_some_and(|until| until > now))
}

/// Counts a failed login for this email; the fifth within the window locks it.
pub async fn record_failure(
    conn: &mut AnyConnection,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let current = throttle(conn, email).await?;
    let (failures, first) = match current {
        Some(t) if now - super::time::from_ts(t.first_failed_at) < LOCK_WINDOW => {
            (t.failures + 1, t.first_failed_at)
        }
        _ => (1, ts(now)),
    };
    let locked_until = (failures >= MAX_FAILURES).then(|| ts(now + LOCK_WINDOW));
    sqlx::query(
        "INSERT INTO login_throttle (email, failures, first_failed_at, locked_until) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO UPDATE SET failures = $2, first_failed_at = $3, \
         locked_until = COALESCE($4, login_throttle.locked_until)",
    )
    .bind(email.to_lowercase())
    .bind(failures)
    .bind(first)
    .bind(locked_until)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_success(conn: &mut AnyConnection, email: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE email = $1")
        .bind(email.to_lowercase())
        .execute(conn)
        .await?;
    Ok(())
}

/// The coach's password hash, for a login.
pub async fn password_hash(
    conn: &mut AnyConnection,
    coach_id: i64,
) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM coaches WHERE id = $1")
            .bind(coach_id)
            .fetch_one(conn)
            .await?,
    )
}

/// Deletes sessions that ended (expired or logged out) before `now`, and
/// login-throttle rows whose window and lock are both over: neither can
/// matter again. Returns (sessions, throttle rows) deleted.
pub async fn purge_ended(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> anyhow::Result<(u64, u64)> {
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
    )
    .bind(ts(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let throttle = sqlx::query(
        "DELETE FROM login_throttle WHERE first_failed_at < $1 \
         AND (locked_until IS NULL OR locked_until < $2)",
    )
    .bind(ts(now - LOCK_WINDOW))
    .bind(ts(now))
    .execute(conn)
    .await?
    .rows_affected();
    Ok((sessions, throttle))
}
