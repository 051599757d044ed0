//! The `[sender]` table: who the digest comes from and how readers leave.

use lettre::message::Mailbox;
use lettre::Address;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::Located;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSender {
    pub(super) from: Option<Spanned<String>>,
    pub(super) reply_to: Option<Spanned<String>>,
    pub(super) list_id: Option<Spanned<String>>,
    pub(super) unsubscribe_mailto: Option<Spanned<String>>,
    pub(super) unsubscribe_url: Option<Spanned<String>>,
    #[serde(default = "default_secret_env")]
    pub(super) unsubscribe_secret_env: String,
    pub(super) bounce_address: Option<Spanned<String>>,
    #[serde(default = "default_soft_bounce_limit")]
    pub(super) soft_bounce_limit: u32,
    #[serde(default = "default_soft_bounce_weeks")]
    pub(super) soft_bounce_weeks: u32,
}

fn default_soft_bounce_limit() -> u32 {
    3
}

fn default_soft_bounce_weeks() -> u32 {
    8
}

fn default_secret_env() -> String {
    "DIGESTIF_UNSUBSCRIBE_SECRET".into()
}

/// Who the digest comes from and how readers leave.
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// `List-Id` value, e.g. `veille.example.org`.
    pub list_id: String,
    pub unsubscribe_mailto: Option<String>,
    pub unsubscribe_url: Option<Url>,
    pub unsubscribe_secret_env: String,
    /// Envelope sender for bounces, VERP-style: `bounces@example.org` makes each reader's
    /// return path `bounces+TOKEN@example.org`, so a bounce names its reader. `None`: the
    /// From address, with no token.
    pub bounce_address: Option<Address>,
    /// Temporary delivery failures reported for one reader, on different messages, that
    /// mark them `bounced` (`digestif inbox`).
    pub soft_bounce_limit: u32,
    /// Only the temporary failures of the last this many weeks count: older ones decay,
    /// so a mailbox that was full once a year is never bounced for it.
    pub soft_bounce_weeks: u32,
}

impl Sender {
    /// Is there a way for readers to leave? Bulk mail without one is never sent.
    pub fn can_unsubscribe(&self) -> bool {
        self.unsubscribe_url.is_some() || self.unsubscribe_mailto.is_some()
    }

    /// Do readers' messages carry tokens that must be signed (the https endpoint's links,
    /// VERP return paths)? A `mailto:` alone works without one.
    pub fn uses_tokens(&self) -> bool {
        self.unsubscribe_url.is_some() || self.bounce_address.is_some()
    }
}

/// The values of `[sender]` that needed checking; `None` where a problem was reported.
pub(super) struct Checked {
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub list_id: Option<String>,
    pub unsubscribe_mailto: Option<String>,
    pub unsubscribe_url: Option<Url>,
    pub bounce_address: Option<Address>,
}

impl RawSender {
    /// Check every value, reporting each problem at its place.
    pub(super) fn check(&self, at: &mut Located<'_>) -> Checked {
        if self.soft_bounce_limit == 0 {
            at.problem("sender.soft_bounce_limit: expected at least 1");
        }
        if self.soft_bounce_weeks == 0 {
            at.problem("sender.soft_bounce_weeks: expected at least 1");
        }
        Checked {
            from: match &self.from {
                Some(from) => mailbox(at, "sender.from", from),
                None => {
                    at.missing(
                        "sender",
                        "from",
                        "who the digest comes from, such as \"Veille <veille@example.org>\"",
                    );
                    None
                }
            },
            reply_to: self
                .reply_to
                .as_ref()
                .and_then(|r| mailbox(at, "sender.reply_to", r)),
            list_id: self.list_id(at),
            unsubscribe_mailto: self.unsubscribe_mailto(at),
            unsubscribe_url: self.unsubscribe_url(at),
            bounce_address: self.bounce_address(at),
        }
    }

    /// Build the [`Sender`] from the checked values; `list_id` defaults to From's domain.
    /// `unsubscribe_url` defaults to `<web.url>unsubscribe`.
    pub(super) fn into_sender(self, checked: Checked, from: Mailbox, web: Option<&Url>) -> Sender {
        Sender {
            list_id: checked
                .list_id
                .unwrap_or_else(|| from.email.domain().to_string()),
            from,
            reply_to: checked.reply_to,
            unsubscribe_mailto: checked.unsubscribe_mailto,
            unsubscribe_url: checked
                .unsubscribe_url
                .or_else(|| web.and_then(|w| w.join("unsubscribe").ok())),
            unsubscribe_secret_env: self.unsubscribe_secret_env,
            bounce_address: checked.bounce_address,
            soft_bounce_limit: self.soft_bounce_limit,
            soft_bounce_weeks: self.soft_bounce_weeks,
        }
    }

    fn unsubscribe_url(&self, at: &mut Located<'_>) -> Option<Url> {
        let written = self.unsubscribe_url.as_ref()?;
        super::web::https(
            at,
            "sender.unsubscribe_url",
            written,
            "one-click unsubscribe (RFC 8058) requires https: put the endpoint behind TLS",
        )
    }

    fn unsubscribe_mailto(&self, at: &mut Located<'_>) -> Option<String> {
        let written = self.unsubscribe_mailto.as_ref()?;
        match written
            .get_ref()
            .trim_start_matches("mailto:")
            .parse::<Address>()
        {
            Ok(addr) => Some(addr.to_string()),
            Err(e) => {
                at.span(
                    written.span(),
                    format!("sender.unsubscribe_mailto: expected an email address ({e})"),
                );
                None
            }
        }
    }

    fn list_id(&self, at: &mut Located<'_>) -> Option<String> {
        let written = self.list_id.as_ref()?;
        check_list_id(written.get_ref())
            .map_err(|why| {
                at.span(
                    written.span(),
                    format!("sender.list_id: {why}, found {:?}", written.get_ref()),
                );
            })
            .ok()
    }

    fn bounce_address(&self, at: &mut Located<'_>) -> Option<Address> {
        let written = self.bounce_address.as_ref()?;
        match written.get_ref().parse::<Address>() {
            Ok(a) if a.user().contains('+') => {
                at.span(
                    written.span(),
                    "sender.bounce_address: expected an address without '+' (digestif adds +TOKEN to it)".into(),
                );
                None
            }
            Ok(a) => Some(a),
            Err(e) => {
                at.span(
                    written.span(),
                    format!("sender.bounce_address: expected an email address ({e})"),
                );
                None
            }
        }
    }
}

fn mailbox(at: &mut Located<'_>, key: &str, value: &Spanned<String>) -> Option<Mailbox> {
    match value.get_ref().parse::<Mailbox>() {
        Ok(mailbox) => Some(mailbox),
        Err(e) => {
            at.span(
                value.span(),
                format!(
                    "{key}: expected \"Name <address@domain>\" or an address, found {:?} ({e})",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

/// A `List-Id` (RFC 2919): a dot-atom, such as `veille.example.org`. It goes into headers
/// and Message-IDs, so nothing else may get through.
fn check_list_id(id: &str) -> Result<String, &'static str> {
    let atom = |a: &str| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if id.len() > 200 {
        Err("expected at most 200 characters")
    } else if !id.split('.').all(atom) {
        Err("expected a dot-separated name such as \"veille.example.org\" (ASCII letters, digits, - and _ only)")
    } else {
        Ok(id.to_string())
    }
}
