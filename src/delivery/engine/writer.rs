//! Where the workers record what they do: the run's journal, folded into the ledger a
//! segment at a time.

use std::sync::Mutex;

use super::{into_value, lock};
use crate::delivery::ledger::{Journal, Ledger, Receipt, Update};
use crate::error::Result;

/// Where the workers record what they do: the run's journal, folded into the ledger a
/// segment at a time.
pub(super) struct Writer {
    pub(super) ledger: Mutex<Ledger>,
    pub(super) journal: Journal,
}

impl Writer {
    /// Append `updates` to the journal; when that fills a segment, fold it into the ledger.
    pub(super) fn record(&self, updates: Vec<Update>) -> Result<Receipt> {
        let (receipt, full) = self.journal.append(&updates)?;
        if let Some(closed) = full {
            lock(&self.ledger).fold(closed)?;
        }
        Ok(receipt)
    }

    /// Close the journal and fold its last segment.
    pub(super) fn finish(self, state_dir: &std::path::Path) -> Result<()> {
        let run = self.journal.run().to_string();
        let ledger = into_value(self.ledger);
        ledger.fold(self.journal.finish()?)?;
        ledger.forget_folds(state_dir, &run)
    }
}
