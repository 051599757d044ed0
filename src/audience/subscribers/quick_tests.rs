//! Tests of [`super`]: on every block it reads, the quick reading agrees with `toml_edit`.
use std::path::Path;

use super::*;
use crate::audience::subscribers::parse::parse_full;

fn with_known<T>(f: impl FnOnce(&Known<'_>) -> T) -> T {
    let categories = vec!["Marketing".to_string(), "Relation client".to_string()];
    f(&Known {
        categories: &categories,
        languages: &|l| l == "fr" || l == "en",
    })
}

/// The quick reading of `text`, checked against the full one when it answers.
fn agreed(text: &str) -> Option<Vec<Subscriber>> {
    with_known(|known| {
        let quick = entries(known, text, 7)?;
        let full = parse_full(Path::new("s.toml"), known, text, 7);
        assert!(
            full.problems.is_empty(),
            "quick accepted what toml_edit refuses: {text:?}\n{:?}",
            full.problems
        );
        let full: Vec<Subscriber> = full.subscribers.into_iter().map(|(_, s)| s).collect();
        assert_eq!(quick, full, "{text:?}");
        Some(quick)
    })
}

#[test]
fn the_plain_shapes_of_a_list_are_read_quickly_and_alike() {
    for text in [
        "[[subscriber]]\nemail = \"ada@example.org\"\n\n",
        "# Ada, from the fair\n[[subscriber]]\nemail = \"ada@example.org\"\nname = \"Ada  L.\"\n",
        "[[subscriber]] # first\r\nemail='ada@example.org' # hers\r\ncategories = [ \"Marketing\", 'Relation client', ]\r\n",
        "  [[subscriber]]\n\temail\t=\t\"  Ada@Exämple.org \"\nformat = \"text\"\nstatus = \"unsubscribed\"\nlanguage = \"en\"\nsince = 2011-12-01\npaused_until = 2012-02-29\ncategories = []\n",
        "# only a comment before the first entry\n\n",
        "",
    ] {
        assert!(agreed(text).is_some(), "not read quickly: {text:?}");
    }
    let read = agreed("# c\n\n[[subscriber]]\nemail = \"a@example.org\"\n").unwrap();
    assert_eq!(read[0].line, 9, "the header's line in the file");
}

#[test]
fn what_only_toml_edit_can_judge_is_left_to_it() {
    for text in [
        "[[subscriber]]\nemail = \"a\\u0040example.org\"\n", // an escape
        "[[subscriber]]\nemail = \"a@example.org\"\nemail = \"b@example.org\"\n", // repeated key
        "[[subscriber]]\nemial = \"a@example.org\"\n",       // unknown key
        "[[subscriber]]\n\"email\" = \"a@example.org\"\n",   // quoted key
        "[[subscriber]]\nemail = \"a@example.org\"\nsince = 2011-12-01T10:00:00\n",
        "[[subscriber]]\nemail = \"a@example.org\"\nsince = 2011-12-01 10:00:00\n",
        "[[subscriber]]\nemail = \"a@example.org\"\nsince = 2011-02-30\n",
        "[[subscriber]]\nemail = \"a@example.org\"\ncategories = [\n\"Marketing\"]\n",
        "[[subscriber]]\nemail = \"a@example.org\"\ncategories = [\"Sport\"]\n",
        "[[subscriber]]\nemail = \"a@example.org\"\nname = \"x\u{1}y\"\n",
        "[[subscriber]]\nemail = \"a@example.org\"\u{a0}\n",
        "[[subscriber]]\nemail = \"a@\"\n",
        "[[subscriber]]\nname = \"Nobody\"\n",
        "email = \"root@example.org\"\n[[subscriber]]\nemail = \"a@example.org\"\n",
        "[[ subscriber ]]\nemail = \"a@example.org\"\n",
        "[[subscriber]]\nemail = \"a@example.org\"\rname = \"x\"\n",
        "[[subscriber]]\nemail = \"\"\"a@example.org\"\"\"\n",
        "[[subscriber]]\nemail = \"a@example.org\"\nformat = \"pdf\"\n",
        "[[subscriber]]\nemail = \"a@example.org\"\nlanguage = \"de\"\n",
    ] {
        assert!(agreed(text).is_none(), "read quickly: {text:?}");
    }
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from[(self.0 % from.len() as u64) as usize]
    }
}

const HEADERS: &[&str] = &[
    "[[subscriber]]",
    "  [[subscriber]]",
    "[[subscriber]] # x",
    "[[subscriber]]#",
    "[[subscriber]] x",
    "[[ subscriber ]]",
    "[subscriber]",
];
const KEYS: &[&str] = &[
    "email",
    "email",
    "name",
    "categories",
    "format",
    "status",
    "language",
    "since",
    "paused_until",
    "emial",
    "\"email\"",
    "a.b",
    "Email",
    "",
];
const SEPARATORS: &[&str] = &[" = ", "=", "\t=\t", " == ", " : ", "= "];
const VALUES: &[&str] = &[
    "\"reader@example.org\"",
    "'reader@example.org'",
    "\" Reader@Exämple.org \"",
    "\"reader@example.org",
    "\"a@\"",
    "\"\"",
    "''",
    "\"\"\"x\"\"\"",
    "\"tab\there\"",
    "\"back\\\\slash\"",
    "\"caf\\u00e9\"",
    "\"x\u{7f}\"",
    "\"x\u{1b}y\"",
    "\"Ada  \u{2003} Lovelace\"",
    "'single \"quoted\"'",
    "\"html\"",
    "\"text\"",
    "\"unsubscribed\"",
    "\"bounced\"",
    "\"fr\"",
    "\"de\"",
    "[\"Marketing\"]",
    "[ 'Relation client' , \"Marketing\" , ]",
    "[]",
    "[,]",
    "[\"Sport\"]",
    "[\"Marketing\" \"x\"]",
    "[[\"Marketing\"]]",
    "[1]",
    "2011-12-01",
    "2012-02-29",
    "2011-02-29",
    "2011-13-01",
    "2011-12-01T10:00:00Z",
    "2011-12-01 10:00",
    "20111201",
    "true",
    "42",
    "{ a = 1 }",
];
const ENDS: &[&str] = &[
    "", "", " ", "\t# note", " # é", "#\u{1}", " x", "\r", "\u{a0}",
];
const BREAKS: &[&str] = &["\n", "\n", "\r\n"];

/// A line that is (nearly always) right for `key`, in one of the shapes lists use.
fn good_line(rng: &mut Rng, key: &str) -> String {
    let value = match key {
        "email" => rng.pick(&["\"reader@example.org\"", "' Ada@Exämple.org '", "\"a@\""]),
        "name" => rng.pick(&["\"Ada  Lovelace\"", "'Zoé \u{2003} M.'", "\"\""]),
        "categories" => rng.pick(&["[\"Marketing\"]", "[ 'Relation client', ]", "[]"]),
        "format" => rng.pick(&["\"text\"", "\"html\"", "'text'"]),
        "status" => rng.pick(&["\"unsubscribed\"", "\"bounced\"", "\"active\""]),
        "language" => rng.pick(&["\"fr\"", "'en'"]),
        _ => rng.pick(&["2011-12-01", "2012-02-29", "2011-01-01"]),
    };
    let (sep, end) = (
        rng.pick(&[" = ", "=", "\t= "]),
        rng.pick(&["", "", " # ok"]),
    );
    format!("{key}{sep}{value}{end}{}", rng.pick(BREAKS))
}

/// A line of any of the shapes above, right or wrong.
fn any_line(rng: &mut Rng) -> String {
    [KEYS, SEPARATORS, VALUES, ENDS, BREAKS]
        .iter()
        .map(|part| rng.pick(part))
        .collect()
}

fn random_block(rng: &mut Rng) -> String {
    let mut text = String::new();
    if rng.pick(&["", "", "c"]) == "c" {
        text.push_str("# a reader\n");
    }
    let odd = rng.pick(HEADERS);
    text.push_str(rng.pick(&[HEADERS[0], HEADERS[0], HEADERS[0], odd]));
    text.push_str(rng.pick(BREAKS));
    let mut keys = vec!["email"];
    for key in &KEYS[2..9] {
        if rng.pick(&["", "y"]) == "y" {
            keys.push(key);
        }
    }
    for key in keys {
        let line = match rng.pick(&["good", "good", "good", "good", "good", "any"]) {
            "good" => good_line(rng, key),
            _ => any_line(rng),
        };
        text.push_str(&line);
        if rng.pick(&["", "", "", "\n"]) == "\n" {
            text.push('\n');
        }
    }
    text
}

#[test]
fn on_many_generated_blocks_the_quick_reading_agrees_or_steps_aside() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut quick = 0;
    for _ in 0..30_000 {
        let block = random_block(&mut rng);
        if agreed(&block).is_some_and(|s| !s.is_empty()) {
            quick += 1;
        }
    }
    // Enough blocks were read quickly for the agreement to mean something.
    assert!(quick > 5_000, "only {quick} blocks read quickly");
}
