//! The unsubscribe link in every email: the client opts out of email, through
//! the one opt-out rule (`store::clients::opt_out`), audited.

use chrono::{DateTime, Utc};

use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::Channel;
use crate::store::audit::{self, Actor};
use crate::store::clients;

/// Opts out the client a signed link names. Repeating it changes nothing
/// and still succeeds; false when the link is bad or its client is gone.
pub async fn opt_out(ctx: &AppContext, token: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let Some(client_id) = ctx.unsubscribe.verify(token) else {
        return Ok(false);
    };
    let mut tx = ctx.store.begin().await?;
    let Some(client) = clients::by_id(&mut tx, client_id).await? else {
        return Ok(false);
    };
    if client.opted_out_email_at.is_none() {
        clients::opt_out(&mut tx, client.id, Channel::Email, now).await?;
        let entry = audit::Entry {
            actor: Actor::System("unsubscribe link"),
            action: AuditAction::OptOut,
            client_id: Some(client.id),
            message_id: None,
            detail: Some("email".into()),
        };
        audit::record(&mut tx, entry, now).await?;
    }
    tx.commit().await?;
    Ok(true)
}
