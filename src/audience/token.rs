//! Reader tokens: 32 hex digits, the first 128 bits of HMAC-SHA256 of the reader's
//! address key under a secret that lives only in the environment. The address cannot be
//! read from a token (it lands in web server logs and return paths), and a token cannot be
//! made without the secret; [`Index`] finds the reader a token was made for.
//!
//! Tokens of the first format (`base64url(key).base64url(hmac)`) are still honoured, so
//! links in digests sent before the change keep working.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Sender;
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Domain separation, so the same secret could sign other things without confusion.
const CONTEXT: &[u8] = b"digestif-unsubscribe-v1\0";
/// The opaque tokens' own context: a legacy tag never equals a new token.
const CONTEXT_OPAQUE: &[u8] = b"digestif-reader-v2\0";
/// Confirmation links (double opt-in) have their own context: a reader token is never one.
const CONTEXT_CONFIRM: &[u8] = b"digestif-confirm-v1\0";
/// Bytes of the MAC a token keeps: 128 bits, 32 hex digits.
const TOKEN_BYTES: usize = 16;
/// Shortest secret we accept, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The signing secret, read from the environment variable `var`. Never printed.
pub struct Secret {
    bytes: Vec<u8>,
    /// HMAC keyed with the secret, the opaque tokens' context already in: a token then
    /// costs two SHA-256 blocks instead of four (a send makes one per message, the reader
    /// index one per reader).
    opaque: HmacSha256,
}

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
        if bytes.len() < MIN_SECRET_LEN {
            return None;
        }
        let mut opaque = HmacSha256::new_from_slice(&bytes).expect("HMAC takes keys of any length");
        opaque.update(CONTEXT_OPAQUE);
        Some(Secret { bytes, opaque })
    }

    fn mac(&self, context: &[u8], key: &str) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.bytes).expect("HMAC takes keys of any length");
        mac.update(context);
        mac.update(key.as_bytes());
        mac
    }

    /// The token's bytes for the address key `key`.
    pub(crate) fn tag(&self, key: &str) -> [u8; TOKEN_BYTES] {
        let mut mac = self.opaque.clone();
        mac.update(key.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TOKEN_BYTES];
        tag.copy_from_slice(&full[..TOKEN_BYTES]);
        tag
    }

    /// The reader's token: lowercase hex, safe in a URL, a query and an address's local part.
    pub fn token(&self, key: &str) -> String {
        crate::text::hex(&self.tag(key))
    }

    /// The address key of a token of the first format; `None` for anything forged or
    /// altered, and for opaque tokens (see [`Index`]).
    pub fn verify_legacy(&self, token: &str) -> Option<String> {
        let (key, tag) = token.trim().split_once('.')?;
        let key = String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_slice compares in constant time.
        self.mac(CONTEXT, &key).verify_slice(&tag).ok()?;
        Some(key)
    }

    /// What `token` names, read without the list: the address key a token of the first
    /// format holds under its MAC (checked), or the tag of an opaque one (which only an
    /// index, or the list, can turn into a reader). `None` for anything else.
    pub(crate) fn read(&self, token: &str) -> Option<Named> {
        let token = token.trim();
        if token.contains('.') {
            return self.verify_legacy(token).map(Named::Key);
        }
        parse_hex(token).map(Named::Tag)
    }

    /// A confirmation link's token: the pending request's random id and the instant the
    /// link expires (Unix seconds), under the MAC. It holds no address.
    pub fn confirm_token(&self, id: &str, expires: i64) -> String {
        let body = format!("{id}.{expires}");
        let full = self.mac(CONTEXT_CONFIRM, &body).finalize().into_bytes();
        format!("{body}.{}", crate::text::hex(&full[..TOKEN_BYTES]))
    }

    /// The pending request's id in a confirmation token, if the token is ours, unaltered
    /// and not expired at `now` (Unix seconds).
    pub fn verify_confirm(&self, token: &str, now: i64) -> Option<String> {
        let (body, tag) = token.trim().rsplit_once('.')?;
        let (id, expires) = body.split_once('.')?;
        let tag = parse_hex(tag)?;
        self.mac(CONTEXT_CONFIRM, body)
            .verify_truncated_left(&tag)
            .ok()?;
        (expires.parse::<i64>().ok()? >= now).then(|| id.to_string())
    }

    /// A token of the first format, for tests of the links already sent.
    #[cfg(test)]
    pub(crate) fn sign_legacy(&self, key: &str) -> String {
        let tag = self.mac(CONTEXT, key).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(key),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }
}

/// What a reader token names (see [`Secret::read`]).
pub(crate) enum Named {
    /// A first-format token's address key.
    Key(String),
    /// An opaque token's tag.
    Tag([u8; TOKEN_BYTES]),
}

/// Why a command asks for the secret; [`secret_for`] decides, in one place, whether it
/// must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Each reader's own links in a message (a send, a dry run, `check`, `preview --as`):
    /// required when the config uses tokens, used when set otherwise.
    Sign,
    /// Reading a token a reader brings back (the endpoint, `unsubscribe --token`): always
    /// required.
    Verify,
    /// Finding who a bounce or a complaint is about: optional, since readers are also
    /// found by address. An error says the config uses tokens and they cannot be read.
    Find,
}

/// The secret, as `purpose` needs it: `Ok(None)` where it may be missing and is.
pub fn secret_for(sender: &Sender, purpose: Purpose) -> Result<Option<Secret>> {
    let var = &sender.unsubscribe_secret_env;
    let set = std::env::var_os(var).is_some();
    match purpose {
        Purpose::Verify => Secret::from_env(var).map(Some),
        Purpose::Sign | Purpose::Find if sender.uses_tokens() || set => {
            Secret::from_env(var).map(Some)
        }
        Purpose::Sign | Purpose::Find => Ok(None),
    }
}

/// Finds the reader a token was made for, among the address keys it was built from.
pub struct Index {
    secret: Secret,
    by_tag: HashMap<[u8; TOKEN_BYTES], String>,
}

impl Index {
    pub fn new<I: IntoIterator<Item = String>>(secret: Secret, keys: I) -> Index {
        let by_tag = keys.into_iter().map(|k| (secret.tag(&k), k)).collect();
        Index { secret, by_tag }
    }

    /// The address key `token` stands for; `None` when it is forged, altered, made with
    /// another secret, or names no one in the list.
    pub fn resolve(&self, token: &str) -> Option<String> {
        match self.secret.read(token)? {
            Named::Key(key) => Some(key),
            Named::Tag(tag) => self.by_tag.get(&tag).cloned(),
        }
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// 32 hex digits, either case (a return path's local part may come back upper-cased).
pub(crate) fn parse_hex(token: &str) -> Option<[u8; TOKEN_BYTES]> {
    if token.len() != TOKEN_BYTES * 2 || !token.is_ascii() {
        return None;
    }
    let mut tag = [0; TOKEN_BYTES];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&token[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(tag)
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
    fn a_token_is_the_hmac_any_implementation_computes() {
        // Python: hmac.new(secret, b"digestif-reader-v2\0" + key, sha256).hexdigest()[:32]
        assert_eq!(
            secret().token("jo@example.org"),
            "ce41722c2370827ff5e39be8f744edb9"
        );
    }

    #[test]
    fn tokens_are_opaque_and_resolve_to_their_reader() {
        let s = secret();
        let t = s.token("jo@example.org");
        assert_eq!(t.len(), 32);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(!t.contains("jo"));
        let index = Index::new(
            secret(),
            ["jo@example.org".to_string(), "ana@example.org".to_string()],
        );
        assert_eq!(index.resolve(&t).as_deref(), Some("jo@example.org"));
        assert_eq!(
            index.resolve(&t.to_uppercase()).as_deref(),
            Some("jo@example.org")
        );
        assert_eq!(index.resolve(&s.token("gone@example.org")), None);
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let s = secret();
        let index = Index::new(secret(), ["jo@example.org".to_string()]);
        let t = s.token("jo@example.org");
        let mut flipped = t.clone().into_bytes();
        flipped[0] = if flipped[0] == b'a' { b'b' } else { b'a' };
        assert_eq!(index.resolve(&String::from_utf8(flipped).unwrap()), None);
        let other = Secret::new(b"another-secret-of-16".to_vec()).unwrap();
        assert_eq!(index.resolve(&other.token("jo@example.org")), None);
        for junk in [
            "garbage",
            "",
            &t[..31],
            &format!("{t}0"),
            "zz".repeat(16).as_str(),
        ] {
            assert_eq!(index.resolve(junk), None, "{junk}");
        }
        assert!(Secret::new(b"short".to_vec()).is_none());
    }

    #[test]
    fn confirmation_tokens_expire_and_cannot_be_altered_or_taken_for_reader_tokens() {
        let s = secret();
        let t = s.confirm_token("00ff", 1000);
        assert!(!t.contains('@'));
        assert_eq!(s.verify_confirm(&t, 999).as_deref(), Some("00ff"));
        assert_eq!(s.verify_confirm(&t, 1000).as_deref(), Some("00ff"));
        assert_eq!(s.verify_confirm(&t, 1001), None, "expired");
        let later = t.replacen(".1000.", ".9999.", 1);
        assert_eq!(s.verify_confirm(&later, 1001), None, "expiry altered");
        let other = Secret::new(b"another-secret-of-16".to_vec()).unwrap();
        assert_eq!(other.verify_confirm(&t, 0), None);
        assert_eq!(s.verify_confirm(&s.token("00ff"), 0), None);
    }

    #[test]
    fn links_of_the_first_format_still_work() {
        let s = secret();
        let t = s.sign_legacy("jo@example.org");
        let index = Index::new(secret(), Vec::new());
        assert_eq!(index.resolve(&t).as_deref(), Some("jo@example.org"));
        let (_, tag) = t.split_once('.').unwrap();
        let other = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("eve@example.org"));
        assert_eq!(index.resolve(&other), None);
    }
}
