//! lettre's sendmail and file transports, behind the same [`Deliver`] trait as SMTP.

use std::fmt;

use lettre::address::Envelope;

use super::{Deliver, Outcome};
use crate::error::Error;

/// lettre's sendmail and file transports.
pub(super) struct LettreDeliver<T> {
    pub(super) transport: T,
    pub(super) failures_are_fatal: bool,
}

impl<T> Deliver for LettreDeliver<T>
where
    T: lettre::Transport + Send,
    T::Error: fmt::Display,
{
    fn deliver(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        _next: Option<super::Next<'_>>,
        durable: &mut dyn FnMut() -> crate::error::Result<()>,
    ) -> Outcome {
        if let Err(e) = durable() {
            return Outcome::Fatal(e);
        }
        match self.transport.send_raw(envelope, message) {
            Ok(_) => Outcome::Sent("accepted".into()),
            Err(e) if self.failures_are_fatal => Outcome::Fatal(Error::Delivery(format!(
                "cannot hand over the message: {e}"
            ))),
            Err(e) => Outcome::Transient(e.to_string()),
        }
    }
}
