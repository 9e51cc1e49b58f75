//! What the daily digest counts, and which digests went out.

use chrono::NaiveDate;
use sqlx::AnyConnection;

use super::inbound;
use super::scope::Scope;

#[derive(Debug, Default, Clone, Copy)]
pub struct Waiting {
    pub drafts: i64,
    pub replies: i64,
    pub crisis: i64,
}

impl Waiting {
    pub fn is_empty(&self) -> bool {
        self.drafts == 0 && self.replies == 0 && self.crisis == 0
    }
}

/// Pending drafts and unhandled replies (and crisis replies among them), for
/// one coach's clients or all.
pub async fn waiting(conn: &mut AnyConnection, scope: &Scope) -> anyhow::Result<Waiting> {
    let drafts: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM messages m JOIN clients c ON c.id = m.client_id \
         WHERE m.status = 'pending' AND {}",
        scope.sql("c.coach_id")
    )))
    .fetch_one(&mut *conn)
    .await?;
    let (replies, crisis): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*), COUNT(CASE WHEN i.classification = 'crisis' THEN 1 END) \
         FROM inbound i JOIN clients c ON c.id = i.client_id \
         WHERE {} AND {}",
        inbound::WAITING,
        scope.sql("c.coach_id")
    )))
    .fetch_one(conn)
    .await?;
    Ok(Waiting {
        drafts,
        replies,
        crisis,
    })
}

/// First names of the clients with an open reach-out task.
pub async fn outreach_first_names(
    conn: &mut AnyConnection,
    scope: &Scope,
) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT c.first_name FROM episodes e JOIN clients c ON c.id = e.client_id \
         WHERE e.close_reason = 'max_steps' AND e.outreach_done_at IS NULL \
           AND {} ORDER BY e.started_at LIMIT 20",
        scope.sql("c.coach_id")
    )))
    .fetch_all(conn)
    .await?)
}

fn key(coach_id: i64, day: NaiveDate) -> String {
    format!("digest:{coach_id}:{day}")
}

pub async fn sent_on(
    conn: &mut AnyConnection,
    coach_id: i64,
    day: NaiveDate,
) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_state WHERE key = $1")
        .bind(key(coach_id, day))
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

pub async fn mark_sent(
    conn: &mut AnyConnection,
    coach_id: i64,
    day: NaiveDate,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO app_state (key, value) VALUES ($1, 'sent') ON CONFLICT (key) DO NOTHING",
    )
    .bind(key(coach_id, day))
    .execute(conn)
    .await?;
    Ok(())
}
