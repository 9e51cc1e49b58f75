//! The embedded inbox: `.eml` files dropped in `[email.inbound.folder] dir`
//! (by hand, by the demo, or by a mail server's delivery agent). Each is
//! taken in, in name order, then moved into `processed/` below the folder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{InboxSummary, receive};
use crate::app::context::AppContext;

/// Takes in every `.eml` file waiting in the folder.
pub async fn poll(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<InboxSummary> {
    let dir = &ctx.settings.email.inbound.folder.dir;
    let mut summary = InboxSummary::default();
    for path in waiting(dir)? {
        let raw = tokio::fs::read(&path)
            .await
            .with_context(|| format!("Failed to read {}", path.display()))?;
        summary.count(&receive(ctx, &raw, now).await?);
        // Only once its row is committed: a crash before this reads it again,
        // and its Message-ID says it was stored.
        done(dir, &path).await?;
    }
    Ok(summary)
}

/// The `.eml` files in `dir`, by name. A missing folder has none.
fn waiting(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("Failed to list {}", dir.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("Failed to list {}", dir.display()))?
            .path();
        if path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("eml"))
        {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

async fn done(dir: &Path, path: &Path) -> anyhow::Result<()> {
    let processed = dir.join("processed");
    tokio::fs::create_dir_all(&processed)
        .await
        .with_context(|| format!("Failed to create {}", processed.display()))?;
    let name = path.file_name().context("a listed file has a name")?;
    tokio::fs::rename(path, processed.join(name))
        .await
        .with_context(|| {
            format!(
                "Failed to move {} into {}",
                path.display(),
                processed.display()
            )
        })
}
