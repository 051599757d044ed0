//! Tests of [`super`]: every problem found, with its line, whole or streamed.
use super::*;
use crate::audience::subscribers::{Format, Status};
use chrono::NaiveDate;

fn categories() -> Vec<String> {
    vec!["Marketing".into(), "Relation client".into()]
}

fn parse_str(src: &str) -> Result<Vec<Subscriber>, Vec<Diagnostic>> {
    let cats = categories();
    let known = Known {
        categories: &cats,
        languages: &|l| l == "fr" || l == "en",
    };
    parse(Path::new("s.toml"), src, &known)
}

fn messages(src: &str) -> Vec<String> {
    parse_str(src)
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn can_parse_every_field() {
    let list = parse_str(
        "[[subscriber]]\nemail = \"a@example.org\"\nname = \"A\"\ncategories = [\"Marketing\"]\n\
         format = \"text\"\nlanguage = \"en\"\nstatus = \"unsubscribed\"\nsince = 2011-12-01\n",
    )
    .unwrap();
    let s = &list[0];
    assert_eq!(s.format, Format::Text);
    assert_eq!(s.status, Status::Unsubscribed);
    assert_eq!(s.since, NaiveDate::from_ymd_opt(2011, 12, 1));
    assert_eq!(s.line, 1);
}

#[test]
fn reports_every_problem_with_its_line() {
    let found = messages(
        "[[subscriber]]\nemail = \"not an address\"\n\n[[subscriber]]\nemail = \"b@example.org\"\nformat = \"pdf\"\n\
         categories = [\"Sport\"]\nstatut = \"active\"\n\n[[subscriber]]\nname = \"no email\"\n",
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(found[0].starts_with("s.toml:2:9: `email`: \"not an address\" is not a valid address"));
    assert_eq!(
        found[1],
        "s.toml:6:10: `format`: expected \"html\" or \"text\", found \"pdf\""
    );
    assert_eq!(found[2], "s.toml:7:15: `categories`: unknown category \"Sport\"; known categories: `Marketing`, `Relation client`");
    assert_eq!(found[3], "s.toml:8:1: unknown field `statut`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`, `paused_until`");
    assert_eq!(found[4], "s.toml:10: missing field `email`");
}

#[test]
fn block_by_block_and_whole_file_parsing_agree() {
    let src = "# list\nstray = 1\n\n[[subscriber]]\nemail = \"a@example.org\"\n[[subscriber]] # two\nemail = \"b@example.org\"\nnmae = 1\n";
    let expected = [
        "s.toml:2:1: unknown key `stray`: expected [[subscriber]] tables",
        "s.toml:8:1: unknown field `nmae`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`, `paused_until`",
    ];
    assert_eq!(messages(src), expected);
    // A multi-line string anywhere forces the whole-file path: same diagnostics.
    let whole = src.replace("# list", "# list '''");
    assert_eq!(messages(&whole), expected);
    let ok =
        parse_str("[[subscriber]]\nemail = \"a@example.org\"\nname = \"\"\"Multi\nline\"\"\"\n")
            .unwrap();
    assert_eq!(ok[0].name.as_deref(), Some("Multi line"));
}

#[test]
fn streaming_and_whole_file_validation_agree() {
    let files = [
        "# list\n\n[[subscriber]]\nemail = \"a@example.org\"\n\n# about b\n[[subscriber]] # two\nemail = \"b@example.org\"\nnmae = 1\n[[subscriber]]\nemail = \"A@Example.org\"\nemail2 = 1\n[[subscriber]]\nemail = \"a@EXAMPLE.org\"\n",
        "[[subscriber]]\nemail = \"a@example.org\"\nname = '''x\n[[subscriber]]'''\n[[subscriber]]\nemail = \"bad\"\n",
        "stray = 1\n[[subscriber]]\nemail = \"ok@example.org\"\ncategories = [\"Sport\"]\n",
    ];
    let cats = categories();
    let known = Known {
        categories: &cats,
        languages: &|_| true,
    };
    for text in files {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        let whole = parse(&path, text, &known);
        let mut streamed = Vec::new();
        let problems = stream_in_memory(&path, &known, &mut |s| streamed.push(s)).unwrap();
        match whole {
            Ok(subs) => {
                assert!(problems.is_empty(), "{problems:?}");
                assert_eq!(
                    subs.iter().map(|s| (s.key(), s.line)).collect::<Vec<_>>(),
                    streamed
                        .iter()
                        .map(|s| (s.key(), s.line))
                        .collect::<Vec<_>>()
                );
            }
            Err(expected) => assert_eq!(problems, expected, "{text}"),
        }
    }
}

#[test]
fn duplicates_compare_domains_case_insensitively_and_as_punycode() {
    let found = messages(
        "[[subscriber]]\nemail = \"Jo@ÜNÏCODE.example\"\n[[subscriber]]\nemail = \"Jo@xn--ncode-cta3g.example\"\n\
         [[subscriber]]\nemail = \"jo@xn--ncode-cta3g.example\"\n",
    );
    assert_eq!(
        found,
        ["s.toml:3: duplicate subscriber Jo@xn--ncode-cta3g.example: already on line 1"]
    );
}

#[test]
fn a_long_list_validated_on_two_threads_comes_back_in_order_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let n = 3 * BATCH + 17;
    let mut text = String::new();
    for i in 0..n {
        let email = match i {
            5000 => "reader10@example.org".to_string(), // a duplicate, in another batch
            9000 => "broken".to_string(),
            _ => format!("reader{i}@example.org"),
        };
        text.push_str(&format!("[[subscriber]]\nemail = \"{email}\"\n\n"));
    }
    std::fs::write(&path, &text).unwrap();
    let cats = categories();
    let known = Known {
        categories: &cats,
        languages: &|_| true,
    };
    let mut got = Vec::new();
    let problems = stream_in_memory(&path, &known, &mut |s| got.push((s.line, s.place.0))).unwrap();
    assert_eq!(got.len(), n - 2);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "file order");
    assert!(got.iter().all(|(line, block)| *line == 3 * block + 1));
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains(":15001:") && problems[0].contains("already on line 31"),
        "{problems:?}"
    );
    assert!(problems[1].contains(":27002:"), "{problems:?}");
}
