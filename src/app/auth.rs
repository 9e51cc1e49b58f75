//! Password hashing with argon2id. The hash string carries its own salt and
//! parameters, so verification needs nothing else.

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// The smallest password a coach may choose.
pub const MIN_PASSWORD_CHARS: usize = 10;

pub fn hash_password(password: &SecretString) -> anyhow::Result<String> {
    let password = password.expose_secret();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("Failed to hash the password")
}

pub fn verify_password(password: &SecretString, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
}

/// At most this many hashes at once, one per core: a flood of logins then
/// queues here instead of taking every core from the async workers (and the
/// probes) while argon2 runs.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())));

/// Runs an argon2 computation on the blocking pool, within [`HASHING`].
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = HASHING.acquire().await?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// [`hash_password`], for a request handler.
pub async fn hash_password_async(password: SecretString) -> anyhow::Result<String> {
    off_the_workers(move || hash_password(&password)).await?
}

/// [`verify_password`], for a request handler.
pub async fn verify_password_async(password: SecretString, hash: String) -> anyhow::Result<bool> {
    off_the_workers(move || verify_password(&password, &hash)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let hash = hash_password(&SecretString::from("correct horse battery")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(
            &SecretString::from("correct horse battery"),
            &hash
        ));
        assert!(!verify_password(
            &SecretString::from("correct horse battery!"),
            &hash
        ));
        assert!(hash_password(&SecretString::from("short")).is_err());
    }
}
