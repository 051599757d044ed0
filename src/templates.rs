//! The editable look and wording: `templates/style.css`, `templates/media.css` and
//! `templates/strings/<language>.toml`.
//!
//! The binary embeds the defaults, so it works with no `templates/` folder; a file in the
//! configured `templates_dir` replaces the stylesheet, or overrides wording key by key.

use std::path::Path;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::error::{Diagnostic, Error, Result};
use crate::text::fill_placeholders;

const STYLE_CSS: &str = include_str!("../templates/style.css");
/// How errors name the embedded stylesheet.
const BUILT_IN_STYLE: &str = "templates/style.css (built in)";
const MEDIA_CSS: &str = include_str!("../templates/media.css");
const EMBEDDED_STRINGS: &[(&str, &str)] = &[
    ("fr", include_str!("../templates/strings/fr.toml")),
    ("en", include_str!("../templates/strings/en.toml")),
];

/// Fixed wording of one language. See `templates/strings/en.toml` for each key's role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strings {
    pub months: [String; 12],
    pub weekdays: [String; 7],
    pub first_of_month: String,
    pub date: String,
    pub post_date: String,
    pub week_range: String,
    pub lead_and_more_one: String,
    pub lead_and_more_other: String,
    pub week_range_same_year: String,
    pub week_range_same_month: String,
    pub contents: String,
    pub post_count_one: String,
    pub post_count_other: String,
    pub preheader: String,
    pub read_more: String,
    pub read_more_no_source: String,
    pub greeting: String,
    pub greeting_anonymous: String,
    pub footer_why: String,
    pub unsubscribe: String,
    pub links: String,
    pub view_online: String,
    pub text_unsubscribe: String,
    pub text_view_online: String,
    pub more_posts_one: String,
    pub more_posts_other: String,
    pub archive_title: String,
    pub archive_all: String,
    pub archive_feed: String,
    pub preferences: String,
    pub text_preferences: String,
    pub leave_title: String,
    pub leave_question: String,
    pub leave_button: String,
    pub leave_done: String,
    pub leave_already: String,
    pub leave_invalid: String,
    pub join_title: String,
    pub join_email: String,
    pub join_name: String,
    pub join_categories: String,
    pub join_format: String,
    pub join_format_html: String,
    pub join_format_text: String,
    pub join_button: String,
    pub join_check_inbox: String,
    pub join_invalid_email: String,
    pub join_busy: String,
    pub join_mail_subject: String,
    pub join_mail_text: String,
    pub join_confirm_question: String,
    pub join_confirm_button: String,
    pub join_done: String,
    pub join_invalid: String,
    pub prefs_title: String,
    pub prefs_intro: String,
    pub prefs_categories: String,
    pub prefs_language: String,
    pub prefs_pause: String,
    pub prefs_pause_none: String,
    pub prefs_pause_weeks: String,
    pub prefs_paused: String,
    pub prefs_save: String,
    pub prefs_saved: String,
    pub prefs_back: String,
    pub prefs_leave: String,
}

impl Strings {
    fn day(&self, date: NaiveDate) -> String {
        if date.day() == 1 && !self.first_of_month.is_empty() {
            self.first_of_month.clone()
        } else {
            date.day().to_string()
        }
    }

    fn month(&self, date: NaiveDate) -> &str {
        &self.months[date.month0() as usize]
    }

    /// "26 décembre 2011" / "December 26, 2011".
    pub fn date(&self, date: NaiveDate) -> String {
        fill_placeholders(
            &self.date,
            &[
                ("day", &self.day(date)),
                ("month", self.month(date)),
                ("year", &date.year().to_string()),
            ],
        )
    }

    /// "lundi 26 décembre" / "Monday, December 26".
    pub fn post_date(&self, date: NaiveDate) -> String {
        let weekday = &self.weekdays[date.weekday().num_days_from_monday() as usize];
        fill_placeholders(
            &self.post_date,
            &[
                ("weekday", weekday),
                ("day", &self.day(date)),
                ("month", self.month(date)),
                ("year", &date.year().to_string()),
            ],
        )
    }

    /// "Semaine du 5 au 11 décembre 2011", "Semaine du 28 novembre au 4 décembre 2011",
    /// "Semaine du 26 décembre 2011 au 1er janvier 2012": what both ends share is written
    /// once.
    pub fn week_range(&self, monday: NaiveDate, sunday: NaiveDate) -> String {
        let template = if monday.year() != sunday.year() {
            &self.week_range
        } else if monday.month() != sunday.month() {
            &self.week_range_same_year
        } else {
            &self.week_range_same_month
        };
        fill_placeholders(
            template,
            &[
                ("start", &self.date(monday)),
                ("end", &self.date(sunday)),
                ("start_day", &self.day(monday)),
                ("start_month", self.month(monday)),
                ("end_day", &self.day(sunday)),
                ("end_month", self.month(sunday)),
                ("year", &sunday.year().to_string()),
            ],
        )
    }

    /// The subject's `{lead_and_more}`: "Titre", "Titre et 1 autre article",
    /// "Titre et 5 autres articles".
    pub fn lead_and_more(&self, lead: &str, others: usize) -> String {
        let template = match others {
            0 => return lead.to_string(),
            1 => &self.lead_and_more_one,
            _ => &self.lead_and_more_other,
        };
        fill_placeholders(template, &[("lead", lead), ("count", &others.to_string())])
    }

    /// "1 article" / "3 articles".
    pub fn post_count(&self, count: usize) -> String {
        let template = if count == 1 {
            &self.post_count_one
        } else {
            &self.post_count_other
        };
        fill_placeholders(template, &[("count", &count.to_string())])
    }

    /// "12 autres articles sur le site".
    pub fn more_posts(&self, count: usize) -> String {
        let template = if count == 1 {
            &self.more_posts_one
        } else {
            &self.more_posts_other
        };
        fill_placeholders(template, &[("count", &count.to_string())])
    }

    pub fn read_more(&self, source: Option<&str>) -> String {
        match source {
            Some(source) => fill_placeholders(&self.read_more, &[("source", source)]),
            None => self.read_more_no_source.clone(),
        }
    }
}

/// Everything the renderer takes from `templates/`.
#[derive(Debug, Clone)]
pub struct Templates {
    pub language: String,
    pub strings: Strings,
    /// Inlined into `style` attributes.
    pub style_css: String,
    /// Where `style_css` came from, for errors.
    pub style_file: String,
    /// Kept in a `<style>` block (media queries, dark mode).
    pub media_css: String,
}

impl Templates {
    /// Embedded defaults for `language`, overridden by files in `dir` when present.
    pub fn load(dir: &Path, language: &str) -> Result<Templates> {
        let strings_path = dir.join("strings").join(format!("{language}.toml"));
        let user_strings = read_optional(&strings_path)?;
        let strings = Strings::merge(language, user_strings.as_deref(), &strings_path)?;
        let style_path = dir.join("style.css");
        let (style_css, style_file) = match read_optional(&style_path)? {
            Some(css) => (css, style_path.display().to_string()),
            None => (STYLE_CSS.into(), BUILT_IN_STYLE.into()),
        };
        Ok(Templates {
            language: language.to_string(),
            strings,
            style_css,
            style_file,
            media_css: read_optional(&dir.join("media.css"))?.unwrap_or_else(|| MEDIA_CSS.into()),
        })
    }

    /// Only the embedded defaults (tests, and a missing templates folder).
    pub fn embedded(language: &str) -> Result<Templates> {
        Templates::load(Path::new("/nonexistent-digestif-templates"), language)
    }
}

/// Every language with wording, embedded or in `dir/strings/`, sorted.
pub fn languages(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = EMBEDDED_STRINGS
        .iter()
        .map(|(l, _)| l.to_string())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("strings")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "toml") {
                if let Some(stem) = path.file_stem() {
                    all.push(stem.to_string_lossy().into_owned());
                }
            }
        }
    }
    all.sort();
    all.dedup();
    all
}

/// The languages that have wording, embedded or in `dir/strings/`.
pub fn has_language(dir: &Path, language: &str) -> bool {
    EMBEDDED_STRINGS.iter().any(|(l, _)| *l == language)
        || dir
            .join("strings")
            .join(format!("{language}.toml"))
            .is_file()
}

impl Strings {
    /// Embedded wording for `language`, with the keys of `user` (a file's text) on top.
    fn merge(language: &str, user: Option<&str>, user_path: &Path) -> Result<Strings> {
        let embedded = EMBEDDED_STRINGS
            .iter()
            .find(|(l, _)| *l == language)
            .map(|(_, s)| *s);
        let mut table: toml::Table = match embedded {
            Some(text) => toml::from_str(text).expect("embedded strings are valid TOML"),
            None => toml::Table::new(),
        };
        if let Some(user) = user {
            let overrides: toml::Table = toml::from_str(user)
                .map_err(|e| Error::Invalid(vec![Diagnostic::from_toml(user_path, user, 0, &e)]))?;
            table.extend(overrides);
        } else if embedded.is_none() {
            return Err(Error::Invalid(vec![Diagnostic::new(
                user_path,
                format!(
                    "no wording for language {language:?}: expected this file, or one of fr, en"
                ),
            )]));
        }
        // Our wording follows the language's typography whatever the file's spaces and
        // apostrophes ("désabonner : " gets its no-break space).
        for (_, value) in &mut table {
            if let toml::Value::String(text) = value {
                *text = crate::text::typography::typeset(text.as_str(), language);
            }
        }
        Strings::deserialize(toml::Value::Table(table)).map_err(|e| {
            Error::Invalid(vec![Diagnostic::new(
                user_path,
                e.message().trim().replace('\n', " "),
            )])
        })
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read template", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn french_week_range_uses_premier() {
        let t = Templates::embedded("fr").unwrap();
        assert_eq!(
            t.strings.week_range(d(2011, 12, 26), d(2012, 1, 1)),
            "Semaine du 26 décembre 2011 au 1er janvier 2012"
        );
        assert_eq!(t.strings.post_date(d(2011, 12, 26)), "lundi 26 décembre");
    }

    #[test]
    fn shared_month_and_year_are_written_once() {
        let fr = Templates::embedded("fr").unwrap().strings;
        assert_eq!(
            fr.week_range(d(2011, 12, 5), d(2011, 12, 11)),
            "Semaine du 5 au 11 décembre 2011"
        );
        assert_eq!(
            fr.week_range(d(2011, 11, 28), d(2011, 12, 4)),
            "Semaine du 28 novembre au 4 décembre 2011"
        );
        assert_eq!(
            fr.week_range(d(2012, 2, 27), d(2012, 3, 4)),
            "Semaine du 27 février au 4 mars 2012"
        );
        let en = Templates::embedded("en").unwrap().strings;
        assert_eq!(
            en.week_range(d(2011, 12, 5), d(2011, 12, 11)),
            "Week of December 5 – 11, 2011"
        );
        assert_eq!(
            en.week_range(d(2011, 11, 28), d(2011, 12, 4)),
            "Week of November 28 – December 4, 2011"
        );
    }

    #[test]
    fn our_french_wording_follows_french_typography() {
        let fr = Templates::embedded("fr").unwrap().strings;
        assert_eq!(fr.text_unsubscribe, "Pour vous désabonner\u{a0}: {url}");
        assert_eq!(fr.archive_feed, "S’abonner au flux Atom");
        assert!(fr.leave_question.ends_with("{email}\u{202f}?"));
        assert_eq!(fr.lead_and_more("Titre", 1), "Titre et 1 autre article");
        assert_eq!(fr.lead_and_more("Titre", 0), "Titre");
    }

    #[test]
    fn english_week_range() {
        let t = Templates::embedded("en").unwrap();
        assert_eq!(
            t.strings.week_range(d(2011, 12, 26), d(2012, 1, 1)),
            "Week of December 26, 2011 – January 1, 2012"
        );
        assert_eq!(t.strings.post_count(1), "1 post");
        assert_eq!(
            fill_placeholders(&t.strings.greeting, &[("name", "Ada")]),
            "Hello Ada,"
        );
    }

    #[test]
    fn user_file_overrides_single_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("strings")).unwrap();
        std::fs::write(
            dir.path().join("strings/fr.toml"),
            "contents = \"Cette semaine\"\n",
        )
        .unwrap();
        let t = Templates::load(dir.path(), "fr").unwrap();
        assert_eq!(t.strings.contents, "Cette semaine");
        assert_eq!(t.strings.unsubscribe, "Se désabonner");
    }

    #[test]
    fn unknown_wording_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("strings")).unwrap();
        std::fs::write(dir.path().join("strings/en.toml"), "contnets = \"x\"\n").unwrap();
        let err = Templates::load(dir.path(), "en").unwrap_err().to_string();
        assert!(err.contains("unknown field `contnets`"), "{err}");
    }
}
