//! DKIM signatures (RFC 6376, relaxed/relaxed; RSA-SHA256 and, per RFC 8463,
//! Ed25519-SHA256) on the bytes a message already is, so the composer's direct header
//! writing stays as it is. The cryptography is ring's, already in the binary for TLS.

use std::path::Path;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use sha2::{Digest, Sha256};

use crate::config::DkimConfig;
use crate::error::{Error, Result};

/// Headers signed when the message has them: what a reader sees and what list mail
/// carries (changing any of them breaks the signature).
const SIGNED: &[&str] = &[
    "from",
    "reply-to",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A loaded key and where it signs for.
pub(crate) struct Signer {
    domain: String,
    selector: String,
    key: Key,
    rng: SystemRandom,
}

impl Signer {
    /// Read the key file: PEM (`PRIVATE KEY`, PKCS#8, RSA or Ed25519; or `RSA PRIVATE
    /// KEY`, PKCS#1), readable by its owner only.
    pub(crate) fn load(config: &DkimConfig) -> Result<Signer> {
        let path = &config.key_file;
        let problem =
            |why: String| Error::Setting(format!("dkim.key_file {}: {why}", path.display()));
        check_mode(path).map_err(problem)?;
        let pem = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        let (label, der) = pem_block(&pem).ok_or_else(|| {
            problem("expected a PEM private key (-----BEGIN PRIVATE KEY-----)".into())
        })?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map(Key::Rsa),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der)
                .map(Key::Rsa)
                .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map(Key::Ed25519)),
            other => return Err(problem(format!("a {other}, not a private key"))),
        }
        .map_err(|e| {
            problem(format!(
                "not an RSA (2048 bits or more) or Ed25519 key ({e})"
            ))
        })?;
        Ok(Signer {
            domain: config.domain.clone(),
            selector: config.selector.clone(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// Where to publish the public key, and the TXT record's text.
    pub(crate) fn dns_record(&self) -> (String, String) {
        let name = format!("{}._domainkey.{}", self.selector, self.domain);
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let text = match &self.key {
            Key::Rsa(k) => format!(
                "v=DKIM1; k=rsa; p={}",
                b64(&rsa_spki(k.public_key().as_ref()))
            ),
            Key::Ed25519(k) => format!("v=DKIM1; k=ed25519; p={}", b64(k.public_key().as_ref())),
        };
        (name, text)
    }

    /// `message` with a `DKIM-Signature:` header in front.
    pub(crate) fn sign(&self, message: &[u8], now: i64) -> Result<Vec<u8>> {
        let split = find_body(message);
        let (head, body) = message.split_at(split);
        let body = body.strip_prefix(b"\r\n").unwrap_or(body);
        let body_hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(relaxed_body(body)));
        let headers = header_fields(head);
        let signed: Vec<&str> = SIGNED
            .iter()
            .copied()
            .filter(|name| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
            .collect();
        let algorithm = match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        let value = format!(
            "v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={}; t={now};\r\n h={};\r\n bh={body_hash};\r\n b=",
            self.domain,
            self.selector,
            signed.join(":")
        );
        let mut data = Vec::new();
        for name in &signed {
            // The last instance of each signed header (RFC 6376 §5.4.2).
            if let Some((n, v)) = headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                data.extend_from_slice(relaxed_header(n, v).as_bytes());
                data.extend_from_slice(b"\r\n");
            }
        }
        data.extend_from_slice(relaxed_header("DKIM-Signature", &value).as_bytes());
        let signature = self.signature(&data)?;
        let b = base64::engine::general_purpose::STANDARD.encode(signature);
        let folded: Vec<&str> = b
            .as_bytes()
            .chunks(72)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        let mut out = Vec::with_capacity(message.len() + 600);
        out.extend_from_slice(b"DKIM-Signature: ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(folded.join("\r\n  ").as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(message);
        Ok(out)
    }

    fn signature(&self, data: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut sig)
                    .map_err(|_| Error::Setting("dkim: the RSA signature failed".into()))?;
                Ok(sig)
            }
            // RFC 8463: Ed25519 signs the SHA-256 of the data.
            Key::Ed25519(k) => Ok(k.sign(&Sha256::digest(data)).as_ref().to_vec()),
        }
    }
}

/// A private key must not be readable by others.
fn check_mode(path: &Path) -> std::result::Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "readable by others (mode {:o}); a private key must be the owner's only: chmod 600 {}",
                mode & 0o777,
                path.display()
            ));
        }
    }
    Ok(())
}

/// The first PEM block: its label and its decoded bytes.
fn pem_block(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let b64: String = rest[body_start..end].split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label, der))
}

/// An RSAPublicKey (PKCS#1) wrapped as the SubjectPublicKeyInfo DNS records carry.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let bit_string = der(0x03, &bit_string);
    let mut inner = ALGORITHM.to_vec();
    inner.extend_from_slice(&bit_string);
    der(0x30, &inner)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Where the header ends: the offset of the blank line's CRLF.
fn find_body(message: &[u8]) -> usize {
    memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 2)
}

/// (name, raw value with its folds) of each header field.
fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str("\r\n");
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_string(), value.to_string()));
        }
    }
    fields
}

/// RFC 6376 §3.4.2: lower-case name, unfolded value, runs of white space as one space,
/// none at either end.
fn relaxed_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let collapsed = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}:{}", name.trim().to_ascii_lowercase(), collapsed)
}

/// RFC 6376 §3.4.4: white space runs as one space, none at a line's end, no empty lines
/// at the end, and a CRLF after the last line.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut lines: Vec<String> = text
        .split("\r\n")
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            let mut space = false;
            for c in l.chars() {
                if c == ' ' || c == '\t' {
                    space = true;
                } else {
                    if space {
                        out.push(' ');
                        space = false;
                    }
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if lines.is_empty() {
        return Vec::new();
    }
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_follow_rfc_6376s_examples() {
        // RFC 6376 §3.4.5.
        assert_eq!(relaxed_header("A", " X"), "a:X");
        assert_eq!(relaxed_header("B ", " Y\t\r\n\tZ  "), "b:Y Z");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
    }
}
