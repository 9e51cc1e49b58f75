//! Password hashing with argon2id. The hash string carries its own salt and
//! parameters, so verification needs nothing else.

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

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
