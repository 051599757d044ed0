//! Unsubscribe tokens: the subscriber's address key, signed with HMAC-SHA256 under a
//! secret that lives only in the environment. A forged or altered token fails to verify.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Domain separation, so the same secret could sign other things without confusion.
const CONTEXT: &[u8] = b"digestif-unsubscribe-v1\0";
/// Shortest secret we accept, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The signing secret, read from the environment variable `var`. Never printed.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn from_env(var: &str) -> Result<Secret> {
        let value = std::env::var(var).map_err(|_| {
            Error::Usage(format!(
                "the unsubscribe secret is missing: set the environment variable {var}"
            ))
        })?;
        Secret::new(value.into_bytes()).ok_or_else(|| {
            Error::Usage(format!(
                "the unsubscribe secret in {var} is too short: use at least {MIN_SECRET_LEN} bytes"
            ))
        })
    }

    /// `None` when the secret is shorter than [`MIN_SECRET_LEN`].
    pub fn new(bytes: Vec<u8>) -> Option<Secret> {
        (bytes.len() >= MIN_SECRET_LEN).then_some(Secret(bytes))
    }

    fn mac(&self, key: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(CONTEXT);
        mac.update(key.as_bytes());
        mac
    }

    /// `base64url(key).base64url(hmac)`.
    pub fn sign(&self, key: &str) -> String {
        let tag = self.mac(key).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(key),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The address key a valid token was made for; `None` for anything forged or altered.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (key, tag) = token.trim().split_once('.')?;
        let key = String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_slice compares in constant time.
        self.mac(&key).verify_slice(&tag).ok()?;
        Some(key)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef-test".to_vec()).unwrap()
    }

    #[test]
    fn signed_tokens_verify() {
        let t = secret().sign("jo@example.org");
        assert_eq!(secret().verify(&t).as_deref(), Some("jo@example.org"));
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let s = secret();
        let t = s.sign("jo@example.org");
        let (_, tag) = t.split_once('.').unwrap();
        let other = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("eve@example.org"));
        assert_eq!(s.verify(&other), None);
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.verify(&String::from_utf8(flipped).unwrap()), None);
        assert_eq!(
            Secret::new(b"another-secret-of-16".to_vec())
                .unwrap()
                .verify(&t),
            None
        );
        assert_eq!(s.verify("garbage"), None);
        assert!(Secret::new(b"short".to_vec()).is_none());
    }
}
