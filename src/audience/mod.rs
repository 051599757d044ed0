//! The audience: the only door to the list of readers, whoever knocks (a command, the web
//! endpoint, the inbox). The subscriber list and its edits ([`subscribers`]), the requests
//! to leave recorded without waiting for a send ([`optout`]), readers' tokens ([`token`]),
//! and what bounces and complaints say about a reader ([`inbox`]).
//!
//! Nothing here renders, sends or prints: callers get values and say what they mean.

pub(crate) mod inbox;
pub(crate) mod optout;
pub(crate) mod subscribers;
pub mod token;
