//! A client's conversation: every message to them and every reply from them,
//! in time order, read in keyset pages.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::stored;
use super::time::{from_ts, ts};
use crate::domain::{Channel, MessageStatus};

/// Which way a conversation item went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[derive(Serialize, strum::EnumString, strum::AsRefStr, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Direction {
    /// From the client.
    In,
    /// To the client.
    Out,
}

/// Where a reply stands: waiting for a person, handled, or mail no person
/// wrote (`auto_reply`, `bounce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[derive(Serialize, strum::EnumString, strum::AsRefStr, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ReplyState {
    Waiting,
    Handled,
    AutoReply,
    Bounce,
}

/// An item's state: a message's status, or a reply's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ItemStatus {
    Message(MessageStatus),
    Reply(ReplyState),
}

impl ItemStatus {
    /// The state's name, as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            ItemStatus::Message(status) => status.into(),
            ItemStatus::Reply(state) => state.into(),
        }
    }
}

/// One message of a conversation (the item JSON of
/// `GET /api/v1/clients/{external_id}/conversation`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub direction: Direction,
    pub id: i64,
    pub channel: Channel,
    /// When it was sent (or, not sent yet, approved or drafted) or received.
    pub at: DateTime<Utc>,
    pub subject: Option<String>,
    pub body: String,
    /// Out: the message's state. In: `waiting` (for a person), `handled`,
    /// `auto_reply` or `bounce`.
    #[schema(value_type = String)]
    pub status: ItemStatus,
    /// Out: the provider's latest delivery report.
    pub delivery_status: Option<String>,
    /// Out, approved: when it may go (after the client's quiet hours, say).
    pub due_at: Option<DateTime<Utc>>,
    /// In: what the reply was read as.
    pub classification: Option<String>,
    /// Out: the coach who wrote it, or `reengage` for a check-in drafted
    /// from a template. In: the sender's number or address.
    pub author: String,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    direction: String,
    id: i64,
    channel: String,
    at: i64,
    subject: Option<String>,
    body: String,
    status: String,
    delivery_status: Option<String>,
    due_at: Option<i64>,
    classification: Option<String>,
    author: String,
}

impl TryFrom<ItemRow> for Item {
    type Error = stored::Unknown;

    fn try_from(r: ItemRow) -> Result<Self, stored::Unknown> {
        let direction: Direction = stored::read("messages or inbound", "direction", &r.direction)?;
        let table = match direction {
            Direction::In => "inbound",
            Direction::Out => "messages",
        };
        Ok(Self {
            direction,
            id: r.id,
            channel: stored::read(table, "channel", &r.channel)?,
            at: from_ts(r.at),
            subject: r.subject,
            body: r.body,
            status: match direction {
                Direction::Out => {
                    ItemStatus::Message(stored::read("messages", "status", &r.status)?)
                }
                Direction::In => ItemStatus::Reply(stored::read("inbound", "status", &r.status)?),
            },
            delivery_status: r.delivery_status,
            due_at: r.due_at.map(from_ts),
            classification: r.classification,
            author: r.author,
        })
    }
}

/// Where a page of a conversation starts: after this item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub direction: Direction,
    pub id: i64,
}

impl Cursor {
    pub fn of(item: &Item) -> Self {
        Self {
            at: ts(item.at),
            direction: item.direction,
            id: item.id,
        }
    }

    /// `AT.DIRECTION.ID`, as the API hands it out.
    pub fn to_text(self) -> String {
        format!("{}.{}.{}", self.at, self.direction.as_ref(), self.id)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let cursor = Self {
            at: parts.next()?.parse().ok()?,
            direction: parts.next()?.parse().ok()?,
            id: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(cursor)
    }
}

/// Up to `limit` items of the client's conversation after `after`, oldest first.
pub async fn page(
    conn: &mut AnyConnection,
    client_id: i64,
    after: Option<Cursor>,
    limit: i64,
) -> anyhow::Result<Vec<Item>> {
    let (at, direction, id) = after.as_ref().map_or((i64::MIN, "", i64::MIN), |c| {
        (c.at, c.direction.as_ref(), c.id)
    });
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT * FROM ( \
           SELECT 'out' AS direction, m.id, m.channel, \
             COALESCE(m.sent_at, m.approved_at, m.created_at) AS at, m.subject, m.body, \
             m.status, m.delivery_status, \
             CASE WHEN m.status = 'approved' THEN m.next_attempt_at END AS due_at, \
             CAST(NULL AS TEXT) AS classification, \
             COALESCE(au.email, 'reengage') AS author \
           FROM messages m LEFT JOIN coaches au ON au.id = m.author_id WHERE m.client_id = $1 \
           UNION ALL \
           SELECT 'in' AS direction, i.id, i.channel, i.received_at AS at, i.subject, i.body, \
             CASE WHEN i.automatic IS NOT NULL THEN i.automatic \
               WHEN i.needs_reply = 1 THEN 'waiting' ELSE 'handled' END AS status, \
             CAST(NULL AS TEXT) AS delivery_status, CAST(NULL AS BIGINT) AS due_at, \
             i.classification, i.from_addr AS author \
           FROM inbound i WHERE i.client_id = $1 \
         ) AS t \
         WHERE t.at > $2 OR (t.at = $2 AND (t.direction > $3 OR (t.direction = $3 AND t.id > $4))) \
         ORDER BY t.at, t.direction, t.id LIMIT $5",
    )
    .bind(client_id)
    .bind(at)
    .bind(direction)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(Item::try_from)
        .collect::<Result<_, _>>()?)
}
