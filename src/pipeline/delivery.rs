//! The SMS provider's delivery reports: each moves its message's delivery
//! status forward (never back) and is appended to the send log, together.

use chrono::{DateTime, Utc};

use crate::app::context::AppContext;
use crate::domain::LogEvent;
use crate::store::messages;
use crate::store::send_log::{self, Note};

/// A report that message `sid` reached `status` (lower case), with the
/// provider's error code if any. False when no message has that sid.
pub async fn record_status(
    ctx: &AppContext,
    sid: &str,
    status: &str,
    error_code: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = ctx.store.begin().await?;
    let Some(target) = messages::by_provider_id(&mut tx, sid).await? else {
        return Ok(false);
    };
    messages::record_delivery(&mut tx, &target, status, error_code).await?;
    send_log::append(
        &mut tx,
        &Note {
            message_id: target.id,
            event: LogEvent::Callback,
            attempt: target.attempts,
            channel: target.channel,
            recipient: &target.recipient,
            outcome: None,
            provider_id: Some(sid),
            delivery_status: Some(status),
            code: error_code,
            error: None,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
