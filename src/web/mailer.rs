//! The confirmation mails of the subscribe form, sent by one thread of their own through
//! the configured SMTP relay: a request is answered at once, whether a mail goes or not
//! (the time of the answer must not tell who is on the list), and a flood of requests
//! queues at most [`QUEUE`] mails, never a thread per request.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use lettre::message::{Mailbox, Message, SinglePart};

use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::transport::{Outcome, TransportSettings};
use crate::error::{Error, Result};
use crate::mail::Signer;

/// Confirmation mails waiting for the relay at most; past that a request is answered as
/// usual and its mail dropped (the address may ask again after a day).
const QUEUE: usize = 256;

/// One confirmation mail to send.
pub(super) struct ConfirmMail {
    pub to: lettre::Address,
    pub subject: String,
    pub text: String,
}

/// What the mailer thread reports, for the caller's log.
pub(crate) enum Sent {
    Done { to: String },
    Failed { to: String, why: String },
}

/// Where requests put their mails.
pub(super) struct Mailer {
    queue: SyncSender<ConfirmMail>,
}

impl Mailer {
    /// Start the thread that sends through `config`'s relay; `report` hears each outcome.
    pub(super) fn start(config: &Config, clock: Clock, report: fn(Sent)) -> Result<Mailer> {
        let settings = TransportSettings::new(&config.smtp, &config.sender.from.email)?;
        settings.prepare()?;
        let signer = config.dkim.as_ref().map(Signer::load).transpose()?;
        let from = config.sender.from.clone();
        let reply_to = config.sender.reply_to.clone();
        let (queue, mails) = sync_channel(QUEUE);
        std::thread::spawn(move || {
            send_all(&settings, (&from, reply_to), signer, clock, &mails, report);
        });
        Ok(Mailer { queue })
    }

    /// Queue `mail`; `false` when the queue is full (the mail is dropped).
    pub(super) fn queue(&self, mail: ConfirmMail) -> bool {
        !matches!(self.queue.try_send(mail), Err(TrySendError::Full(_)))
    }
}

fn send_all(
    settings: &TransportSettings,
    (from, reply_to): (&Mailbox, Option<Mailbox>),
    signer: Option<Signer>,
    clock: Clock,
    mails: &Receiver<ConfirmMail>,
    report: fn(Sent),
) {
    let mut transport = settings.open();
    for mail in mails {
        let to = mail.to.to_string();
        let now = clock.now();
        let built = build(&mail, from, reply_to.as_ref(), now).and_then(|bytes| match &signer {
            Some(s) => s.sign(&bytes, now.timestamp()),
            None => Ok(bytes),
        });
        let bytes = match built {
            Ok(bytes) => bytes,
            Err(e) => {
                report(Sent::Failed {
                    to,
                    why: e.to_string(),
                });
                continue;
            }
        };
        let envelope = match lettre::address::Envelope::new(Some(from.email.clone()), vec![mail.to])
        {
            Ok(envelope) => envelope,
            Err(e) => {
                report(Sent::Failed {
                    to,
                    why: e.to_string(),
                });
                continue;
            }
        };
        match transport.deliver(&envelope, &bytes, None, &mut || Ok(())) {
            Outcome::Sent(_) => report(Sent::Done { to }),
            Outcome::Transient(why) | Outcome::Unknown(why) | Outcome::Unreachable(why) => {
                report(Sent::Failed { to, why });
            }
            Outcome::Permanent { reply, .. } => report(Sent::Failed { to, why: reply }),
            Outcome::Fatal(e) => report(Sent::Failed {
                to,
                why: e.to_string(),
            }),
        }
    }
    transport.close();
}

/// The mail: plain text, one link, no list headers (it is not a digest, and nobody is on
/// the list yet), the newsletter's From and Reply-To.
fn build(
    mail: &ConfirmMail,
    from: &Mailbox,
    reply_to: Option<&Mailbox>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>> {
    let mut builder = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, mail.to.clone()))
        .subject(crate::text::header_safe(&mail.subject).into_owned())
        .date(now.into());
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let message = builder
        .singlepart(SinglePart::plain(mail.text.clone()))
        .map_err(|e| Error::Usage(format!("the confirmation mail cannot be built: {e}")))?;
    Ok(message.formatted())
}
