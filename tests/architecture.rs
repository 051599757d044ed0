//! The module layering of ARCHITECTURE.md, checked on the source: a module may use only
//! the modules listed before it, so no stage reaches up into one that is built on it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every module of `src/`, lowest first (the order of ARCHITECTURE.md's module list).
const LAYERS: &[&str] = &[
    "error",
    "clock",
    "week",
    "kind",
    "text",
    "toml_input",
    "fsutil",
    "store",
    "lock",
    "config",
    "sources",
    "templates",
    "digest",
    "render",
    "audience",
    "site",
    "archive",
    "schedule",
    "mail",
    "delivery",
    "web",
    "cli",
    "commands",
    "lib",
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The crate modules `text` names: `crate::x::…` paths and `use crate::{x, y::z}` groups.
fn crate_modules_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: after `{` and after each `,` at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start => {
                        used.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(ident(rest));
        }
    }
    used.retain(|m| !m.is_empty() && LAYERS.contains(&m.as_str()));
    used
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" {
            continue;
        }
        let Some(rank) = LAYERS.iter().position(|m| *m == module) else {
            panic!(
                "{}: module {module} is not in LAYERS (and ARCHITECTURE.md)",
                file.display()
            );
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in crate_modules_used(&text) {
            let used_rank = LAYERS.iter().position(|m| *m == used).unwrap();
            if used_rank > rank {
                upward.push(format!("{}: {module} uses {used}", file.display()));
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn the_import_scanner_sees_groups_and_paths() {
    let found = crate_modules_used(
        "use crate::{fsutil, mail::{Composer, Unsubscribe}};\nlet w = crate::digest::weeks(x);",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["digest", "fsutil", "mail"]
    );
}

/// The text of `file` without its test code: `#[cfg(test)]` modules (which come last in a
/// file) and files that hold only tests.
fn code_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let is_test_file = relative.file_name().is_some_and(|n| n == "tests.rs")
        || relative.components().any(|c| c.as_os_str() == "tests");
    if is_test_file {
        return None;
    }
    let text = std::fs::read_to_string(file).unwrap();
    Some(match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    })
}

/// Files of `src/` (test code aside) whose module is not in `allowed` and that contain one
/// of `needles`, as `path: needle` lines.
fn offenders(allowed: &[&str], needles: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        if allowed.contains(&module_of(&src, file).as_str()) {
            continue;
        }
        let Some(code) = code_of(&src, file) else {
            continue;
        };
        for needle in needles {
            if code.contains(needle) {
                found.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    found
}

#[test]
fn only_the_commands_read_the_clock() {
    // `clock` is where the commands make the one clock they hand down.
    let found = offenders(
        &["commands", "main", "clock"],
        &["Utc::now", "Local::now", "SystemTime::now"],
    );
    assert!(
        found.is_empty(),
        "the clock read below the commands:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_commands_print() {
    let found = offenders(
        &["commands", "main"],
        &[
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "anstream::",
            "std::io::stdout",
            "std::io::stderr",
        ],
    );
    assert!(
        found.is_empty(),
        "printing below the commands:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_web_room_goes_through_the_audience_never_to_the_list_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    assert!(!files.is_empty(), "no src/web");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for needle in [
            "std::fs",
            "subscribers::patch",
            "Editor",
            "config.subscribers",
            "write_atomic",
        ] {
            if text.contains(needle) {
                found.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "web touches the list itself:\n{}",
        found.join("\n")
    );
}

#[test]
fn sources_never_reach_the_audience_or_delivery() {
    // Posts are read the same way whoever reads the list or sends.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src.join("sources"), &mut files);
    let mut found = Vec::new();
    for file in &files {
        let used = crate_modules_used(&std::fs::read_to_string(file).unwrap());
        for room in ["audience", "delivery", "mail", "render", "web", "commands"] {
            if used.contains(room) {
                found.push(format!("{}: uses {room}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
