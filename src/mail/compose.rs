//! The one per-recipient composer: what a reader's message holds beyond the frozen
//! variant (greeting, unsubscribe link, Message-ID, envelope). `send`, the dry run and
//! `preview` all go through [`Composer::compose`], so what is previewed is what is sent.

use std::collections::HashMap;

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::Address;

use super::dkim::Signer;
use super::{message_id, Personal, Prepared};
use super::{Recipient, Variant};
use crate::audience::token::Secret;
use crate::clock::Clock;
use crate::config::{Config, Sender};
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::render;
use crate::week::Week;

/// Where the way out points when no mechanism is configured: a reserved, unreachable
/// domain (RFC 2606), so a preview never passes the home page off as an unsubscribe link.
/// A real send refuses to run in that state.
pub(crate) const NOT_CONFIGURED: &str = "https://unsubscribe-not-configured.invalid/";

/// `Err` when readers would have no way to leave: bulk mail is never sent so.
pub(crate) fn no_way_out(config: &Config) -> Result<()> {
    if config.sender.can_unsubscribe() {
        return Ok(());
    }
    Err(Error::Setting(
        "sender: neither unsubscribe_url nor unsubscribe_mailto is set, so readers would have no \
         way to leave; digestif does not send bulk mail without one (RFC 8058, Gmail and Yahoo \
         bulk-sender rules): set unsubscribe_url (https, served by `digestif serve`) or \
         unsubscribe_mailto"
            .into(),
    ))
}

/// How each recipient's ways out (and return path) are made.
pub(crate) struct Unsubscribe {
    /// The one-click endpoint (https).
    pub url: Option<url::Url>,
    pub mailto: Option<String>,
    /// Makes each reader's token. A preview has no reader: `None` gives bare links.
    pub secret: Option<Secret>,
    /// VERP base of the return path: `bounces@d` gives `bounces+TOKEN@d`.
    pub bounce: Option<Address>,
    /// The preferences page (`<web.url>preferences`), linked from every footer.
    pub preferences: Option<url::Url>,
}

/// One reader's ways out.
pub(crate) struct Links {
    /// The link shown in the message.
    pub shown: String,
    /// The `List-Unsubscribe` value, when there is a mechanism.
    pub header: Option<String>,
    /// An https link with a token: `List-Unsubscribe-Post` may promise one click.
    pub one_click: bool,
    /// The envelope sender; `None`: the From address.
    pub return_path: Option<Address>,
    /// The reader's preferences page, with their token (empty without `[web] url`).
    pub preferences: String,
}

impl Unsubscribe {
    /// The ways out the config gives; `secret` makes each reader's token (see
    /// [`token::secret_for`]); `None` gives bare links (a preview has no reader).
    pub(crate) fn new(sender: &Sender, secret: Option<Secret>) -> Unsubscribe {
        Unsubscribe {
            url: sender.unsubscribe_url.clone(),
            mailto: sender.unsubscribe_mailto.clone(),
            secret,
            bounce: sender.bounce_address.clone(),
            preferences: None,
        }
    }

    /// Link every footer to the preferences page under `web` (`[web] url`).
    pub(crate) fn with_preferences(mut self, web: Option<&url::Url>) -> Unsubscribe {
        self.preferences = web.and_then(|w| w.join("preferences").ok());
        self
    }

    /// The ways out of the reader with address key `key`.
    pub(crate) fn links(&self, key: &str) -> Links {
        let token = self.secret.as_ref().map(|s| s.token(key));
        let https = self
            .url
            .as_ref()
            .map(|base| with_token(base, token.as_deref()));
        let mailto = self.mailto.as_ref().map(|m| match &token {
            Some(token) => format!("mailto:{m}?subject=unsubscribe%20{token}"),
            None => format!("mailto:{m}?subject=unsubscribe"),
        });
        let header: Vec<String> = [&mailto, &https]
            .into_iter()
            .flatten()
            .map(|l| format!("<{l}>"))
            .collect();
        let return_path = self.bounce.as_ref().map(|b| match &token {
            Some(token) => Address::new(format!("{}+{token}", b.user()), b.domain())
                .unwrap_or_else(|_| b.clone()),
            None => b.clone(),
        });
        Links {
            shown: https
                .clone()
                .or_else(|| mailto.clone())
                .unwrap_or_else(|| NOT_CONFIGURED.to_string()),
            header: (!header.is_empty()).then(|| header.join(", ")),
            one_click: https.is_some() && token.is_some(),
            return_path,
            preferences: self
                .preferences
                .as_ref()
                .map(|page| with_token(page, token.as_deref()))
                .unwrap_or_default(),
        }
    }
}

/// `base?token=TOKEN`: a plain concatenation when `base` has no query or fragment (the
/// token is hex, nothing to escape), else through the URL's own query builder.
fn with_token(base: &url::Url, token: Option<&str>) -> String {
    match token {
        None => base.to_string(),
        Some(token) if base.query().is_none() && base.fragment().is_none() => {
            format!("{}?token={token}", base.as_str())
        }
        Some(token) => {
            let mut url = base.clone();
            url.query_pairs_mut().append_pair("token", token);
            url.to_string()
        }
    }
}

/// One recipient's message, ready for a transport or a file.
pub(crate) struct Composed {
    pub bytes: Vec<u8>,
    /// The variant's parts with this reader's greeting and link, for preview files.
    pub html: Option<String>,
    pub text: String,
}

/// Builds each recipient's message from a frozen variant, encoded once per variant.
pub(crate) struct Composer<'a> {
    pub week: Week,
    pub kind: &'a Kind,
    pub sender: &'a Sender,
    pub unsubscribe: &'a Unsubscribe,
    variants: HashMap<i64, (Prepared, Variant)>,
    /// Dates each message.
    clock: Clock,
    /// `[dkim]`: each message signed, when set.
    signer: Option<&'a Signer>,
}

impl<'a> Composer<'a> {
    pub(crate) fn new(
        week: Week,
        kind: &'a Kind,
        sender: &'a Sender,
        unsubscribe: &'a Unsubscribe,
        variants: Vec<Variant>,
        clock: Clock,
    ) -> Self {
        let variants = variants
            .into_iter()
            .map(|v| {
                let prepared = Prepared::new(sender, &v.subject, &v.text, v.html.as_deref());
                (v.id, (prepared, v))
            })
            .collect();
        Composer {
            week,
            kind,
            sender,
            unsubscribe,
            variants,
            clock,
            signer: None,
        }
    }

    /// Sign every message with `signer` (DKIM), when there is one.
    pub(crate) fn signed_by(mut self, signer: Option<&'a Signer>) -> Self {
        self.signer = signer;
        self
    }

    /// The envelope and bytes of `r`'s message.
    pub(crate) fn compose(&self, r: &Recipient) -> Result<(Envelope, Vec<u8>)> {
        self.message(r, &self.personal(r)?, &self.message_id(r))
    }

    /// `r`'s Message-ID, the same in every run of the week (a resent copy is recognised as
    /// one). Known without composing, so the ledger can record it ahead.
    pub(crate) fn message_id(&self, r: &Recipient) -> String {
        // Test sends get their own Message-IDs, apart from the week's real one.
        if self.kind.is_real() {
            message_id(self.week, &r.key, self.sender)
        } else {
            message_id(self.week, &format!("{}\0{}", self.kind, r.key), self.sender)
        }
    }

    /// `compose`, with `r`'s Message-ID already worked out.
    pub(crate) fn compose_with_id(
        &self,
        r: &Recipient,
        message_id: &str,
    ) -> Result<(Envelope, Vec<u8>)> {
        self.message(r, &self.personal(r)?, message_id)
    }

    /// `compose`, plus the decoded parts as the reader sees them (for preview files).
    pub(crate) fn compose_with_parts(&self, r: &Recipient) -> Result<Composed> {
        let personal = self.personal(r)?;
        let (_, bytes) = self.message(r, &personal, &self.message_id(r))?;
        let variant = &personal.variant.1;
        let (html, text) = render::fill_markers(
            variant.html.as_deref(),
            &variant.text,
            &personal.greeting,
            (&personal.links.shown, &personal.links.preferences),
        );
        Ok(Composed { bytes, html, text })
    }

    /// What differs for `r`, worked out once: their variant, greeting and links.
    fn personal(&self, r: &Recipient) -> Result<PersonalParts<'_>> {
        let variant = self.variant(r)?;
        Ok(PersonalParts {
            variant,
            greeting: greeting(&variant.1, r.name.as_deref()),
            links: self.unsubscribe.links(&r.key),
        })
    }

    fn message(
        &self,
        r: &Recipient,
        personal: &PersonalParts<'_>,
        message_id: &str,
    ) -> Result<(Envelope, Vec<u8>)> {
        // RCPT TO and To: carry the domain in its ASCII (punycode) form; a non-ASCII
        // local part is left to the transport (SMTPUTF8, or a clear refusal).
        let address = super::ascii_domain(&parse_address(&r.email)?)
            .map_err(|why| Error::message(&r.email, why))?;
        let mailbox = Mailbox::new(r.name.clone(), address.clone());
        let bytes = personal.variant.0.message(&Personal {
            to: &mailbox,
            message_id,
            greeting: &personal.greeting,
            unsubscribe_link: &personal.links.shown,
            preferences_link: &personal.links.preferences,
            list_unsubscribe: personal.links.header.as_deref(),
            one_click: personal.links.one_click,
            date: self.clock.now(),
        });
        let bytes = match self.signer {
            Some(signer) => signer.sign(&bytes, self.clock.now().timestamp())?,
            None => bytes,
        };
        let from = personal
            .links
            .return_path
            .clone()
            .unwrap_or_else(|| self.sender.from.email.clone());
        let envelope = Envelope::new(Some(from), vec![address])
            .map_err(|e| Error::message(&r.email, format!("bad envelope ({e})")))?;
        Ok((envelope, bytes))
    }

    fn variant(&self, r: &Recipient) -> Result<&(Prepared, Variant)> {
        self.variants.get(&r.variant).ok_or_else(|| {
            Error::message(&r.email, format!("the ledger has no variant {}", r.variant))
        })
    }
}

/// One recipient's personal values (see [`Composer::personal`]).
struct PersonalParts<'c> {
    variant: &'c (Prepared, Variant),
    greeting: String,
    links: Links,
}

/// The greeting rule, in one place: the reader's name cleaned of control characters and
/// markers, or the anonymous wording when there is no usable name.
fn greeting(variant: &Variant, name: Option<&str>) -> String {
    render::greeting(&variant.greeting_named, &variant.greeting_anonymous, name)
}

fn parse_address(email: &str) -> Result<Address> {
    email
        .parse()
        .map_err(|e| Error::message(email, format!("not a valid address ({e})")))
}

#[cfg(test)]
mod tests {
    use super::with_token;

    #[test]
    fn the_token_is_appended_as_the_url_builder_would() {
        for base in [
            "https://veille.example.org/unsubscribe",
            "https://veille.example.org/u/",
            "https://veille.example.org/u?list=veille",
            "https://veille.example.org/u?",
            "https://veille.example.org/u#top",
            "https://xn--bcher-kva.example/désabonnement",
        ] {
            let base = url::Url::parse(base).unwrap();
            let mut reference = base.clone();
            reference.query_pairs_mut().append_pair("token", "0a1b");
            assert_eq!(with_token(&base, Some("0a1b")), reference.to_string());
            assert_eq!(with_token(&base, None), base.to_string());
        }
    }
}
