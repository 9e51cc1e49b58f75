//! API bearer tokens. Only a SHA-256 of each token is stored, so the table
//! cannot be replayed if it leaks.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::coaches::{COACH_COLUMNS, CoachRow};
use super::time::ts;

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a token for the coach, valid until `expires_at` if given, and
/// returns it; it is shown once and never stored.
pub async fn create(
    conn: &mut AnyConnection,
    coach_id: i64,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    // Two v4 UUIDs: 244 bits from the operating system's random source.
    let token = format!(
        "rg_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(
        "INSERT INTO api_tokens (coach_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(coach_id)
    .bind(hash(&token))
    .bind(ts(now))
    .bind(expires_at.map(ts))
    .execute(conn)
    .await?;
    Ok(token)
}

/// The active coach a live token (not revoked, not expired) belongs to; the
/// token's last use is recorded.
pub async fn coach_for(
    conn: &mut AnyConnection,
    token: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<CoachRow>> {
    let coach: Option<CoachRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM api_tokens t \
         JOIN coaches c ON c.id = t.coach_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND c.active = 1 \
           AND (t.expires_at IS NULL OR t.expires_at > $2)"
    )))
    .bind(hash(token))
    .bind(ts(now))
    .fetch_optional(&mut *conn)
    .await?;
    if coach.is_some() {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1")
            .bind(hash(token))
            .bind(ts(now))
            .execute(conn)
            .await?;
    }
    Ok(coach)
}

/// A token as an operator sees it: never the token itself.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub coach: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The tokens, of one coach or of all, oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    coach_id: Option<i64>,
) -> anyhow::Result<Vec<TokenRow>> {
    Ok(sqlx::query_as(
        "SELECT t.id, c.email AS coach, t.created_at, t.last_used_at, t.expires_at, t.revoked_at \
         FROM api_tokens t JOIN coaches c ON c.id = t.coach_id \
         WHERE $1 IS NULL OR t.coach_id = $1 ORDER BY t.id",
    )
    .bind(coach_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes a token; from now on it is refused. Returns whether it was live.
pub async fn revoke(conn: &mut AnyConnection, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(ts(now))
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
