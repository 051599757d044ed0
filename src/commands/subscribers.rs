//! `digestif subscribers …` and `digestif unsubscribe --token`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use lettre::Address;

use crate::audience::optout::{self, Left, Optouts, Readers};
use crate::audience::subscribers::{
    self, Added, Catalog, Editor, NewSubscriber, Row, Status, Subscriber,
};
use crate::cli::SubscribersCommand;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::site;

pub(crate) fn run(config: &Path, command: SubscribersCommand, clock: Clock) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let catalog = site::catalog(config);
    let path = &config.subscribers;
    super::fold_waiting(config, &catalog, clock);
    match command {
        SubscribersCommand::List {
            pending: true,
            json,
            ..
        } => print_pending(config, json, clock),
        SubscribersCommand::List {
            category,
            status,
            json,
            ..
        } => {
            let status = status.as_deref().and_then(Status::parse);
            let wanted = |s: &Subscriber| {
                status.is_none_or(|st| s.status == st)
                    && category
                        .as_ref()
                        .is_none_or(|c| s.categories.as_ref().is_none_or(|cs| cs.contains(c)))
            };
            // Streamed and validated as `check` does; the rows go through a temporary file.
            let shape = if json { Shape::Json } else { Shape::Table };
            stream_out(path, &catalog, &wanted, shape)
        }
        SubscribersCommand::Export { csv } => {
            let shape = if csv { Shape::Csv } else { Shape::Json };
            stream_out(path, &catalog, &|_| true, shape)
        }
        SubscribersCommand::Add {
            email,
            name,
            categories,
            format,
            language,
            resubscribe,
        } => {
            let new = NewSubscriber {
                name,
                categories,
                format: format.map(Into::into),
                language,
                since: Some(clock.start().with_timezone(&config.timezone).date_naive()),
            };
            add(config, &catalog, &email, &new, resubscribe, clock)
        }
        SubscribersCommand::Remove { email } => remove(config, &catalog, &email, clock),
        SubscribersCommand::Unsubscribe { email } => unsubscribe(config, &catalog, &email, clock),
        SubscribersCommand::Show { email, json } => {
            super::person::show(config, &catalog, &parse_address(&email)?, json, clock)
        }
        SubscribersCommand::Forget { email } => {
            super::person::forget(config, &catalog, &parse_address(&email)?, clock)
        }
        SubscribersCommand::Import { file, dry_run } => {
            import(config, &catalog, &file, dry_run, clock)
        }
    }
}

/// `subscribers add`.
fn add(
    config: &Config,
    catalog: &Catalog,
    email: &str,
    new: &NewSubscriber,
    resubscribe: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let _guard = super::guard(config, catalog, clock)?;
    let address = parse_address(email)?;
    let key = subscribers::address_key(&address);
    if let Some(at) = Optouts::open(&config.state_dir, clock)?.forgotten_at(&key)? {
        if !resubscribe {
            return Err(Error::Usage(format!(
                "{address} was forgotten at their request ({at}); add it with --resubscribe only if they ask to join again"
            )));
        }
    }
    let has_language = |l: &str| crate::templates::has_language(&config.templates_dir, l);
    subscribers::check_new(catalog, new, &has_language)?;
    // Someone new: appended without reading the list whole (a million entries).
    let entry = subscribers::entry_text(new, &address);
    if catalog.with(|k| subscribers::patch::append_new(&config.subscribers, k, &key, &entry))? {
        say!("added {address}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    let added = subscribers::add(
        &mut editor,
        catalog,
        address,
        new,
        resubscribe,
        &has_language,
    )?;
    editor.save()?;
    match added {
        Added::New(address) => say!("added {address}"),
        Added::Resubscribed { email, line } => say!(
            "resubscribed {email} ({} line {line})",
            config.subscribers.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `subscribers unsubscribe`: never waits for a running send (recorded at once, written
/// when free).
fn unsubscribe(config: &Config, catalog: &Catalog, email: &str, clock: Clock) -> Result<ExitCode> {
    let address = parse_address(email)?;
    let key = subscribers::address_key(&address);
    let readers = Readers::of(config, catalog, std::slice::from_ref(&key))?;
    let status = Status::Unsubscribed;
    match optout::leave(config, catalog, &readers, &key, status, "cli", clock)? {
        Left::NotListed => Err(Error::Usage(format!(
            "{address} is not in {}",
            config.subscribers.display()
        ))),
        left => {
            super::unsubscribe::report(config, &left, &key);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_address(email: &str) -> Result<Address> {
    email
        .trim()
        .parse()
        .map_err(|e| Error::Usage(format!("{email:?} is not a valid email address ({e})")))
}

/// Lock, open, apply `change` to one listed address, save.
/// `subscribers remove EMAIL`: the entry is cut out of the file in place when a search can
/// find it for sure (no need to parse a million others), else through the whole edit.
fn remove(config: &Config, catalog: &Catalog, email: &str, clock: Clock) -> Result<ExitCode> {
    let address = parse_address(email)?;
    let key = subscribers::address_key(&address);
    let guard = super::guard(config, catalog, clock)?;
    match catalog.with(|k| subscribers::patch::remove(&config.subscribers, k, &key))? {
        Some(true) => {
            say!("removed {address}");
            Ok(ExitCode::SUCCESS)
        }
        Some(false) => Err(Error::Usage(format!(
            "{address} is not in {}",
            config.subscribers.display()
        ))),
        None => {
            drop(guard);
            edit_one(config, catalog, email, clock, |editor, address| {
                editor.remove(address).then(|| format!("removed {address}"))
            })
        }
    }
}

fn edit_one(
    config: &Config,
    catalog: &Catalog,
    email: &str,
    clock: Clock,
    change: impl FnOnce(&mut Editor, &Address) -> Option<String>,
) -> Result<ExitCode> {
    let _guard = super::guard(config, catalog, clock)?;
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    let address = parse_address(email)?;
    match change(&mut editor, &address) {
        Some(done) => {
            editor.save()?;
            say!("{done}");
            Ok(ExitCode::SUCCESS)
        }
        None => Err(Error::Usage(format!(
            "{address} is not in {}",
            config.subscribers.display()
        ))),
    }
}

/// How `list` and `export` print entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A pretty JSON array, as `list --json` has always printed it.
    Json,
    /// The TOML fields as columns, so that an export imports back.
    Csv,
    /// Aligned columns for people.
    Table,
}

/// The entries `wanted` keeps, streamed: a million readers need no more memory than ten.
/// Each row goes to an unnamed temporary file as it is read, and reaches stdout only once
/// the whole list proved valid: a list with a mistake prints nothing and reports every
/// problem.
fn stream_out(
    path: &Path,
    catalog: &Catalog,
    wanted: &dyn Fn(&Subscriber) -> bool,
    shape: Shape,
) -> Result<ExitCode> {
    let temp_dir = std::env::temp_dir();
    let io = |e: std::io::Error| Error::io("write", &temp_dir, e);
    // Unlinked from the start (O_TMPFILE or at once), mode 0600: it holds addresses.
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut rows = Rows {
        out: std::io::BufWriter::new(&mut file),
        shape,
        count: 0,
        widths: TABLE_HEADER.map(str::len),
        entry: Vec::new(),
        failed: None,
    };
    let problems = catalog.with(|k| {
        subscribers::stream_hashed(path, k, &mut |s| {
            if wanted(&s) {
                rows.push(&s);
            }
        })
    })?;
    let widths = rows.finish().map_err(io)?;
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    std::io::Seek::rewind(&mut file).map_err(io)?;
    let stdout = &mut std::io::stdout().lock();
    let written = if shape == Shape::Table {
        print_aligned(std::io::BufReader::new(file), &widths, stdout)
    } else {
        std::io::copy(&mut file, stdout).map(drop)
    };
    written.map_err(|e| Error::io("write", Path::new("<stdout>"), e))?;
    Ok(ExitCode::SUCCESS)
}

const TABLE_HEADER: [&str; 5] = ["EMAIL", "NAME", "STATUS", "FORMAT", "CATEGORIES"];

/// Entries written one by one in their [`Shape`]; a table's cells go tab-separated, with
/// each column's width noted for [`print_aligned`].
struct Rows<W: Write> {
    out: W,
    shape: Shape,
    count: usize,
    widths: [usize; 5],
    /// The JSON of the entry being written.
    entry: Vec<u8>,
    /// The first write that failed; nothing more is written after it.
    failed: Option<std::io::Error>,
}

impl<W: Write> Rows<W> {
    fn push(&mut self, s: &Subscriber) {
        if self.failed.is_none() {
            if let Err(e) = self.write(s) {
                self.failed = Some(e);
            }
        }
    }

    fn write(&mut self, s: &Subscriber) -> std::io::Result<()> {
        match self.shape {
            Shape::Csv => {
                if self.count == 0 {
                    csv_line(
                        &mut self.out,
                        subscribers::FIELDS.iter().map(ToString::to_string),
                    )?;
                }
                csv_line(&mut self.out, csv_fields(s))?;
            }
            Shape::Json => {
                let lead = if self.count == 0 { "[\n  " } else { ",\n  " };
                self.out.write_all(lead.as_bytes())?;
                // Each entry indented one step more, as the array's element; one buffer
                // for all of them.
                self.entry.clear();
                serde_json::to_writer_pretty(&mut self.entry, s).map_err(std::io::Error::from)?;
                for (i, line) in self.entry.split(|b| *b == b'\n').enumerate() {
                    self.out.write_all(if i == 0 { b"" } else { b"\n  " })?;
                    self.out.write_all(line)?;
                }
            }
            Shape::Table => {
                let cells = table_cells(s);
                for (w, cell) in self.widths.iter_mut().zip(&cells) {
                    *w = (*w).max(cell.chars().count());
                }
                for (i, cell) in cells.iter().enumerate() {
                    let tab: &[u8] = if i == 0 { b"" } else { b"\t" };
                    self.out.write_all(tab)?;
                    self.out.write_all(cell.as_bytes())?;
                }
                self.out.write_all(b"\n")?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// The end of the array (or the header of an empty CSV), flushed; the table's widths.
    fn finish(mut self) -> std::io::Result<[usize; 5]> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        match (self.shape, self.count) {
            (Shape::Csv, 0) => {
                csv_line(
                    &mut self.out,
                    subscribers::FIELDS.iter().map(ToString::to_string),
                )?;
            }
            (Shape::Json, 0) => writeln!(self.out, "[]")?,
            (Shape::Json, _) => writeln!(self.out, "\n]")?,
            _ => {}
        }
        self.out.flush()?;
        Ok(self.widths)
    }
}

/// A reader as a table row: address, name, status, format, topics.
fn table_cells(s: &Subscriber) -> [String; 5] {
    // Tabs separate the cells in the temporary file: none may hold one.
    let clean = |text: String| text.replace(['\t', '\n'], " ");
    [
        s.email.to_string(),
        clean(s.name.clone().unwrap_or_default()),
        s.status.as_str().to_string(),
        format!("{:?}", s.format).to_lowercase(),
        clean(
            s.categories
                .as_ref()
                .map_or_else(|| "(all)".to_string(), |c| c.join(", ")),
        ),
    ]
}

/// The header and the rows of `rows` (tab-separated), each column padded to `widths`.
fn print_aligned(
    mut rows: impl std::io::BufRead,
    widths: &[usize; 5],
    out: &mut impl Write,
) -> std::io::Result<()> {
    // Written cell by cell: a million rows, no string built for each.
    let padded = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate() {
            if i < 4 {
                write!(out, "{cell:<w$}  ", w = widths[i])?;
            } else {
                out.write_all(cell.as_bytes())?;
            }
        }
        writeln!(out)
    };
    let mut out = std::io::BufWriter::new(out);
    padded(&mut out, &mut TABLE_HEADER.into_iter())?;
    let mut row = String::new();
    let mut count = 0;
    while rows.read_line(&mut row)? > 0 {
        let line = row.strip_suffix('\n').unwrap_or(&row);
        let line = line.strip_suffix('\r').unwrap_or(line);
        padded(&mut out, &mut line.split('\t'))?;
        row.clear();
        count += 1;
    }
    writeln!(out, "{count} subscribers")?;
    out.flush()
}

/// A subscriber's values in [`subscribers::FIELDS`] order.
fn csv_fields(s: &Subscriber) -> impl Iterator<Item = String> {
    [
        s.email.to_string(),
        s.name.clone().unwrap_or_default(),
        s.categories
            .as_ref()
            .map(|c| c.join(";"))
            .unwrap_or_default(),
        format!("{:?}", s.format).to_lowercase(),
        s.language.clone().unwrap_or_default(),
        s.status.as_str().to_string(),
        s.since.map(|d| d.to_string()).unwrap_or_default(),
        s.paused_until.map(|d| d.to_string()).unwrap_or_default(),
    ]
    .into_iter()
}

/// One CSV record (quoted where the csv crate would quote it).
fn csv_line(out: &mut impl Write, fields: impl Iterator<Item = String>) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(fields.collect::<Vec<_>>())
        .map_err(std::io::Error::other)?;
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    out.write_all(&bytes)
}

/// `subscribers import FILE`.
fn import(
    config: &Config,
    catalog: &Catalog,
    file: &Path,
    dry_run: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let _guard = super::guard(config, catalog, clock)?;
    // Streamed: who is there, as hashes; the new entries are appended in one write.
    let mut listed = catalog.with(|k| subscribers::Listed::read(&config.subscribers, k))?;
    let today = clock.start().with_timezone(&config.timezone).date_naive();
    let tombstones = Optouts::open(&config.state_dir, clock)?.forgotten()?;
    let forgotten = |address: &Address| {
        tombstones
            .at(&subscribers::address_key(address))
            .map(str::to_string)
    };
    let rows = subscribers::import(&mut listed, catalog, file, today, &forgotten)?;
    let (mut added, mut skipped) = (0usize, 0usize);
    for row in &rows {
        match row {
            Row::Added(what) => {
                added += 1;
                say!("added {what}");
            }
            Row::Skipped {
                line,
                email,
                reason,
            } => {
                skipped += 1;
                let email = if email.is_empty() {
                    String::new()
                } else {
                    format!(" {email}:")
                };
                say!("skipped {}:{line}:{email} {reason}", file.display());
            }
        }
    }
    if !dry_run && added > 0 {
        subscribers::patch::append(&config.subscribers, &listed.appended)?;
    }
    let mode = if dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    say!("{added} added, {skipped} skipped{mode}");
    Ok(ExitCode::SUCCESS)
}

/// `subscribers list --pending`: who asked to join and has not confirmed yet.
fn print_pending(config: &Config, json: bool, clock: Clock) -> Result<ExitCode> {
    let pending = if config.state_dir.join("optouts.sqlite").exists() {
        Optouts::open(&config.state_dir, clock)?.pending_joins()?
    } else {
        Vec::new()
    };
    if json {
        let rows: Vec<_> = pending
            .iter()
            .map(|(email, at)| serde_json::json!({ "email": email, "asked_at": at }))
            .collect();
        emit!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else if pending.is_empty() {
        say!("no request waits for its confirmation");
    } else {
        for (email, at) in &pending {
            emit!("{email}  asked {at}, not confirmed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
