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
