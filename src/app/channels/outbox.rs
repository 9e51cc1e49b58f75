//! The embedded default: nothing leaves the machine. Each email becomes an
//! `.eml` file and each SMS a `.json` file under `outbox.dir`, named by message
//! id and written atomically (a temporary file, then a rename).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Delivery, Outgoing, Reconciliation, Transport, email};

pub struct OutboxEmail {
    dir: PathBuf,
    sender: email::Sender,
}

impl OutboxEmail {
    pub fn new(dir: PathBuf, sender: email::Sender) -> Self {
        Self { dir, sender }
    }
}

#[async_trait]
impl Transport for OutboxEmail {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        let email = match email::build_or_fail(&self.sender, message) {
            Ok(email) => email,
            Err(failed) => return failed,
        };
        let path = self.dir.join(format!("{}.eml", message.reference));
        match write_atomically(&path, email.formatted()).await {
            Ok(()) => Delivery::Sent {
                provider_id: message.email_message_id.clone().unwrap_or_default(),
            },
            Err(e) => Delivery::Retry {
                code: None,
                error: format!("Failed to write {}: {e}", path.display()),
            },
        }
    }
}

pub struct OutboxSms {
    dir: PathBuf,
    from: String,
}

impl OutboxSms {
    pub fn new(dir: PathBuf, from: String) -> Self {
        Self { dir, from }
    }
}

#[derive(Serialize)]
struct SmsFile<'a> {
    to: &'a str,
    from: &'a str,
    body: &'a str,
    message_id: &'a str,
}

#[async_trait]
impl Transport for OutboxSms {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        let file = SmsFile {
            to: &message.to,
            from: &self.from,
            body: &message.body,
            message_id: &message.reference,
        };
        let mut json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        json.push(b'\n');
        let path = self.dir.join(format!("{}.json", message.reference));
        match write_atomically(&path, json).await {
            Ok(()) => Delivery::Sent {
                provider_id: format!("outbox-{}", message.reference),
            },
            Err(e) => Delivery::Retry {
                code: None,
                error: format!("Failed to write {}: {e}", path.display()),
            },
        }
    }

    /// The file is the provider's record: if it is there, the message went.
    async fn reconcile(&self, message: &Outgoing, _since: DateTime<Utc>) -> Reconciliation {
        let path = self.dir.join(format!("{}.json", message.reference));
        match tokio::fs::try_exists(&path).await {
            Ok(true) => Reconciliation::Found(format!("outbox-{}", message.reference)),
            Ok(false) => Reconciliation::NotFound,
            Err(_) => Reconciliation::Unknown,
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into
/// place, so that a reader never sees half a message.
async fn write_atomically(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut file, &bytes)?;
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}
