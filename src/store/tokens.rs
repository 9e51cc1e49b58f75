//! API bearer tokens. Only a SHA-256 of each token is stored, so the table
//! cannot be replayed if it leaks.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::coaches::{COACH_COLUMNS, CoachRow};
use super::ts;

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a token for the coach and returns it; it is shown once and never stored.
pub async fn create(
    conn: &mut AnyConnection,
    coach_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    // Two v4 UUIDs: 244 bits from the operating system's random source.
    let token = format!(
        "rg_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query("INSERT INTO api_tokens (coach_id, token_hash, created_at) VALUES ($1, $2, $3)")
        .bind(coach_id)
        .bind(hash(&token))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The active coach a live token belongs to.
pub async fn coach_for(conn: &mut AnyConnection, token: &str) -> anyhow::Result<Option<CoachRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COACH_COLUMNS} FROM api_tokens t \
         JOIN coaches c ON c.id = t.coach_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND c.active = 1"
    )))
    .bind(hash(token))
    .fetch_optional(conn)
    .await?)
}
