//! Signed unsubscribe links. The token names the client and carries an
//! HMAC-SHA256 over it with the server's secret key, so a link cannot be forged
//! or pointed at another client. The route that takes it is
//! `web::unsubscribe`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

const MAC_BYTES: usize = 16;

#[derive(Clone)]
pub struct UnsubscribeSigner {
    key: SecretString,
    public_url: String,
}

impl std::fmt::Debug for UnsubscribeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsubscribeSigner")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl UnsubscribeSigner {
    pub fn new(key: SecretString, public_url: &url::Url) -> Self {
        Self {
            key,
            public_url: public_url.as_str().trim_end_matches('/').to_owned(),
        }
    }

    fn mac(&self, client_id: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"unsubscribe:");
        mac.update(&client_id.to_be_bytes());
        mac
    }

    pub fn token(&self, client_id: i64) -> String {
        let tag = self.mac(client_id).finalize().into_bytes();
        let mut bytes = client_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The client a token was made for, if it is genuine.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 8 + MAC_BYTES {
            return None;
        }
        let client_id = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        self.mac(client_id)
            .verify_truncated_left(&bytes[8..])
            .ok()
            .map(|()| client_id)
    }

    /// `{public_url}/unsubscribe/{token}`
    pub fn url(&self, client_id: i64) -> String {
        format!("{}/unsubscribe/{}", self.public_url, self.token(client_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_for_its_client_only() {
        let public = url::Url::parse("https://reengage.example.org/").unwrap();
        let signer = UnsubscribeSigner::new(SecretString::from("k".repeat(32)), &public);
        let token = signer.token(42);
        assert_eq!(signer.verify(&token), Some(42));
        assert!(
            signer
                .url(42)
                .starts_with("https://reengage.example.org/unsubscribe/")
        );
        let other = UnsubscribeSigner::new(SecretString::from("x".repeat(32)), &public);
        assert_eq!(other.verify(&token), None);
        let mut forged = URL_SAFE_NO_PAD.decode(&token).unwrap();
        forged[7] = 43;
        assert_eq!(signer.verify(&URL_SAFE_NO_PAD.encode(forged)), None);
        assert_eq!(signer.verify("not-a-token"), None);
    }
}
