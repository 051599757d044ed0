//! The config parsed from text: defaults, every problem at once, in file order.

use std::path::{Path, PathBuf};

use super::*;

const MINIMAL: &str = r#"
[newsletter]
name = "Veille"
base_url = "https://veille.example.org/"
timezone = "Europe/Paris"
language = "fr"
[sender]
from = "Veille <veille@example.org>"
"#;

#[test]
fn can_parse_a_minimal_config_with_defaults() {
    let c = Config::parse(Path::new("d.toml"), MINIMAL).unwrap();
    assert_eq!(c.timezone, chrono_tz::Europe::Paris);
    assert_eq!(c.posts_dir, PathBuf::from("posts"));
    assert_eq!(c.sender.list_id, "example.org");
    assert_eq!(c.smtp.port(), 587);
}

#[test]
fn site_and_archive_urls_are_folders_even_without_a_trailing_slash() {
    let src = MINIMAL
        .replace("https://veille.example.org/", "https://example.org/veille")
        .replace(
            "language = \"fr\"",
            "language = \"fr\"\narchive_url = \"https://example.org/lettre\"",
        );
    let c = Config::parse(Path::new("d.toml"), &src).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.base_url.as_str(), "https://example.org/veille/");
    assert_eq!(
        c.archive_url
            .unwrap()
            .join("2011-W52.html")
            .unwrap()
            .as_str(),
        "https://example.org/lettre/2011-W52.html"
    );
}

#[test]
fn errors_on_unknown_key_with_line_and_expected_keys() {
    let src = MINIMAL.replace("language = \"fr\"", "langage = \"fr\"");
    let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
    assert_eq!(err.len(), 1);
    let text = err[0].to_string();
    assert!(
        text.starts_with("d.toml:6:1: unknown field `langage`, expected one of"),
        "{text}"
    );
}

#[test]
fn reports_every_semantic_problem_at_once() {
    let src = MINIMAL
        .replace("Europe/Paris", "Europe/Pariss")
        .replace("https://veille.example.org/", "not a url")
        .replace("Veille <veille@example.org>", "nobody");
    let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
    let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("d.toml:4:12: newsletter.base_url"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("d.toml:5:12: newsletter.timezone: unknown time zone"));
    assert_eq!(
        err[1].help.as_deref(),
        Some("did you mean \"Europe/Paris\"?")
    );
    assert_eq!(
        err[1].excerpt.as_ref().unwrap().1,
        "\"Europe/Pariss\"".len()
    );
    assert!(lines[2].starts_with("d.toml:8:8: sender.from"));
}

#[test]
fn reports_typos_wrong_types_and_bad_values_together_in_file_order() {
    let src = MINIMAL
        .replace("timezone = ", "timezon = ")
        .replace("Europe/Paris", "Europe/Pariss")
        .replace("language = \"fr\"", "langage = \"fr\"")
        .replace("[sender]", "[sender]\nreply_to = 7")
        + "[smtp]\nprot = 25\nconcurency = 2\n";
    let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
    let lines: Vec<String> = err
        .iter()
        .map(|d| format!("{d} | {}", d.help.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines[0].starts_with("d.toml:5:1: unknown field `timezon`"),
        "{lines:#?}"
    );
    assert!(lines[0].ends_with("did you mean `timezone`?"));
    assert!(lines[1].starts_with("d.toml:6:1: unknown field `langage`"));
    assert!(
        lines[2].starts_with("d.toml:8:12: invalid type: integer `7`"),
        "{lines:#?}"
    );
    assert!(lines[3].ends_with("did you mean `port`?"));
    assert!(lines[4].ends_with("did you mean `concurrency`?"));
}

#[test]
fn errors_on_unknown_subject_placeholder() {
    let src = MINIMAL.replace(
        "language = \"fr\"",
        "language = \"fr\"\nsubject = \"{nom}\"",
    );
    let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
    assert!(
        err[0].message.contains("unknown placeholder {nom}"),
        "{err:?}"
    );
}
