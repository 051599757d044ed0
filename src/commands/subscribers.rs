//! `digestif subscribers …` and `digestif unsubscribe --token`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use lettre::Address;

use crate::cli::SubscribersCommand;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::optout::{self, Left, Readers};
use crate::site;
use crate::subscribers::{self, Catalog, Editor, NewSubscriber, Status, Subscriber};

pub(crate) fn run(
    config: &Path,
    command: SubscribersCommand,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let catalog = site::catalog(config);
    let path = &config.subscribers;
    match command {
        SubscribersCommand::List {
            category,
            status,
            json,
        } => {
            let list = catalog.with(|k| subscribers::load(path, k))?;
            let status = status.as_deref().and_then(Status::parse);
            let shown = list.iter().filter(|s| {
                status.is_none_or(|st| s.status == st)
                    && category
                        .as_ref()
                        .is_none_or(|c| s.categories.as_ref().is_none_or(|cs| cs.contains(c)))
            });
            print_list(shown, json)
        }
        SubscribersCommand::Export { csv } => {
            let list = catalog.with(|k| subscribers::load(path, k))?;
            if csv {
                write_csv(&list)
            } else {
                print_list(list.iter(), true)
            }
        }
        SubscribersCommand::Add {
            email,
            name,
            categories,
            format,
            language,
            resubscribe,
        } => {
            let _guard = optout::Guard::acquire(config, &catalog)?;
            let mut editor = catalog.with(|k| Editor::open(path, k))?;
            let address = parse_address(&email)?;
            if let Some(unknown) = categories.iter().find(|c| !catalog.categories.contains(c)) {
                return Err(Error::Usage(format!(
                    "--category {unknown:?} is not a category of the newsletter; known categories: {}",
                    catalog.categories.join(", ")
                )));
            }
            if let Some(l) = &language {
                if !crate::templates::has_language(&config.templates_dir, l) {
                    return Err(Error::Usage(format!(
                        "--language {l:?}: no wording for it; expected fr or en"
                    )));
                }
            }
            match editor.find(&address).cloned() {
                Some(existing) if existing.status != Status::Active && resubscribe => {
                    editor.set_status(&address, Status::Active);
                    editor.save()?;
                    say!(
                        "resubscribed {} ({} line {})",
                        existing.email,
                        path.display(),
                        existing.line
                    );
                }
                Some(existing) if existing.status != Status::Active => {
                    return Err(Error::Usage(format!(
                        "{} {} earlier ({} line {}): add --resubscribe if they asked to come back",
                        existing.email,
                        existing.status.as_str(),
                        path.display(),
                        existing.line
                    )))
                }
                Some(existing) => {
                    return Err(Error::Usage(format!(
                        "{} is already subscribed ({} line {})",
                        existing.email,
                        path.display(),
                        existing.line
                    )))
                }
                None => {
                    let since = Some(now.with_timezone(&config.timezone).date_naive());
                    let new = NewSubscriber {
                        name,
                        categories,
                        format: format.map(Into::into),
                        language,
                        since,
                    };
                    editor.add(&new, address.clone());
                    editor.save()?;
                    say!("added {address}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { email } => {
            edit_one(config, &catalog, &email, |editor, address| {
                editor.remove(address).then(|| format!("removed {address}"))
            })
        }
        SubscribersCommand::Unsubscribe { email } => {
            // Never waits for a running send: recorded at once, written when free.
            let address = parse_address(&email)?;
            let key = subscribers::address_key(&address);
            let readers = Readers::of(config, &catalog, std::slice::from_ref(&key))?;
            match optout::leave(
                config,
                &catalog,
                &readers,
                &key,
                Status::Unsubscribed,
                "cli",
            )? {
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
        SubscribersCommand::Import { file, dry_run } => {
            import(config, &catalog, &file, dry_run, now)
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
fn edit_one(
    config: &Config,
    catalog: &Catalog,
    email: &str,
    change: impl FnOnce(&mut Editor, &Address) -> Option<String>,
) -> Result<ExitCode> {
    let _guard = optout::Guard::acquire(config, catalog)?;
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

fn print_list<'a>(
    subscribers: impl Iterator<Item = &'a Subscriber>,
    json: bool,
) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = if json {
        let all: Vec<&Subscriber> = subscribers.collect();
        serde_json::to_writer_pretty(&mut out, &all)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else {
        print_table(&mut out, subscribers)
    };
    result
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("write", Path::new("<stdout>"), e))?;
    Ok(ExitCode::SUCCESS)
}

fn print_table<'a>(
    out: &mut impl Write,
    subscribers: impl Iterator<Item = &'a Subscriber>,
) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = subscribers
        .map(|s| {
            [
                s.email.to_string(),
                s.name.clone().unwrap_or_default(),
                s.status.as_str().to_string(),
                format!("{:?}", s.format).to_lowercase(),
                s.categories
                    .as_ref()
                    .map_or_else(|| "(all)".to_string(), |c| c.join(", ")),
            ]
        })
        .collect();
    let header = ["EMAIL", "NAME", "STATUS", "FORMAT", "CATEGORIES"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        l
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(
            out,
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4]])
        )?;
    }
    writeln!(out, "{} subscribers", rows.len())
}

fn write_csv(subscribers: &[Subscriber]) -> Result<ExitCode> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let io = |e: csv::Error| Error::io("write", Path::new("<stdout>"), e.into());
    // Same columns as the TOML fields, so an export imports back.
    w.write_record(subscribers::FIELDS).map_err(io)?;
    for s in subscribers {
        w.write_record([
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
        ])
        .map_err(io)?;
    }
    w.flush()
        .map_err(|e| Error::io("write", Path::new("<stdout>"), e))?;
    Ok(ExitCode::SUCCESS)
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

fn import(
    config: &Config,
    catalog: &Catalog,
    file: &Path,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let _guard = optout::Guard::acquire(config, catalog)?;
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
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
    let (mut added, mut skipped) = (0usize, 0usize);
    let today = now.with_timezone(&config.timezone).date_naive();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                say!("skipped {}:{line}: unreadable row ({e})", file.display());
                skipped += 1;
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let get = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let raw_email = get(Some(email_col)).unwrap_or("");
        match import_row(&mut editor, catalog, &columns, &get, raw_email, today) {
            Ok(Some(what)) => {
                added += 1;
                say!("added {what}");
            }
            Ok(None) => {}
            Err(reason) => {
                skipped += 1;
                say!("skipped {}:{line}: {raw_email}: {reason}", file.display());
            }
        }
    }
    if !dry_run && added > 0 {
        editor.save()?;
    }
    let mode = if dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    say!("{added} added, {skipped} skipped{mode}");
    Ok(ExitCode::SUCCESS)
}

/// `Ok(Some(description))` when added, `Err(reason)` when skipped.
fn import_row<'r>(
    editor: &mut Editor,
    catalog: &Catalog,
    columns: &Columns,
    get: &dyn Fn(Option<usize>) -> Option<&'r str>,
    raw_email: &str,
    today: chrono::NaiveDate,
) -> std::result::Result<Option<String>, String> {
    let address: Address = raw_email
        .parse()
        .map_err(|e| format!("not a valid address ({e})"))?;
    if let Some(existing) = editor.find(&address) {
        return Err(match existing.status {
            Status::Unsubscribed => format!(
                "unsubscribed earlier (line {}), not re-subscribed",
                existing.line
            ),
            Status::Bounced => format!(
                "bounced earlier (line {}), not re-subscribed",
                existing.line
            ),
            Status::Active => format!("already subscribed (line {})", existing.line),
        });
    }
    let name = get(columns.name).map(str::to_string).or_else(|| {
        let full = [get(columns.first_name), get(columns.last_name)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!full.is_empty()).then_some(full)
    });
    let categories: Vec<String> = get(columns.categories)
        .map(|c| {
            c.split([';', ',', '|'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(unknown) = categories.iter().find(|c| !catalog.categories.contains(c)) {
        return Err(format!("unknown category {unknown:?}"));
    }
    let format = match get(columns.format).map(str::to_lowercase).as_deref() {
        None | Some("html") => None,
        Some("text" | "plain" | "plaintext") => Some(subscribers::Format::Text),
        Some(other) => return Err(format!("unknown format {other:?} (expected html or text)")),
    };
    // listmonk: enabled / disabled / blocklisted; Mailchimp: subscribed / unsubscribed / cleaned.
    let unsubscribed = matches!(
        get(columns.status).map(str::to_lowercase).as_deref(),
        Some("unsubscribed" | "blocklisted" | "blacklisted" | "cleaned" | "disabled")
    );
    let new = NewSubscriber {
        name,
        categories,
        format,
        language: None,
        since: Some(today),
    };
    editor.add(&new, address.clone());
    if unsubscribed {
        editor.set_status(&address, Status::Unsubscribed);
        return Ok(Some(format!(
            "{address} (as unsubscribed, as in the export)"
        )));
    }
    Ok(Some(address.to_string()))
}
