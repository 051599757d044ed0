//! Delivery: from a week's digest to messages in readers' mailboxes, exactly once each.
//!
//! [`campaign`] chooses the weeks, freezes each one (content and audience) in the
//! [`ledger`]; the [`engine`] works through the frozen audience with N workers over a
//! [`transport`], recording every transaction in the ledger's journal. The ledger is the
//! only part that remembers; the transport decides nothing.

pub(crate) mod campaign;
pub(crate) mod engine;
pub(crate) mod ledger;
pub(crate) mod plan;
pub(crate) mod transport;
