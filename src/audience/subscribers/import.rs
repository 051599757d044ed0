//! Readers imported from a CSV export (ours, Mailchimp's, listmonk's): which column holds
//! what, found from the header row, and the rules for each row (never re-subscribe someone
//! who left or bounced, keep who the export says unsubscribed as unsubscribed).

use std::path::Path;

use chrono::NaiveDate;
use lettre::Address;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::{address_key, entry_text, Catalog, Format, Known, NewSubscriber, Status};
use crate::error::{Error, Result};

/// The list as an import needs it, read in one streamed pass: who is there (a 64-bit hash
/// of each address key, with their line and status: about 30 bytes a reader, not a parsed
/// entry), and the entries to append, as text.
pub(crate) struct Listed {
    by_hash: HashMap<u64, (u32, Status)>,
    /// New entries, in the file's own format, in the order of the rows.
    pub appended: String,
}

impl Listed {
    /// Read `path` (validated as `check` does: every problem at once).
    pub(crate) fn read(path: &Path, known: &Known<'_>) -> Result<Listed> {
        let mut by_hash = HashMap::new();
        let problems = super::stream_hashed(path, known, &mut |s| {
            by_hash.insert(hash_of(&s.key()), (s.line as u32, s.status));
        })?;
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        Ok(Listed {
            by_hash,
            appended: String::new(),
        })
    }

    fn find(&self, address: &Address) -> Option<(u32, Status)> {
        self.by_hash.get(&hash_of(&address_key(address))).copied()
    }

    /// Append `new` at `address` (as unsubscribed when the export says so).
    fn add(&mut self, new: &NewSubscriber, address: &Address, status: Status) {
        let mut text = entry_text(new, address);
        if status != Status::Active {
            text.push_str(&format!("status = \"{}\"\n", status.as_str()));
        }
        if !self.appended.is_empty() {
            self.appended.push('\n');
        }
        self.appended.push_str(&text);
        // Line 0: not in the file yet (a second row for them is "already subscribed").
        self.by_hash
            .insert(hash_of(&address_key(address)), (0, status));
    }
}

/// A key's hash: equal keys, equal hashes; two keys sharing one is a 1 in 2^64 chance per
/// pair (at a million readers, about 3 in 100 million for a whole import).
fn hash_of(key: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Row {
    /// Added; the text names the reader (and says when they come in as unsubscribed).
    Added(String),
    /// Left out: the row's line, the address as written, and why.
    Skipped {
        line: u64,
        email: String,
        reason: String,
    },
}

/// Add every row of the CSV file `file` to `listed` (not written: the caller decides).
/// `today` is each new reader's `since`.
pub(crate) fn import(
    listed: &mut Listed,
    catalog: &Catalog,
    file: &Path,
    today: NaiveDate,
    forgotten: &dyn Fn(&Address) -> Option<String>,
) -> Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| Error::io("read", file, e.into()))?;
    let header = reader
        .headers()
        .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?
        .clone();
    let columns = Columns::from_header(&header);
    let Some(email_col) = columns.email else {
        return Err(Error::Usage(format!(
            "{}:1: no email column in the header row (expected \"email\" or \"Email Address\")",
            file.display()
        )));
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push(Row::Skipped {
                    line: e.position().map_or(0, csv::Position::line),
                    email: String::new(),
                    reason: format!("unreadable row ({e})"),
                });
                continue;
            }
        };
        let get = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let email = get(Some(email_col)).unwrap_or("");
        rows.push(
            match add_row(listed, catalog, &columns, &get, email, today, forgotten) {
                Ok(added) => Row::Added(added),
                Err(reason) => Row::Skipped {
                    line: record.position().map_or(0, csv::Position::line),
                    email: email.to_string(),
                    reason,
                },
            },
        );
    }
    Ok(rows)
}

/// Which CSV column holds what, found from the header row.
#[derive(Debug, Default)]
struct Columns {
    email: Option<usize>,
    name: Option<usize>,
    first_name: Option<usize>,
    last_name: Option<usize>,
    categories: Option<usize>,
    format: Option<usize>,
    status: Option<usize>,
}

impl Columns {
    /// Our own names, Mailchimp's ("Email Address", "First Name", "Last Name",
    /// "EMAIL_TYPE") and listmonk's ("email", "name", "status").
    fn from_header(header: &csv::StringRecord) -> Columns {
        let mut c = Columns::default();
        for (i, name) in header.iter().enumerate() {
            let n = name
                .trim()
                .trim_start_matches('\u{feff}')
                .to_lowercase()
                .replace(['_', '-'], " ");
            let slot = match n.as_str() {
                "email" | "email address" | "e mail" | "mail" => &mut c.email,
                "name" | "full name" => &mut c.name,
                "first name" | "fname" => &mut c.first_name,
                "last name" | "lname" => &mut c.last_name,
                "categories" | "category" => &mut c.categories,
                "format" | "email type" | "email format" => &mut c.format,
                "status" | "subscription status" => &mut c.status,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        c
    }
}

/// `Ok(description)` when added, `Err(reason)` when skipped.
fn add_row<'r>(
    listed: &mut Listed,
    catalog: &Catalog,
    columns: &Columns,
    get: &dyn Fn(Option<usize>) -> Option<&'r str>,
    raw_email: &str,
    today: NaiveDate,
    forgotten: &dyn Fn(&Address) -> Option<String>,
) -> std::result::Result<String, String> {
    let address: Address = raw_email
        .parse()
        .map_err(|e| format!("not a valid address ({e})"))?;
    if let Some(at) = forgotten(&address) {
        return Err(format!(
            "forgotten at their request ({at}), not re-added (`subscribers add --resubscribe` if they ask to join again)"
        ));
    }
    if let Some((line, status)) = listed.find(&address) {
        let place = if line == 0 {
            "earlier in this file".to_string()
        } else {
            format!("line {line}")
        };
        return Err(match status {
            Status::Unsubscribed => format!("unsubscribed earlier ({place}), not re-subscribed"),
            Status::Bounced => format!("bounced earlier ({place}), not re-subscribed"),
            Status::Active => format!("already subscribed ({place})"),
        });
    }
    let categories = categories(get(columns.categories));
    if let Some(unknown) = categories.iter().find(|c| !catalog.categories.contains(c)) {
        return Err(format!("unknown category {unknown:?}"));
    }
    let format = match get(columns.format).map(str::to_lowercase).as_deref() {
        None | Some("html") => None,
        Some("text" | "plain" | "plaintext") => Some(Format::Text),
        Some(other) => return Err(format!("unknown format {other:?} (expected html or text)")),
    };
    // listmonk: enabled / disabled / blocklisted; Mailchimp: subscribed / unsubscribed / cleaned.
    let unsubscribed = matches!(
        get(columns.status).map(str::to_lowercase).as_deref(),
        Some("unsubscribed" | "blocklisted" | "blacklisted" | "cleaned" | "disabled")
    );
    let new = NewSubscriber {
        name: name(columns, get),
        categories,
        format,
        language: None,
        since: Some(today),
    };
    if unsubscribed {
        listed.add(&new, &address, Status::Unsubscribed);
        return Ok(format!("{address} (as unsubscribed, as in the export)"));
    }
    listed.add(&new, &address, Status::Active);
    Ok(address.to_string())
}

/// The name column, else first and last names joined.
fn name<'r>(columns: &Columns, get: &dyn Fn(Option<usize>) -> Option<&'r str>) -> Option<String> {
    get(columns.name).map(str::to_string).or_else(|| {
        let full = [get(columns.first_name), get(columns.last_name)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!full.is_empty()).then_some(full)
    })
}

/// Categories as exports write them: separated by `;`, `,` or `|`.
fn categories(cell: Option<&str>) -> Vec<String> {
    cell.map(|c| {
        c.split([';', ',', '|'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_mailchimp_and_listmonk_exports_are_recognised() {
        let header = csv::StringRecord::from(vec![
            "\u{feff}Email Address",
            "First Name",
            "Last Name",
            "EMAIL_TYPE",
            "status",
        ]);
        let c = Columns::from_header(&header);
        assert_eq!(
            (
                c.email,
                c.first_name,
                c.last_name,
                c.format,
                c.status,
                c.name
            ),
            (Some(0), Some(1), Some(2), Some(3), Some(4), None)
        );
        assert_eq!(
            categories(Some("Veille; Outils |IA,")),
            ["Veille", "Outils", "IA"]
        );
    }
}
