//! The one per-recipient composer: what a reader's message holds beyond the frozen
//! variant (greeting, unsubscribe link, Message-ID, envelope). `send`, the dry run and
//! `preview` all go through [`Composer::compose`], so what is previewed is what is sent.

use std::collections::HashMap;

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::Address;

use super::{message_id, Personal, Prepared};
use crate::config::{Config, Sender};
use crate::digest::Week;
use crate::error::{Error, Result};
use crate::ledger::{FrozenVariant, Recipient};
use crate::render;
use crate::token::Secret;

/// How each recipient's unsubscribe link is made.
pub(crate) struct Unsubscribe {
    /// The https endpoint, and the secret that signs each reader's token. A preview has no
    /// reader to sign for: `None` gives the bare endpoint.
    pub https: Option<(url::Url, Option<Secret>)>,
    pub mailto: Option<String>,
    pub fallback: String,
}

impl Unsubscribe {
    /// From the config. `signed`: each reader's link carries a token signed with the
    /// secret (a send or dry run); a preview has no reader and needs no secret.
    pub(crate) fn from_config(config: &Config, signed: bool) -> Result<Unsubscribe> {
        let sender = &config.sender;
        let https = match &sender.unsubscribe_url {
            Some(url) if signed => Some((
                url.clone(),
                Some(Secret::from_env(&sender.unsubscribe_secret_env)?),
            )),
            Some(url) => Some((url.clone(), None)),
            None => None,
        };
        Ok(Unsubscribe {
            https,
            mailto: sender.unsubscribe_mailto.clone(),
            fallback: config.base_url.to_string(),
        })
    }

    /// The link shown in the message and, for https, the one put in `List-Unsubscribe`.
    pub(crate) fn link(&self, key: &str) -> (String, Option<String>) {
        match &self.https {
            Some((base, secret)) => {
                let mut url = base.clone();
                if let Some(secret) = secret {
                    url.query_pairs_mut()
                        .append_pair("token", &secret.sign(key));
                }
                (url.to_string(), Some(url.to_string()))
            }
            None => match &self.mailto {
                Some(m) => (format!("mailto:{m}?subject=unsubscribe"), None),
                None => (self.fallback.clone(), None),
            },
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
    pub kind: &'a str,
    pub sender: &'a Sender,
    pub unsubscribe: &'a Unsubscribe,
    variants: HashMap<i64, (Prepared, FrozenVariant)>,
}

impl<'a> Composer<'a> {
    pub(crate) fn new(
        week: Week,
        kind: &'a str,
        sender: &'a Sender,
        unsubscribe: &'a Unsubscribe,
        variants: Vec<FrozenVariant>,
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
        }
    }

    /// The envelope and bytes of `r`'s message, and its Message-ID.
    pub(crate) fn compose(&self, r: &Recipient) -> Result<(Envelope, Vec<u8>, String)> {
        self.message(r, &self.personal(r)?)
    }

    /// `compose`, plus the decoded parts as the reader sees them (for preview files).
    pub(crate) fn compose_with_parts(&self, r: &Recipient) -> Result<Composed> {
        let personal = self.personal(r)?;
        let (_, bytes, _) = self.message(r, &personal)?;
        let variant = &personal.variant.1;
        let (html, text) = render::fill_markers(
            variant.html.as_deref(),
            &variant.text,
            &personal.greeting,
            &personal.link,
        );
        Ok(Composed { bytes, html, text })
    }

    /// What differs for `r`, worked out once: their variant, greeting and links.
    fn personal(&self, r: &Recipient) -> Result<PersonalParts<'_>> {
        let variant = self.variant(r)?;
        let (link, https) = self.unsubscribe.link(&r.key);
        Ok(PersonalParts {
            variant,
            greeting: greeting(&variant.1, r.name.as_deref()),
            link,
            https,
        })
    }

    fn message(
        &self,
        r: &Recipient,
        personal: &PersonalParts<'_>,
    ) -> Result<(Envelope, Vec<u8>, String)> {
        let address = parse_address(&r.email)?;
        let mailbox = Mailbox::new(r.name.clone(), address.clone());
        // Test sends get their own Message-IDs, apart from the week's real one.
        let id_key = if self.kind == "real" {
            r.key.clone()
        } else {
            format!("{}\0{}", self.kind, r.key)
        };
        let message_id = message_id(self.week, &id_key, self.sender);
        let bytes = personal.variant.0.message(&Personal {
            to: &mailbox,
            message_id: &message_id,
            greeting: &personal.greeting,
            unsubscribe_link: &personal.link,
            unsubscribe_https: personal.https.as_deref(),
        });
        let envelope = Envelope::new(Some(self.sender.from.email.clone()), vec![address])
            .map_err(|e| Error::message(&r.email, format!("bad envelope ({e})")))?;
        Ok((envelope, bytes, message_id))
    }

    fn variant(&self, r: &Recipient) -> Result<&(Prepared, FrozenVariant)> {
        self.variants.get(&r.variant).ok_or_else(|| {
            Error::message(&r.email, format!("the ledger has no variant {}", r.variant))
        })
    }
}

/// One recipient's personal values (see [`Composer::personal`]).
struct PersonalParts<'c> {
    variant: &'c (Prepared, FrozenVariant),
    greeting: String,
    link: String,
    https: Option<String>,
}

/// The greeting rule, in one place: the reader's name cleaned of control characters and
/// markers, or the anonymous wording when there is no usable name.
fn greeting(variant: &FrozenVariant, name: Option<&str>) -> String {
    render::greeting(&variant.greeting_named, &variant.greeting_anonymous, name)
}

fn parse_address(email: &str) -> Result<Address> {
    email
        .parse()
        .map_err(|e| Error::message(email, format!("not a valid address ({e})")))
}
