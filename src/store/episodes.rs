//! Episodes: one per quiet spell of a client.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::dialect::{Placeholders, id_list};
use super::messages;
use super::time::ts;
use crate::domain::ClientStatus;
use crate::domain::eligibility::Refusal;

/// Why an episode ended: its last step was settled, or the cadence may no
/// longer write to the client. Stored by name (`max_steps`, or the refusal's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    MaxSteps,
    Refused(Refusal),
}

impl CloseReason {
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::MaxSteps => "max_steps",
            CloseReason::Refused(refusal) => refusal.into(),
        }
    }
}

/// Ends these clients' quiet spells for `reason`: the open episode closes, the
/// outreach task ends, and the drafts not yet sent are cancelled (a coach's
/// own message still goes).
pub async fn wind_down(
    conn: &mut AnyConnection,
    client_ids: &[i64],
    reason: Refusal,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    close_open(conn, client_ids, CloseReason::Refused(reason), now).await?;
    finish_outreach(conn, client_ids, now).await?;
    messages::cancel_unsent(conn, client_ids, messages::Unsent::Drafted, reason, now).await?;
    Ok(())
}

/// Changes a client's status: a pause, hold or discharge also winds down the
/// quiet spell; a resume lets detection look again. The one home of "hold",
/// for a coach's action and a crisis reply alike.
pub async fn change_status(
    conn: &mut AnyConnection,
    client_id: i64,
    status: ClientStatus,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    super::clients::set_status(conn, client_id, status, now).await?;
    if let Some(reason) = Refusal::for_status(status) {
        wind_down(conn, &[client_id], reason, now).await?;
    }
    Ok(())
}

/// Opens an episode for each `(client, first step drafted)` and returns
/// `(client, episode)` pairs.
pub async fn open(
    conn: &mut AnyConnection,
    clients_and_steps: &[(i64, i64)],
    started_at: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, i64)>> {
    if clients_and_steps.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO episodes (client_id, step, started_at) VALUES {} RETURNING client_id, id",
        Placeholders::for_conn(conn).rows(clients_and_steps.len(), 2, &ts(started_at).to_string())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for (client_id, step) in clients_and_steps {
        query = query.bind(*client_id).bind(*step);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Records, for each `(episode, step)`, that the step has been drafted.
pub async fn advance(conn: &mut AnyConnection, steps: &[(i64, i64)]) -> anyhow::Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE episodes SET step = v.column2 FROM (VALUES {}) AS v \
         WHERE episodes.id = v.column1 AND episodes.step < v.column2",
        Placeholders::for_conn(conn).rows(steps.len(), 2, "")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (episode_id, step) in steps {
        query = query.bind(*episode_id).bind(*step);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Closes these clients' open episodes. Returns how many were open.
pub async fn close_open(
    conn: &mut AnyConnection,
    client_ids: &[i64],
    reason: CloseReason,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    if client_ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE episodes SET closed_at = $1, close_reason = $2 \
         WHERE closed_at IS NULL AND client_id IN {}",
        id_list(client_ids.iter().copied())
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ts(now))
        .bind(reason.name())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// A "reach out personally" task: the cadence has run out for this client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutreachTask {
    pub external_id: String,
    pub client_name: String,
    pub quiet_since: i64,
}

/// Open tasks for one coach's clients (or all), oldest spell first.
pub async fn outreach_tasks(
    conn: &mut AnyConnection,
    scope: &super::scope::Scope,
) -> anyhow::Result<Vec<OutreachTask>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.external_id, COALESCE(NULLIF(c.preferred_name, ''), c.first_name) AS client_name, \
           COALESCE(c.last_engaged_at, c.created_at) AS quiet_since \
         FROM episodes e JOIN clients c ON c.id = e.client_id \
         WHERE e.close_reason = 'max_steps' AND e.outreach_done_at IS NULL \
           AND {} ORDER BY e.started_at LIMIT 100",
        scope.sql("c.coach_id")
    )))
    .fetch_all(conn)
    .await?)
}

/// Ends these clients' open outreach tasks, if any.
pub async fn finish_outreach(
    conn: &mut AnyConnection,
    client_ids: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if client_ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE episodes SET outreach_done_at = $1 \
         WHERE close_reason = 'max_steps' AND outreach_done_at IS NULL AND client_id IN {}",
        id_list(client_ids.iter().copied())
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}
