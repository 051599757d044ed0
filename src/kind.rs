//! Leaf: what a send is. The real mailing of a week goes to the list once; a test send
//! (`send --to`) goes to named addresses, is recorded apart under its own run name, and
//! never uses up the week.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// The kind of a send, as the ledger, the journal and the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The week's mailing to the list: `real` in the ledger.
    Real,
    /// A test send, named `test-<instant>` so that two never share a record.
    Test(String),
    /// A preview: the digest addressed to its sender, or a reader's message written as
    /// files. Never in a ledger a send reads.
    Preview,
}

impl Kind {
    const REAL: &'static str = "real";
    const PREVIEW: &'static str = "preview";

    /// A test send started at `at` (the wall clock: this names the run).
    pub fn test_at(at: DateTime<Utc>) -> Kind {
        Kind::Test(format!("test-{}", at.format("%Y%m%dT%H%M%S%.3fZ")))
    }

    /// Read back a name the ledger or the journal holds.
    pub fn parse(name: &str) -> Kind {
        match name {
            Kind::REAL => Kind::Real,
            Kind::PREVIEW => Kind::Preview,
            test => Kind::Test(test.to_string()),
        }
    }

    pub fn is_real(&self) -> bool {
        matches!(self, Kind::Real)
    }

    /// The name stored in the ledger and the journal.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Real => Kind::REAL,
            Kind::Preview => Kind::PREVIEW,
            Kind::Test(name) => name,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ToSql for Kind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for Kind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str().map(Kind::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_round_trip_and_only_real_is_real() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 30, 0).unwrap();
        let test = Kind::test_at(at);
        assert_eq!(test.as_str(), "test-20261204T093000.000Z");
        assert_eq!(Kind::parse(test.as_str()), test);
        assert_eq!(Kind::parse("real"), Kind::Real);
        assert_eq!(Kind::parse("preview"), Kind::Preview);
        assert!(Kind::Real.is_real() && !test.is_real());
    }
}
