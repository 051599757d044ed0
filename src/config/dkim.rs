//! `[dkim]`: sign every message with the domain's key (for a blogger whose own Postfix
//! sends, where no provider signs). The key stays in its own file, never in the config.

use std::path::PathBuf;

use serde::Deserialize;

use super::Located;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    key_file: Option<PathBuf>,
}

/// The signing domain (`d=`), the selector (`s=`) and the private key's file (PEM:
/// RSA-2048 or more, or Ed25519).
#[derive(Debug, Clone)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub key_file: PathBuf,
}

impl RawDkim {
    /// Every value present and plausible; `None` where a problem was reported.
    pub(super) fn check(self, at: &mut Located<'_>) -> Option<DkimConfig> {
        let domain = self.domain.filter(|d| !d.trim().is_empty());
        let selector = self.selector.filter(|s| !s.trim().is_empty());
        if domain.is_none() {
            at.missing(
                "dkim",
                "domain",
                "the signing domain, usually the From address's, such as \"example.org\"",
            );
        }
        if selector.is_none() {
            at.missing(
                "dkim",
                "selector",
                "the key's name in DNS, such as \"digestif2026\"",
            );
        }
        if self.key_file.is_none() {
            at.missing(
                "dkim",
                "key_file",
                "the private key's PEM file, such as \"dkim.key\" (mode 0600)",
            );
        }
        let (domain, selector, key_file) = (domain?, selector?, self.key_file?);
        let label_ok = |s: &str| {
            s.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        };
        if !label_ok(&selector) || !label_ok(&domain) {
            at.problem(
                "dkim: domain and selector must be DNS names (letters, digits, '-' and '.')",
            );
            return None;
        }
        Some(DkimConfig {
            domain: domain.to_ascii_lowercase(),
            selector,
            key_file,
        })
    }
}
