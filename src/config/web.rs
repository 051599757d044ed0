//! `[web]`: where `digestif serve` is reachable from outside, and the limits of its
//! public forms (subscribe, confirm). Every limit has a default meant for a small blog.

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::Located;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    url: Option<Spanned<String>>,
    thank_you_url: Option<Spanned<String>>,
    #[serde(default)]
    record_ip: bool,
    max_pending: Option<usize>,
    per_client_per_hour: Option<u32>,
    max_clients: Option<usize>,
    min_fill_seconds: Option<u64>,
    max_body_bytes: Option<usize>,
}

/// The checked `[web]` table.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The public address `serve` answers under, ending in `/`: `<url>subscribe`,
    /// `<url>confirm`, `<url>unsubscribe`, `<url>healthz`.
    pub url: Option<Url>,
    /// Where a browser goes after subscribing, instead of our own page.
    pub thank_you_url: Option<Url>,
    /// Keep the client's IP address in the consent record (off: not needed to prove
    /// consent, and personal data).
    pub record_ip: bool,
    /// Confirmations waiting at most: past that, new requests are refused (503) until
    /// some are confirmed or expire.
    pub max_pending: usize,
    /// Subscribe requests one client address may make per hour.
    pub per_client_per_hour: u32,
    /// Client addresses remembered for that limit (the table is bounded).
    pub max_clients: usize,
    /// A form `serve` hosted and got back sooner than this was filled by a program.
    pub min_fill_seconds: u64,
    /// Longest request body read; a longer one is refused (413).
    pub max_body_bytes: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            url: None,
            thank_you_url: None,
            record_ip: false,
            max_pending: 10_000,
            per_client_per_hour: 20,
            max_clients: 10_000,
            min_fill_seconds: 2,
            max_body_bytes: 16 * 1024,
        }
    }
}

impl RawWeb {
    pub(super) fn check(self, at: &mut Located<'_>) -> WebConfig {
        let d = WebConfig::default();
        WebConfig {
            url: self
                .url
                .as_ref()
                .and_then(|u| https(at, "web.url", u, WEB_NEEDS_TLS))
                .map(|mut url| {
                    if !url.path().ends_with('/') {
                        let path = format!("{}/", url.path());
                        url.set_path(&path);
                    }
                    url
                }),
            thank_you_url: self
                .thank_you_url
                .as_ref()
                .and_then(|u| https(at, "web.thank_you_url", u, WEB_NEEDS_TLS)),
            record_ip: self.record_ip,
            max_pending: self.max_pending.unwrap_or(d.max_pending).max(1),
            per_client_per_hour: self
                .per_client_per_hour
                .unwrap_or(d.per_client_per_hour)
                .max(1),
            max_clients: self.max_clients.unwrap_or(d.max_clients).max(16),
            min_fill_seconds: self.min_fill_seconds.unwrap_or(d.min_fill_seconds),
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes).max(1024),
        }
    }
}

/// Why [`https`] refuses plain http for `[web]`'s addresses.
const WEB_NEEDS_TLS: &str =
    "readers' addresses and one-click links travel here: put it behind TLS (https)";

/// An absolute https URL, or a problem at its place in the file; `why_tls` says why plain
/// http will not do.
pub(super) fn https(
    at: &mut Located<'_>,
    key: &str,
    written: &Spanned<String>,
    why_tls: &str,
) -> Option<Url> {
    let problem = match Url::parse(written.get_ref()) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => return Some(url),
        Ok(url) if url.scheme() == "http" => why_tls.to_string(),
        Ok(_) => "expected an https:// URL".to_string(),
        Err(e) => format!("expected an absolute https:// URL ({e})"),
    };
    at.span(
        written.span(),
        format!("{key}: {problem}, found {:?}", written.get_ref()),
    );
    None
}
